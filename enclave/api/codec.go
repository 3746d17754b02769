package api

import (
	"sync"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// requestCodec is the server's codec: gRPC's proto codec, except that a
// request that does not decode is not an error inside gRPC (which would
// send INTERNAL with the decoder's text) but an empty message marked as
// malformed. The interceptors take the mark before anything reads the
// message and answer INVALID_ARGUMENT with a fixed text, after
// authentication and authorization.
//
// A mark lives from the decode to the interceptor that takes it, on the
// same call: unary handlers decode just before calling the interceptor,
// and streams decode inside RecvMsg, which the interceptor wraps.
type requestCodec struct {
	base encoding.CodecV2

	mu  sync.Mutex
	bad map[proto.Message]struct{}
}

func newRequestCodec() *requestCodec {
	return &requestCodec{base: encoding.GetCodecV2(grpcproto.Name), bad: map[proto.Message]struct{}{}}
}

func (c *requestCodec) Name() string { return c.base.Name() }

func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	c.mu.Lock()
	c.bad[m] = struct{}{}
	c.mu.Unlock()
	return nil
}

// malformed reports whether v failed to decode, and forgets it.
func (c *requestCodec) malformed(v any) bool {
	m, ok := v.(proto.Message)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, bad := c.bad[m]
	delete(c.bad, m)
	return bad
}

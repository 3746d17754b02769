package api

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

type auditService struct {
	pb.UnimplementedAuditServiceServer
	s *Server
}

// MaxAuditChunk is the largest ExportAudit chunk, in bytes.
const MaxAuditChunk = 64 << 10

// auditError maps a Node error of the audit calls: the only argument is
// start_seq, so ErrInvalidArgument means it is past the end (OUT_OF_RANGE).
func auditError(err error) error {
	if errors.Is(err, ErrInvalidArgument) {
		return &apiError{code: codes.OutOfRange, msg: "start_seq is past the end of the log", cause: err}
	}
	return fromNode(err, texts{codes.DataLoss: "a stored audit entry failed its integrity check"})
}

// ExportAudit streams what Node.ExportAudit writes, in chunks of 1 byte to
// MaxAuditChunk, in order.
func (a *auditService) ExportAudit(req *pb.ExportAuditRequest, stream grpc.ServerStreamingServer[pb.ExportAuditResponse]) error {
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&pb.ExportAuditResponse{Chunk: b}) }}
	_, err := a.s.node.ExportAudit(stream.Context(), max(req.GetStartSeq(), 1), w)
	if err == nil {
		err = w.flush()
	}
	if w.err != nil {
		return w.err
	}
	if err != nil {
		return auditError(err)
	}
	return nil
}

// StreamAudit sends the header, then each entry from start_seq on as the
// Node hands them, until the client leaves or shutdown begins.
func (a *auditService) StreamAudit(req *pb.StreamAuditRequest, stream grpc.ServerStreamingServer[pb.StreamAuditResponse]) error {
	ctx, cancel := a.s.untilClosing(stream.Context())
	defer cancel()
	from := max(req.GetStartSeq(), 1)
	h, err := a.s.node.AuditHeader(ctx, from)
	if err != nil {
		return auditError(err)
	}
	if err := stream.Send(&pb.StreamAuditResponse{Part: &pb.StreamAuditResponse_Header{Header: auditHeaderToPB(h)}}); err != nil {
		return err
	}
	var sendErr error
	err = a.s.node.StreamAudit(ctx, from, func(r auditfmt.Record) error {
		sendErr = stream.Send(&pb.StreamAuditResponse{Part: &pb.StreamAuditResponse_Entry{Entry: auditEntryToPB(r)}})
		return sendErr
	})
	switch {
	case sendErr != nil:
		return sendErr
	case a.s.closing.Err() != nil:
		return failure(codes.Unavailable, msgShuttingDown)
	case err != nil:
		return auditError(err)
	}
	return nil
}

// chunkWriter cuts what is written into chunks of at most MaxAuditChunk
// bytes and sends each when full (and the rest on flush). After a send
// fails, every write fails with that error.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
	err  error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for w.err == nil && len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, MaxAuditChunk)
		}
		k := min(len(p), MaxAuditChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == MaxAuditChunk {
			w.flush()
		}
	}
	return n, w.err
}

// flush sends what is buffered, if anything.
func (w *chunkWriter) flush() error {
	if w.err == nil && len(w.buf) > 0 {
		w.err = w.send(w.buf)
		w.buf = nil
	}
	return w.err
}

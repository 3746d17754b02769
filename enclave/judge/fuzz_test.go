package judge

import (
	"reflect"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
)

// FuzzDecodeSignRequest: proposals come from peers. Decoding never
// panics, and what decodes re-encodes to a request that decodes the same.
func FuzzDecodeSignRequest(f *testing.F) {
	seed, _ := EncodeSignRequest(SignRequest{Payload: payload.Request{Kind: payload.EIP191, Bytes: []byte("hi"), ChainID: 1},
		Path: []uint32{1, 2}, Caller: "c", RequestID: "r", Note: "n"})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSignRequest(b)
		if err != nil {
			return
		}
		again, err := EncodeSignRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeSignRequest(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the request: %v", err)
		}
	})
}

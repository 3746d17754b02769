package coord

import (
	"bytes"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

func TestDecodeRefusesMismatchedShapes(t *testing.T) {
	p := &Proposal{Session: mpc.SessionID{1}, Op: OpSign, Parties: []mpc.PartyID{"a", "b"}, Deadline: time.Unix(1e9, 0)}
	for name, m := range map[string]message{
		"propose without proposal":   {Type: msgPropose, Session: mpc.SessionID{1}},
		"accept with proposal":       {Type: msgAccept, Session: mpc.SessionID{1}, Proposal: p},
		"proposal for other session": {Type: msgPropose, Session: mpc.SessionID{2}, Proposal: p},
		"code on accept":             {Type: msgAccept, Session: mpc.SessionID{1}, Code: CodePolicy},
		"unknown type":               {Type: 9, Session: mpc.SessionID{1}},
	} {
		b, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	b, _ := encode(message{Type: msgPropose, Session: p.Session, Proposal: p})
	if _, err := decode(b); err != nil {
		t.Errorf("good proposal: %v", err)
	}
}

// FuzzDecode: control payloads come from peers. Decoding never panics, and
// what decodes re-encodes to bytes that decode to the same message.
func FuzzDecode(f *testing.F) {
	p := &Proposal{Session: mpc.SessionID{1}, Op: OpSign, Parties: []mpc.PartyID{"alice", "bob"},
		Request: []byte("req"), Deadline: time.Unix(1e9, 0)}
	for _, m := range []message{
		{Type: msgPropose, Session: p.Session, Proposal: p},
		{Type: msgAccept, Session: p.Session},
		{Type: msgRefuse, Session: p.Session, Code: CodeBusy},
	} {
		b, _ := encode(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		again, err := encode(m)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		m2, err := decode(again)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		again2, _ := encode(m2)
		if !bytes.Equal(again, again2) {
			t.Fatal("encoding not stable")
		}
	})
}

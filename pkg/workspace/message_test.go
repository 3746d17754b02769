package workspace_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// Each kind of message decodes to the value it was encoded from.
func TestMessageRoundTrip(t *testing.T) {
	f := newFixture(t)
	tok := issue(t, f.v1, goodPCRs(), time.Hour, t0, f.a)
	sr := request(t, newCosigner(t, "co-4"), tok, t0, nil)
	v2 := next(t, f.v1, addUser(t, "carol"), f.a, f.b)
	for _, c := range []struct {
		kind byte
		in   any
		out  any
	}{
		{ws.KindPair, sr, &sr},
		{ws.KindVersions, ws.Update{From: "co-1", Versions: []ws.Signed{f.v1.Signed, v2}}, &ws.Update{From: "co-1", Versions: []ws.Signed{f.v1.Signed, v2}}},
		{ws.KindHello, ws.Hello{From: "co-2", Version: 7}, &ws.Hello{From: "co-2", Version: 7}},
	} {
		frame, err := ws.EncodeMessage(c.kind, c.in)
		if err != nil {
			t.Fatal(err)
		}
		if !ws.IsMessage(frame) || !bytes.HasPrefix(frame, ws.Magic) {
			t.Fatalf("kind %d: not a workspace message", c.kind)
		}
		kind, v, err := ws.DecodeMessage(frame)
		if err != nil || kind != c.kind || !reflect.DeepEqual(v, c.out) {
			t.Fatalf("kind %d: decoded %d %+v, %v", c.kind, kind, v, err)
		}
	}
	// The versions still verify after the trip.
	frame := must(ws.EncodeMessage(ws.KindVersions, ws.Update{From: "co-1", Versions: []ws.Signed{v2}}))
	_, u, _ := ws.DecodeMessage(frame)
	if _, err := ws.Next(f.v1, u.(*ws.Update).Versions[0]); err != nil {
		t.Fatal(err)
	}
}

// DecodeMessage refuses anything that is not a well-formed message of a
// known kind, with ErrMalformed.
func TestDecodeMessageRefuses(t *testing.T) {
	hello := must(ws.EncodeMessage(ws.KindHello, ws.Hello{From: "co-1", Version: 1}))
	withKind := func(k byte, body string) []byte {
		return append(append(bytes.Clone(ws.Magic), k), body...)
	}
	cases := map[string][]byte{
		"empty":           nil,
		"magic only":      bytes.Clone(ws.Magic),
		"COSE frame":      {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27},
		"other magic":     append([]byte("NCWS\x02"), hello[len(ws.Magic):]...),
		"unknown kind":    withKind(9, `{}`),
		"kind 0":          withKind(0, `{}`),
		"no body":         withKind(ws.KindHello, ``),
		"not JSON":        withKind(ws.KindHello, `hello`),
		"unknown field":   withKind(ws.KindHello, `{"from":"co-1","version":1,"extra":true}`),
		"trailing JSON":   withKind(ws.KindHello, `{"from":"co-1","version":1}{}`),
		"wrong type":      withKind(ws.KindHello, `{"from":"co-1","version":"1"}`),
		"negative":        withKind(ws.KindHello, `{"from":"co-1","version":-1}`),
		"versions object": withKind(ws.KindVersions, `{"from":"co-1","versions":{}}`),
		"request number":  withKind(ws.KindPair, `{"request":1}`),
		"too large":       withKind(ws.KindHello, `{"from":"`+string(bytes.Repeat([]byte("a"), ws.MaxMessage))+`"}`),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			if k, v, err := ws.DecodeMessage(frame); !errors.Is(err, ws.ErrMalformed) || v != nil || k != 0 {
				t.Fatalf("DecodeMessage = %d, %v, %v", k, v, err)
			}
		})
	}
	if _, err := ws.EncodeMessage(ws.KindHello, ws.Hello{From: string(bytes.Repeat([]byte("a"), ws.MaxMessage))}); !errors.Is(err, ws.ErrMalformed) {
		t.Fatalf("EncodeMessage of an oversized message: %v", err)
	}
}

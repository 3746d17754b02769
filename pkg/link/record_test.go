package link

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// validRecords is one record of each kind, at the edges of the limits.
func validRecords() []Record {
	return []Record{
		{Kind: KindHello, Hello: Hello{MinVersion: 1, MaxVersion: 1, MaxFrame: DefaultMaxFrame}},
		{Kind: KindHello, Hello: Hello{MinVersion: 1, MaxVersion: 65535, MaxFrame: MaxFrameLimit}},
		{Kind: KindWelcome, Welcome: Welcome{Version: 1, MaxFrame: 1}},
		{Kind: KindOut, Seq: 1, To: "a", Frame: []byte{0}},
		{Kind: KindOut, Seq: 1<<64 - 1, To: strings.Repeat("Z", MaxIDLen), Frame: bytes.Repeat([]byte{0xff}, 100)},
		{Kind: KindOut, Seq: 7, To: "cosigner-2_b", Frame: []byte("frame")},
		{Kind: KindIn, Seq: 9, Frame: []byte("in-frame")},
		{Kind: KindAck, Seq: 3},
		{Kind: KindPing, Seq: 0},
		{Kind: KindPong, Seq: 42},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range validRecords() {
		b, err := Marshal(r, 100)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", r.Kind, err)
		}
		got, err := Parse(b[4:], 100)
		if err != nil {
			t.Fatalf("Parse(Marshal(%v)): %v", r.Kind, err)
		}
		if !equal(got, r) {
			t.Errorf("round trip of %v: got %+v, want %+v", r.Kind, got, r)
		}
	}
}

// TestLayout pins the byte layout the package documentation describes.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		r   Record
		hex string
	}{
		{Record{Kind: KindHello, Hello: Hello{MinVersion: 1, MaxVersion: 2, MaxFrame: 0x100000}},
			"0000000d" + "01" + "4e434c4b" + "0001" + "0002" + "00100000"},
		{Record{Kind: KindWelcome, Welcome: Welcome{Version: 1, MaxFrame: 0xc0000}},
			"0000000b" + "02" + "4e434c4b" + "0001" + "000c0000"},
		{Record{Kind: KindOut, Seq: 1, To: "ab", Frame: []byte("x")},
			"0000000d" + "03" + "0000000000000001" + "02" + "6162" + "78"},
		{Record{Kind: KindIn, Seq: 2, Frame: []byte("yz")},
			"0000000b" + "04" + "0000000000000002" + "797a"},
		{Record{Kind: KindAck, Seq: 0x0102}, "00000009" + "05" + "0000000000000102"},
		{Record{Kind: KindPing, Seq: 5}, "00000009" + "06" + "0000000000000005"},
		{Record{Kind: KindPong, Seq: 5}, "00000009" + "07" + "0000000000000005"},
	} {
		b, err := Marshal(c.r, DefaultMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != c.hex {
			t.Errorf("%v: got %s, want %s", c.r.Kind, got, c.hex)
		}
	}
}

func TestParseRejects(t *testing.T) {
	seq1 := "0000000000000001"
	for name, c := range map[string]struct {
		body string // hex: kind and body
		want error
	}{
		"empty":            {"", ErrMalformed},
		"unknown kind":     {"08" + seq1, ErrMalformed},
		"kind zero":        {"00" + seq1, ErrMalformed},
		"hello short":      {"01" + "4e434c4b" + "00010001" + "001000", ErrMalformed},
		"hello long":       {"01" + "4e434c4b" + "00010001" + "0010000000", ErrMalformed},
		"hello magic":      {"01" + "4e434c4c" + "00010001" + "00100000", ErrMalformed},
		"hello min zero":   {"01" + "4e434c4b" + "00000001" + "00100000", ErrMalformed},
		"hello min>max":    {"01" + "4e434c4b" + "00020001" + "00100000", ErrMalformed},
		"hello frame zero": {"01" + "4e434c4b" + "00010001" + "00000000", ErrMalformed},
		"hello frame big":  {"01" + "4e434c4b" + "00010001" + "00400001", ErrMalformed},
		"welcome v0":       {"02" + "4e434c4b" + "0000" + "00100000", ErrMalformed},
		"welcome short":    {"02" + "4e434c4b" + "0001" + "001000", ErrMalformed},
		"out short":        {"03" + "00000000000000", ErrMalformed},
		"out no id byte":   {"03" + seq1, ErrMalformed},
		"out id overrun":   {"03" + seq1 + "05" + "6162", ErrMalformed},
		"out seq zero":     {"03" + "0000000000000000" + "01" + "61" + "78", ErrMalformed},
		"out empty frame":  {"03" + seq1 + "01" + "61", ErrMalformed},
		"out empty id":     {"03" + seq1 + "00" + "78", ErrInvalidID},
		"out id dot":       {"03" + seq1 + "03" + "612e62" + "78", ErrInvalidID},
		"out id lead dash": {"03" + seq1 + "02" + "2d61" + "78", ErrInvalidID},
		"out id nonascii":  {"03" + seq1 + "02" + "c3a9" + "78", ErrInvalidID},
		"out id too long":  {"03" + seq1 + "31" + strings.Repeat("61", 49) + "78", ErrInvalidID},
		"out frame big":    {"03" + seq1 + "01" + "61" + strings.Repeat("00", 17), ErrFrameTooLarge},
		"in short":         {"04" + "00000000000001", ErrMalformed},
		"in seq zero":      {"04" + "0000000000000000" + "78", ErrMalformed},
		"in empty frame":   {"04" + seq1, ErrMalformed},
		"in frame big":     {"04" + seq1 + strings.Repeat("00", 17), ErrFrameTooLarge},
		"ack seq zero":     {"05" + "0000000000000000", ErrMalformed},
		"ack long":         {"05" + seq1 + "00", ErrMalformed},
		"ping short":       {"06" + "00000000000001", ErrMalformed},
		"pong long":        {"07" + seq1 + "00", ErrMalformed},
	} {
		b, err := hex.DecodeString(c.body)
		if err != nil {
			t.Fatalf("%s: bad test hex", name)
		}
		if _, err := Parse(b, 16); !errors.Is(err, c.want) {
			t.Errorf("%s: Parse = %v, want %v", name, err, c.want)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	for name, r := range map[string]Record{
		"unknown kind": {Kind: 9, Seq: 1},
		"out bad id":   {Kind: KindOut, Seq: 1, To: "a b", Frame: []byte("x")},
		"out big":      {Kind: KindOut, Seq: 1, To: "a", Frame: make([]byte, 17)},
		"in seq zero":  {Kind: KindIn, Frame: []byte("x")},
		"ack seq zero": {Kind: KindAck},
		"hello empty":  {Kind: KindHello},
	} {
		if _, err := Marshal(r, 16); err == nil {
			t.Errorf("%s: Marshal = nil error", name)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "A9", "0-_", strings.Repeat("x", MaxIDLen)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "-a", "_a", "a.b", "a*", ">", "a b", "../x", "é", strings.Repeat("x", MaxIDLen+1)} {
		if err := CheckID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("CheckID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestErrorsDoNotEchoInput(t *testing.T) {
	body := append([]byte{byte(KindOut)}, []byte("\x00\x00\x00\x00\x00\x00\x00\x01\x05SECRETframe")...)
	body[9] = 0xff // id length overruns
	_, err := Parse(body, 100)
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("Parse error %v echoes the input", err)
	}
}

func TestKindString(t *testing.T) {
	if KindOut.String() != "OUT" || Kind(0).String() != "kind(0)" || Kind(200).String() != "kind(200)" {
		t.Error("Kind.String")
	}
}

func equal(a, b Record) bool {
	return a.Kind == b.Kind && a.Seq == b.Seq && a.To == b.To && bytes.Equal(a.Frame, b.Frame) &&
		a.Hello == b.Hello && a.Welcome == b.Welcome
}

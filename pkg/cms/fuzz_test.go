package cms

import (
	"errors"
	"testing"
)

// fuzzSeeds adds the real KMS vectors and some Encrypt outputs.
func fuzzSeeds(f *testing.F) {
	for _, name := range []string{
		"enclaver/ciphertext_for_recipient.ber",
		"sdkc/input_ber.bin",
		"sdkc/input_ber_w_ctx.bin",
	} {
		f.Add(readTestdata(f, name))
	}
	k := enclaverKey(f)
	for _, pt := range []string{"", "Hello, World", "a longer plaintext of more than one AES block"} {
		ber, err := Encrypt([]byte(pt), &k.PublicKey, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ber)
	}
}

// FuzzParse checks that Parse never panics, fails only with ErrMalformed,
// and that what it accepts re-encodes to a message that parses to the
// same parts (so the parts are all the meaning Parse extracts: no two
// accepted encodings differ in anything but BER framing).
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		ed, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := ed.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed message: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))): %v", err)
		}
		if !again.Equal(ed) {
			t.Fatal("Parse(Marshal(Parse(x))) != Parse(x)")
		}
	})
}

// FuzzDecrypt checks that Decrypt with the enclaver key never panics and
// fails only with ErrMalformed or ErrDecrypt, and that whatever decrypts
// also parses.
func FuzzDecrypt(f *testing.F) {
	fuzzSeeds(f)
	key := enclaverKey(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := Decrypt(in, key)
		if err != nil {
			if err != ErrDecrypt && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, err := Parse(in); err != nil {
			t.Fatalf("Decrypt succeeded on input Parse refuses: %v", err)
		}
	})
}

package cms

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestEnclaverVectorDecrypts(t *testing.T) {
	t.Parallel()
	ber := readTestdata(t, "enclaver/ciphertext_for_recipient.ber")
	got, err := Decrypt(ber, enclaverKey(t))
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(got) != "Hello, World" {
		t.Fatalf("Decrypt = %q, want %q", got, "Hello, World")
	}
}

func TestEnclaverVectorRIDIsSPKIHash(t *testing.T) {
	t.Parallel()
	ed, err := Parse(readTestdata(t, "enclaver/ciphertext_for_recipient.ber"))
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(readTestdata(t, "enclaver/pub_spki.der"))
	if !bytes.Equal(ed.RecipientSKI, spki[:]) {
		t.Fatal("rid is not the SHA-256 of pub_spki.der")
	}
	ski, err := SubjectKeyID(&enclaverKey(t).PublicKey)
	if err != nil || !bytes.Equal(ski, spki[:]) {
		t.Fatalf("SubjectKeyID(key) differs from SHA-256(pub_spki.der) (err %v)", err)
	}
}

func TestSDKCVectorsParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, key, iv, ct string }{
		{"constructed", "input_ber.bin", "encrypted_key_out.bin", "iv_out.bin", "ciphertext_out.bin"},
		{"primitive", "input_ber_w_ctx.bin", "encrypted_key_out_w_ctx.bin", "iv_out_w_ctx.bin", "ciphertext_out_w_ctx.bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ed, err := Parse(readTestdata(t, "sdkc/"+tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, p := range []struct {
				what      string
				got, want []byte
			}{
				{"encryptedKey", ed.EncryptedKey, readTestdata(t, "sdkc/"+tc.key)},
				{"IV", ed.IV, readTestdata(t, "sdkc/"+tc.iv)},
				{"encryptedContent", ed.EncryptedContent, readTestdata(t, "sdkc/"+tc.ct)},
			} {
				if !bytes.Equal(p.got, p.want) {
					t.Errorf("%s = %x, want %x", p.what, p.got, p.want)
				}
			}
		})
	}
}

// TestMarshalMatchesKMS checks that Marshal re-encodes the KMS vectors
// whose encrypted content is constructed byte for byte: the encoder emits
// exactly KMS's shape.
func TestMarshalMatchesKMS(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"enclaver/ciphertext_for_recipient.ber", "sdkc/input_ber.bin"} {
		in := readTestdata(t, name)
		ed, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ed.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Errorf("%s: Marshal(Parse(x)) != x\n got %x\nwant %x", name, out, in)
		}
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKeys()[0]
	for _, n := range []int{0, 1, 15, 16, 17, 32, 1023, 1024, 1025, 4096, MaxPlaintextSize} {
		pt := make([]byte, n)
		rand.Read(pt)
		ber, err := Encrypt(pt, &key.PublicKey, nil)
		if err != nil {
			t.Fatalf("Encrypt(%d bytes): %v", n, err)
		}
		got, err := Decrypt(ber, key)
		if err != nil {
			t.Fatalf("Decrypt(%d bytes): %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes changed the plaintext", n)
		}
	}
}

func TestEncryptIsRandomized(t *testing.T) {
	t.Parallel()
	pub := &testKeys()[0].PublicKey
	a, errA := Encrypt([]byte("data key"), pub, nil)
	b, errB := Encrypt([]byte("data key"), pub, nil)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of the same plaintext are identical")
	}
}

func TestEncryptRejects(t *testing.T) {
	t.Parallel()
	pub := &testKeys()[0].PublicKey
	if _, err := Encrypt(make([]byte, MaxPlaintextSize+1), pub, nil); err == nil {
		t.Error("Encrypt accepted a plaintext over MaxPlaintextSize")
	}
	if _, err := Encrypt([]byte("x"), nil, nil); err == nil {
		t.Error("Encrypt accepted a nil key")
	}
	small := enclaverKey(t).PublicKey
	small.N = small.N.Rsh(small.N, 1100) // a 948-bit modulus
	if _, err := Encrypt([]byte("x"), &small, nil); err == nil {
		t.Error("Encrypt accepted a key below 2048 bits")
	}
	if _, err := Encrypt([]byte("x"), pub, bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("Encrypt succeeded with an exhausted random source")
	}
}

func TestWrongKeyIsOpaque(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	ber, err := Encrypt([]byte("secret"), &keys[0].PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decrypt(ber, keys[1])
	if err != ErrDecrypt {
		t.Fatalf("Decrypt with the wrong key = %v, want ErrDecrypt itself", err)
	}
	_, err = Decrypt(readTestdata(t, "enclaver/ciphertext_for_recipient.ber"), keys[0])
	if err != ErrDecrypt {
		t.Fatalf("Decrypt of the enclaver vector with another key = %v, want ErrDecrypt", err)
	}
	if _, err := Decrypt(ber, nil); err == nil {
		t.Fatal("Decrypt accepted a nil key")
	}
}

// TestDecryptionFailuresLookAlike checks that each key-dependent failure
// returns the very same error value.
func TestDecryptionFailuresLookAlike(t *testing.T) {
	t.Parallel()
	key := testKeys()[0]
	ski, _ := SubjectKeyID(&key.PublicKey)
	wrap := func(cek []byte) []byte {
		w, err := rsaEncrypt(&key.PublicKey, cek)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	goodKey := bytes.Repeat([]byte{7}, contentKeySize)
	iv := make([]byte, IVSize)
	badPad := rawCBC(goodKey, iv, bytes.Repeat([]byte{0}, 32)) // last byte 0: bad padding
	goodCT := encryptCBC(goodKey, iv, []byte("payload"))
	otherSKI := bytes.Repeat([]byte{1}, SKISize)
	for name, ed := range map[string]*EnvelopedData{
		"other rid":      {otherSKI, wrap(goodKey), iv, goodCT},
		"oaep garbage":   {ski, bytes.Repeat([]byte{0x55}, 256), iv, goodCT},
		"16-byte key":    {ski, wrap(goodKey[:16]), iv, goodCT},
		"bad padding":    {ski, wrap(goodKey), iv, badPad},
		"wrong AES key":  {ski, wrap(bytes.Repeat([]byte{8}, 32)), iv, goodCT[:16]},
		"padding 17":     {ski, wrap(goodKey), iv, rawCBC(goodKey, iv, bytes.Repeat([]byte{17}, 32))},
		"short ciphertx": {ski, wrap(goodKey)[:255], iv, goodCT},
	} {
		ber, err := ed.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", name, err)
		}
		if _, err := Decrypt(ber, key); err != ErrDecrypt {
			t.Errorf("%s: Decrypt = %v, want ErrDecrypt", name, err)
		}
	}
	// The control: the same construction with valid parts decrypts.
	ber, _ := (&EnvelopedData{ski, wrap(goodKey), iv, goodCT}).Marshal()
	if pt, err := Decrypt(ber, key); err != nil || string(pt) != "payload" {
		t.Fatalf("control message: %q, %v", pt, err)
	}
}

func TestPaddingLen(t *testing.T) {
	t.Parallel()
	block := func(tail ...byte) []byte {
		return append(bytes.Repeat([]byte{0xaa}, 32-len(tail)), tail...)
	}
	for _, tc := range []struct {
		in     []byte
		n, ok  int
		reason string
	}{
		{block(1), 1, 1, "one byte"},
		{block(2, 2), 2, 1, "two bytes"},
		{bytes.Repeat([]byte{16}, 32), 16, 1, "full block"},
		{block(0), 0, 0, "zero"},
		{block(17), 0, 0, "over a block"},
		{bytes.Repeat([]byte{17}, 32), 0, 0, "17 repeated"},
		{block(1, 2), 0, 0, "mismatch"},
		{block(3, 2, 2), 2, 1, "preceding byte irrelevant"},
		{block(2, 3, 3), 0, 0, "one short"},
		{block(0xff), 0, 0, "0xff"},
		{append(bytes.Repeat([]byte{16}, 17), bytes.Repeat([]byte{15}, 15)...), 15, 1, "15 after 16s"},
		{append(bytes.Repeat([]byte{16}, 31), 15), 0, 0, "15 after fourteen 16s"},
	} {
		n, ok := paddingLen(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("%s: paddingLen = %d, %d; want %d, %d", tc.reason, n, ok, tc.n, tc.ok)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	base, err := Parse(readTestdata(t, "enclaver/ciphertext_for_recipient.ber"))
	if err != nil {
		t.Fatal(err)
	}
	ok := builder{}.valid(base)
	if _, err := Parse(ok.build()); err != nil {
		t.Fatalf("the valid builder output does not parse: %v", err)
	}
	sha1OAEP := tlv(idSequence, concat(tlv(idOID, mustHex("2a864886f70d010107")), tlv(idSequence, concat(
		tlv(idContext0C, tlv(idSequence, concat(tlv(idOID, mustHex("2b0e03021a")), []byte{5, 0}))),
		tlv(0xa1, tlv(idSequence, concat(tlv(idOID, mustHex("2a864886f70d010108")),
			tlv(idSequence, concat(tlv(idOID, mustHex("2b0e03021a")), []byte{5, 0})))))))))
	pkcs1v15 := tlv(idSequence, concat(tlv(idOID, mustHex("2a864886f70d010101")), []byte{5, 0}))
	// OAEP with a pSourceFunc (a non-empty label).
	oaepLabel := tlv(idSequence, concat(tlv(idOID, oidRSAESOAEP), tlv(idSequence, concat(
		tlv(idContext0C, sha256AlgID(true)),
		tlv(idContext1C, tlv(idSequence, concat(tlv(idOID, oidMGF1), sha256AlgID(true)))),
		tlv(0xa2, tlv(idSequence, concat(tlv(idOID, mustHex("2a864886f70d010109")), tlv(idOctetString, []byte("L")))))))))
	// OAEP SHA-256 with MGF1-SHA-1.
	oaepMGF1SHA1 := tlv(idSequence, concat(tlv(idOID, oidRSAESOAEP), tlv(idSequence, concat(
		tlv(idContext0C, sha256AlgID(true)),
		tlv(idContext1C, tlv(idSequence, concat(tlv(idOID, oidMGF1),
			tlv(idSequence, concat(tlv(idOID, mustHex("2b0e03021a")), []byte{5, 0})))))))))
	// The KMS encoding with indefinite lengths: the same value, but not an
	// encoding anyone emits.
	oaepIndefinite := indefinite(idSequence, tlv(idOID, oidRSAESOAEP), oaepSHA256AlgID[13:])
	aes128 := tlv(idSequence, concat(tlv(idOID, mustHex("608648016503040102")), tlv(idOctetString, base.IV)))
	issuerSerial := tlv(idSequence, concat(tlv(idSequence, nil), tlv(idInteger, []byte{1})))
	nested := indefinite(idContext0C, indefinite(0x24, chunks(base.EncryptedContent)...))

	for name, mutate := range map[string]func(b *builder){
		"outer type signedData": func(b *builder) { b.outerOID = tlv(idOID, mustHex("2a864886f70d010702")) },
		"envelope version 0":    func(b *builder) { b.envVersion = tlv(idInteger, []byte{0}) },
		"envelope version 02 padded": func(b *builder) {
			b.envVersion = tlv(idInteger, []byte{0, 2})
		},
		"ktri version 0":            func(b *builder) { b.ktriVersion = tlv(idInteger, []byte{0}) },
		"rid issuerAndSerialNumber": func(b *builder) { b.rid = issuerSerial; b.ktriVersion = tlv(idInteger, []byte{0}) },
		"rid 20 bytes (SHA-1 SKI)":  func(b *builder) { b.rid = tlv(idContext0, base.RecipientSKI[:20]) },
		"rid constructed":           func(b *builder) { b.rid = tlv(idContext0C, tlv(idOctetString, base.RecipientSKI)) },
		"OAEP SHA-1":                func(b *builder) { b.algID = sha1OAEP },
		"OAEP with a label":         func(b *builder) { b.algID = oaepLabel },
		"OAEP MGF1-SHA-1":           func(b *builder) { b.algID = oaepMGF1SHA1 },
		"OAEP indefinite lengths":   func(b *builder) { b.algID = oaepIndefinite },
		"OAEP without parameters":   func(b *builder) { b.algID = tlv(idSequence, tlv(idOID, oidRSAESOAEP)) },
		"PKCS #1 v1.5":              func(b *builder) { b.algID = pkcs1v15 },
		"encryptedKey empty":        func(b *builder) { b.encKey = tlv(idOctetString, nil) },
		"encryptedKey too long":     func(b *builder) { b.encKey = tlv(idOctetString, make([]byte, 513)) },
		"encryptedKey constructed":  func(b *builder) { b.encKey = tlv(0x24, tlv(idOctetString, base.EncryptedKey)) },
		"two recipients":            func(b *builder) { b.extraRecipients = tlv(idSequence, concat(b.ktriVersion, b.rid, b.algID, b.encKey)) },
		"unprotectedAttrs":          func(b *builder) { b.extraEnvFields = tlv(0xa1, nil) },
		"content type signedData":   func(b *builder) { b.contentType = tlv(idOID, mustHex("2a864886f70d010702")) },
		"AES-128-CBC":               func(b *builder) { b.contentAlg = aes128 },
		"IV 8 bytes": func(b *builder) {
			b.contentAlg = tlv(idSequence, concat(tlv(idOID, oidAES256CBC), tlv(idOctetString, base.IV[:8])))
		},
		"IV missing":                 func(b *builder) { b.contentAlg = tlv(idSequence, tlv(idOID, oidAES256CBC)) },
		"content absent":             func(b *builder) { b.content = nil },
		"content empty":              func(b *builder) { b.content = tlv(idContext0, nil) },
		"content 15 bytes":           func(b *builder) { b.content = tlv(idContext0, base.EncryptedContent[:15]) },
		"content nested constructed": func(b *builder) { b.content = nested },
		"content chunk wrong tag":    func(b *builder) { b.content = indefinite(idContext0C, tlv(idContext0, base.EncryptedContent)) },
		"content [1]":                func(b *builder) { b.content = tlv(0x81, base.EncryptedContent) },
		"trailing byte":              func(b *builder) { b.trailing = []byte{0} },
		"trailing EOC":               func(b *builder) { b.trailing = []byte{0, 0} },
	} {
		b := ok
		mutate(&b)
		_, err := Parse(b.build())
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

// TestOAEPEncodings checks the accepted key-encryption encodings: the KMS
// constant is the NULL/NULL form, and all four RFC 4055 forms parse.
func TestOAEPEncodings(t *testing.T) {
	t.Parallel()
	if !bytes.Equal(oaepAlgID(true, true), oaepSHA256AlgID) {
		t.Fatal("oaepAlgID(true, true) differs from the KMS encoding")
	}
	base, err := Parse(readTestdata(t, "enclaver/ciphertext_for_recipient.ber"))
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range oaepSHA256AlgIDs {
		b := builder{}.valid(base)
		b.algID = enc
		if _, err := Parse(b.build()); err != nil {
			t.Errorf("Parse refused OAEP encoding %x: %v", enc, err)
		}
	}
}

func TestParseRejectsBadBER(t *testing.T) {
	t.Parallel()
	deep := concat(bytes.Repeat([]byte{0x30, 0x80}, 5000), bytes.Repeat([]byte{0, 0}, 5000))
	for name, in := range map[string][]byte{
		"empty":                 nil,
		"one byte":              {0x30},
		"high tag number":       {0x3f, 0x01, 0x00},
		"indefinite primitive":  {0x04, 0x80, 0x00, 0x00},
		"length 5 octets":       {0x30, 0x85, 0, 0, 0, 0, 1, 0},
		"length beyond input":   {0x30, 0x82, 0xff, 0xff},
		"length 0xff":           {0x30, 0xff},
		"unterminated":          {0x30, 0x80, 0x02, 0x01, 0x02},
		"deep nesting":          deep,
		"oversize":              make([]byte, MaxSize+1),
		"bare EOC":              {0, 0},
		"negative-ish length":   {0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
		"EOC in definite":       {0x30, 0x02, 0x00, 0x00},
		"definite empty seq":    {0x30, 0x00},
		"indefinite empty seq":  {0x30, 0x80, 0x00, 0x00},
		"truncated long length": {0x30, 0x82, 0x01},
	} {
		_, err := Parse(in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

// TestMutationsFailSafely flips bytes everywhere in the enclaver vector.
// Outside the IV and the encrypted content every change must be refused.
// Inside them CBC cannot notice every change (EnvelopedData has no MAC),
// but it must never yield the original plaintext.
func TestMutationsFailSafely(t *testing.T) {
	t.Parallel()
	in := readTestdata(t, "enclaver/ciphertext_for_recipient.ber")
	key := enclaverKey(t)
	ed, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	malleable := map[int]bool{}
	for _, part := range [][]byte{ed.IV, ed.EncryptedContent} {
		off := bytes.Index(in, part)
		for i := range part {
			malleable[off+i] = true
		}
	}
	for i := range in {
		for _, mask := range []byte{0x01, 0xff} {
			m := bytes.Clone(in)
			m[i] ^= mask
			pt, err := Decrypt(m, key)
			if err == nil && (!malleable[i] || string(pt) == "Hello, World") {
				t.Errorf("byte %d ^ %#x: Decrypt succeeded with %q", i, mask, pt)
			}
			if err != nil && err != ErrDecrypt && !errors.Is(err, ErrMalformed) {
				t.Errorf("byte %d ^ %#x: unexpected error %v", i, mask, err)
			}
		}
	}
	for n := range len(in) {
		if _, err := Decrypt(in[:n], key); err == nil {
			t.Errorf("truncation to %d bytes decrypted", n)
		}
	}
}

func TestErrorsDoNotEchoInput(t *testing.T) {
	t.Parallel()
	ok := builder{}.valid(&EnvelopedData{
		RecipientSKI: []byte(strings.Repeat("S", 32)), EncryptedKey: []byte("KEYKEYKEY"),
		IV: []byte(strings.Repeat("V", 16)), EncryptedContent: []byte(strings.Repeat("C", 16)),
	})
	ok.outerOID = tlv(idOID, []byte("OIDOID"))
	_, err := Parse(ok.build())
	if err == nil {
		t.Fatal("Parse accepted a wrong content type")
	}
	for _, s := range []string{"OIDOID", "SSSS", "KEYKEY", "VVVV", "CCCC"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q echoes input bytes", err)
		}
	}
}

func TestMarshalRejectsBadParts(t *testing.T) {
	t.Parallel()
	good := EnvelopedData{make([]byte, 32), make([]byte, 256), make([]byte, 16), make([]byte, 32)}
	for name, mutate := range map[string]func(e *EnvelopedData){
		"SKI 20":      func(e *EnvelopedData) { e.RecipientSKI = e.RecipientSKI[:20] },
		"no key":      func(e *EnvelopedData) { e.EncryptedKey = nil },
		"IV 12":       func(e *EnvelopedData) { e.IV = e.IV[:12] },
		"content 17":  func(e *EnvelopedData) { e.EncryptedContent = make([]byte, 17) },
		"content nil": func(e *EnvelopedData) { e.EncryptedContent = nil },
		"huge":        func(e *EnvelopedData) { e.EncryptedContent = make([]byte, MaxSize) },
	} {
		e := good
		mutate(&e)
		if _, err := e.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted invalid parts", name)
		}
	}
}

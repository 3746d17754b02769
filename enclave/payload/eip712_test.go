package payload

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceTypedHash hashes doc the way go-ethereum's signer does, with
// encoding/json decoding.
func referenceTypedHash(t testing.TB, doc []byte) []byte {
	t.Helper()
	var td apitypes.TypedData
	if err := json.Unmarshal(doc, &td); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEIP712MailVector checks the EIP's own example: digest and signature.
func TestEIP712MailVector(t *testing.T) {
	var v struct {
		Document, Digest, R, S string
		V                      int64
	}
	readJSON(t, "eip712_mail_vector.json", &v)
	doc := readFile(t, v.Document)
	key := ethSigner{prv: crypto.ToECDSAUnsafe(crypto.Keccak256([]byte("cow")))}
	key.pub = crypto.CompressPubkey(&key.prv.PublicKey)

	p := mustParse(t, Request{Kind: EIP712, Bytes: doc}, key.pub)
	d := oneDigest(t, p)
	if hex.EncodeToString(d[:]) != v.Digest || hex.EncodeToString(referenceTypedHash(t, doc)) != v.Digest {
		t.Fatalf("digest %x, want %s", d, v.Digest)
	}
	want := Typed{PrimaryType: "Mail", Name: "Ether Mail", Version: "1", VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}
	if p.Summary.Typed == nil || *p.Summary.Typed != want || p.Summary.ChainID != 1 || p.Summary.From != "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" {
		t.Fatalf("summary %+v typed %+v", p.Summary, p.Summary.Typed)
	}
	out, err := p.FinishEth(key.sign(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if out.V.Int64() != v.V || fmt.Sprintf("%064x", out.R) != v.R || fmt.Sprintf("%064x", out.S) != v.S {
		t.Fatalf("signature v=%v r=%x s=%x, want the EIP's", out.V, out.R, out.S)
	}
}

const permitTemplate = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
"primaryType":"Permit","domain":{"name":"USD Coin","version":"2","chainId":%s,"verifyingContract":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
"message":{"owner":"0x3535353535353535353535353535353535353535","spender":"0x1111111254EEB25477B68fb85Ed929f73A960582","value":%s,"nonce":0,"deadline":"0x7fffffff"}}`

// TestEIP712Numbers checks that JSON number literals are read exactly: a
// value past 2^53 hashes as written, as the same value given as a string
// does, where encoding/json would have rounded it through float64.
func TestEIP712Numbers(t *testing.T) {
	key := testEthKey(t)
	asNumber := fmt.Sprintf(permitTemplate, "1", "18446744073709551617")
	asString := fmt.Sprintf(permitTemplate, `"0x1"`, `"18446744073709551617"`)
	p1 := mustParse(t, Request{Kind: EIP712, Bytes: []byte(asNumber), ChainID: 1}, key.pub)
	p2 := mustParse(t, Request{Kind: EIP712, Bytes: []byte(asString)}, key.pub)
	d1, d2 := oneDigest(t, p1), oneDigest(t, p2)
	if d1 != d2 || hex.EncodeToString(d2[:]) != hex.EncodeToString(referenceTypedHash(t, []byte(asString))) {
		t.Fatalf("digests %x %x differ from each other or from apitypes", d1, d2)
	}
	if p1.Summary.Typed.VerifyingContract != "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" || p1.Summary.Typed.PrimaryType != "Permit" {
		t.Fatalf("typed summary %+v", p1.Summary.Typed)
	}
	// The float64 route: 2^64+1 becomes 2^64, a different digest.
	rounded := fmt.Sprintf(permitTemplate, "1", `"18446744073709551616"`)
	if hex.EncodeToString(d1[:]) == hex.EncodeToString(referenceTypedHash(t, []byte(rounded))) {
		t.Fatal("digest of 2^64+1 equals that of 2^64")
	}
}

func TestEIP712Refusals(t *testing.T) {
	key := testEthKey(t)
	mail := string(readFile(t, "eip712_mail.json"))
	permit := func(chain, value string) string { return fmt.Sprintf(permitTemplate, chain, value) }
	cases := []struct {
		name, doc string
		chain     uint64
		want      string
	}{
		{"not json", "{", 0, "malformed JSON"},
		{"trailing", mail + "{}", 0, "data after"},
		{"array", "[]", 0, "exactly types"},
		{"invalid utf-8", strings.Replace(mail, "Bob!", "Bob\xff", 1), 0, "UTF-8"},
		{"lone surrogate", strings.Replace(mail, "Bob!", `Bob\ud800`, 1), 0, "U+FFFD"},
		{"null", strings.Replace(mail, `"Hello, Bob!"`, "null", 1), 0, "null"},
		{"null in array", permit("1", "[null]"), 0, "null"},
		{"duplicate key", strings.Replace(mail, `"contents":"Hello, Bob!"`, `"contents":"a","contents":"b"`, 1), 0, "duplicated"},
		{"case variant key", strings.Replace(mail, `"primaryType":"Mail"`, `"primaryType":"Mail","primarytype":"Person"`, 1), 0, "exactly types"},
		{"extra top-level key", strings.Replace(mail, `"primaryType":"Mail"`, `"primaryType":"Mail","x":1`, 1), 0, "exactly types"},
		{"unknown domain field", strings.Replace(mail, `"version":"1",`, `"version":"1","foo":"bar",`, 1), 0, "unsupported field"},
		{"domain field not a string", strings.Replace(mail, `"version":"1"`, `"version":1`, 1), 0, "short string"},
		{"chain mismatch", mail, 5, "differs from the request"},
		{"negative chain", permit("-1", "1"), 0, "out of range"},
		{"float", permit("1", "1.5"), 0, "integers"},
		{"exponent", permit("1", "1e3"), 0, "integers"},
		{"undeclared primary type", strings.Replace(mail, `"primaryType":"Mail"`, `"primaryType":"Nope"`, 1), 0, "primaryType"},
		{"domain as primary type", strings.Replace(mail, `"primaryType":"Mail"`, `"primaryType":"EIP712Domain"`, 1), 0, "primaryType"},
		{"no domain type", strings.Replace(mail, `"EIP712Domain"`, `"Other"`, 1), 0, "declare EIP712Domain"},
		{"field twice", strings.Replace(mail, `{"name":"contents","type":"string"}`, `{"name":"contents","type":"string"},{"name":"contents","type":"string"}`, 1), 0, "field twice"},
		{"field extra key", strings.Replace(mail, `{"name":"contents","type":"string"}`, `{"name":"contents","type":"string","x":"y"}`, 1), 0, "exactly name and type"},
		{"wrong value type", strings.Replace(mail, `"Hello, Bob!"`, "true", 1), 0, "does not hash"},
		{"missing field", strings.Replace(mail, `,"contents":"Hello, Bob!"`, "", 1), 0, "does not hash"},
		{"extra message field", strings.Replace(mail, `"contents":"Hello, Bob!"`, `"contents":"Hello, Bob!","x":"y"`, 1), 0, "does not hash"},
		{"value too big for type", permit("1", `"0x1`+strings.Repeat("0", 64)+`"`), 0, "does not hash"},
		{"deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), 0, "too deep"},
		{"too many types", manyTypes(40), 0, "at most 32 types"},
		{"struct named uint256", strings.Replace(strings.Replace(mail, `"Person":`, `"uint256":`, 1), `"type":"Person"`, `"type":"uint256"`, -1), 0, "atomic type"},
		{"type name not an identifier", strings.Replace(strings.Replace(mail, `"Person":`, `"Per son":`, 1), `"type":"Person"`, `"type":"Per son"`, -1), 0, "not an identifier"},
		{"too much work", heavyDoc(250, 300), 0, "too complex"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(Request{Kind: EIP712, Bytes: []byte(tc.doc), ChainID: tc.chain}, key.pub)
			if p != nil {
				t.Fatal("Parse returned a result with an error")
			}
			wantInvalid(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused for %q, want %q", err, tc.want)
			}
		})
	}
}

// manyTypes declares n struct types besides the domain.
func manyTypes(n int) string {
	var b strings.Builder
	b.WriteString(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}]`)
	for i := range n {
		fmt.Fprintf(&b, `,"T%d":[{"name":"a","type":"uint8"}]`, i)
	}
	b.WriteString(`},"primaryType":"T0","domain":{"name":"x"},"message":{"a":1}}`)
	return b.String()
}

// heavyDoc declares a type with pad fields, which apitypes re-validates
// for every struct it encodes, and a message holding objects structs: the
// shape that costs apitypes most for its size.
func heavyDoc(pad, objects int) string {
	var b strings.Builder
	b.WriteString(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Pad":[`)
	for i := range pad {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"f%d","type":"bool"}`, i)
	}
	b.WriteString(`],"Item":[{"name":"b","type":"bool"}],"Top":[{"name":"items","type":"Item[]"}]},"primaryType":"Top","domain":{"name":"x"},"message":{"items":[`)
	for i := range objects {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"b":true}`)
	}
	b.WriteString(`]}}`)
	return b.String()
}

// TestApitypesNullPanic: go-ethereum's apitypes panics when an array item
// is JSON null (reflect.TypeOf(nil).Kind()). Parse refuses nulls before
// hashing, and hashes under safeCall in case of other such shapes.
func TestApitypesNullPanic(t *testing.T) {
	doc := fmt.Sprintf(permitTemplate, "1", "1")
	doc = strings.Replace(doc, `{"name":"deadline","type":"uint256"}`, `{"name":"deadline","type":"uint256[]"}`, 1)
	doc = strings.Replace(doc, `"deadline":"0x7fffffff"`, `"deadline":[null]`, 1)
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(doc), &td); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { t.Logf("apitypes panicked: %v", recover() != nil) }()
		_, _, _ = apitypes.TypedDataAndHash(td)
	}()
	p, err := Parse(Request{Kind: EIP712, Bytes: []byte(doc)}, testEthKey(t).pub)
	if p != nil {
		t.Fatal("Parse returned a result")
	}
	wantInvalid(t, err)
}

package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, doc string) *Document {
	t.Helper()
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return d
}

func TestParseExample(t *testing.T) {
	raw := readExample(t)
	d, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version() != 3 {
		t.Fatalf("version %d", d.Version())
	}
	if !bytes.Equal(d.Canonical(), raw) {
		t.Fatal("Canonical is not the bytes parsed")
	}
	c := d.Canonical()
	c[0] = 'X'
	if !bytes.Equal(d.Canonical(), raw) {
		t.Fatal("Canonical shares its bytes with the caller")
	}
	raw[0] = 'X'
	if d.Canonical()[0] == 'X' {
		t.Fatal("Document shares its bytes with Parse's argument")
	}
	if d.def == nil || len(d.keys) != 1 || d.keys[key2] == nil {
		t.Fatalf("rule sets: default %v, %d keys", d.def != nil, len(d.keys))
	}
	l := d.def.limits["eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]
	if l == nil || l.maxPerTx.Int64() != 500 || l.window.Seconds() != 3600 || l.maxPerWindow.Int64() != 600 {
		t.Fatalf("token limit %+v", l)
	}
}

// doc wraps a default rule set into a version 1 document.
func doc(ruleSet string) string { return `{"version":1,"default":` + ruleSet + `}` }

func TestParseRefuses(t *testing.T) {
	long := longDocument(MaxDocumentSize + 1)
	deep := `{"version":1,"default":{"kinds":[[[[["x"]]]]]}}`
	for name, in := range map[string]string{
		"empty":                  ``,
		"too long":               long,
		"whitespace only":        `   `,
		"invalid UTF-8":          "{\"version\":1,\"default\":{\"kinds\":[\"a\xff\"]}}",
		"array":                  `[1]`,
		"string":                 `"x"`,
		"trailing data":          `{"version":1} {}`,
		"trailing garbage":       `{"version":1}x`,
		"truncated":              `{"version":1`,
		"duplicate top key":      `{"version":1,"version":2}`,
		"duplicate nested key":   doc(`{"any_destination":true,"any_destination":false}`),
		"case variant key":       `{"Version":1}`,
		"case variant duplicate": `{"version":2,"Version":1}`,
		"kelvin sign key":        `{"version":1,"default":{"\u212ainds":[]}}`,
		"unknown field":          `{"version":1,"extra":true}`,
		"unknown nested field":   doc(`{"allow_everything":true}`),
		"null":                   `{"version":1,"default":null}`,
		"null in list":           doc(`{"kinds":[null]}`),
		"too deep":               deep,
		"no version":             `{}`,
		"version 0":              `{"version":0}`,
		"version negative":       `{"version":-1}`,
		"version fraction":       `{"version":1.5}`,
		"version 1.0":            `{"version":1.0}`,
		"version exponent":       `{"version":1e3}`,
		"version string":         `{"version":"1"}`,
		"version 2^63":           `{"version":9223372036854775808}`,
		"version 2^64":           `{"version":18446744073709551616}`,
		"key ID uppercase":       `{"version":1,"keys":{"0A02020202020202020202020202020202020202020202020202020202020202":{}}}`,
		"key ID short":           `{"version":1,"keys":{"0202":{}}}`,
		"key ID not hex":         `{"version":1,"keys":{"zz02020202020202020202020202020202020202020202020202020202020202":{}}}`,
		"kind uppercase":         doc(`{"kinds":["ETH_TX"]}`),
		"kind empty":             doc(`{"kinds":[""]}`),
		"kind unknown":           doc(`{"kinds":["eth_tx"]}`),
		"kind repeated":          doc(`{"kinds":["eth-transaction","eth-transaction"]}`),
		"chain 0":                doc(`{"chain_ids":[0]}`),
		"chain repeated":         doc(`{"chain_ids":[1,1]}`),
		"chain as string":        doc(`{"chain_ids":["1"]}`),
		"bad address":            doc(`{"allow_destinations":["not an address!"]}`),
		"short ETH address":      doc(`{"deny_destinations":["0x1234"]}`),
		"0X address":             doc(`{"deny_destinations":["0X1111111111111111111111111111111111111111"]}`),
		"repeated address case":  doc(`{"allow_destinations":["0xabcdef0000000000000000000000000000000000","0xABCDEF0000000000000000000000000000000000"]}`),
		"repeated bech32 case":   doc(`{"deny_destinations":["bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq","BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"]}`),
		"any with allow list":    doc(`{"any_destination":true,"allow_destinations":["0x1111111111111111111111111111111111111111"]}`),
		"unknown asset":          doc(`{"chain_ids":[1],"limits":[{"asset":"eth","chain_id":1}]}`),
		"native no chain":        doc(`{"chain_ids":[1],"limits":[{"asset":"native"}]}`),
		"btc with chain":         doc(`{"chain_ids":[1],"limits":[{"asset":"btc","chain_id":1}]}`),
		"chain not listed":       doc(`{"chain_ids":[1],"limits":[{"asset":"native","chain_id":5}]}`),
		"no asset":               doc(`{"limits":[{"max_per_tx":"1"}]}`),
		"amount leading zero":    doc(`{"limits":[{"asset":"btc","max_per_tx":"01"}]}`),
		"amount negative":        doc(`{"limits":[{"asset":"btc","max_per_tx":"-1"}]}`),
		"amount plus":            doc(`{"limits":[{"asset":"btc","max_per_tx":"+1"}]}`),
		"amount hex":             doc(`{"limits":[{"asset":"btc","max_per_tx":"0x10"}]}`),
		"amount empty":           doc(`{"limits":[{"asset":"btc","max_per_tx":""}]}`),
		"amount fraction":        doc(`{"limits":[{"asset":"btc","max_per_tx":"1.5"}]}`),
		"amount number":          doc(`{"limits":[{"asset":"btc","max_per_tx":1}]}`),
		"amount 2^256":           doc(`{"limits":[{"asset":"btc","max_per_tx":"115792089237316195423570985008687907853269984665640564039457584007913129639936"}]}`),
		"window without max":     doc(`{"limits":[{"asset":"btc","window_seconds":60}]}`),
		"max without window":     doc(`{"limits":[{"asset":"btc","max_per_window":"5"}]}`),
		"window 0":               doc(`{"limits":[{"asset":"btc","window_seconds":0,"max_per_window":"5"}]}`),
		"window too long":        doc(`{"limits":[{"asset":"btc","window_seconds":2678401,"max_per_window":"5"}]}`),
		"two limits same asset":  doc(`{"chain_ids":[1],"limits":[{"asset":"native","chain_id":1},{"asset":"native","chain_id":1}]}`),
		"two limits token case": doc(`{"chain_ids":[1],"limits":[{"asset":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48","chain_id":1},` +
			`{"asset":"0xA0B86991C6218B36C1D19D4A2E9EB0CE3606EB48","chain_id":1}]}`),
		"bool as string": doc(`{"allow_blind_signing":"true"}`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse([]byte(in))
			if !errors.Is(err, ErrMalformed) || d != nil {
				t.Fatalf("Parse = %v, %v; want ErrMalformed", d, err)
			}
		})
	}
}

// longDocument returns a valid document of at least n bytes.
func longDocument(n int) string {
	var b strings.Builder
	b.WriteString(`{"version":1,"default":{"allow_destinations":["0x0000000000000000000000000000000000000000"`)
	for i := 1; b.Len() < n; i++ {
		fmt.Fprintf(&b, `,"0x%040x"`, i)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func TestParseSizeLimit(t *testing.T) {
	ok := longDocument(MaxDocumentSize - 100)
	if len(ok) > MaxDocumentSize {
		t.Fatalf("test document of %d bytes", len(ok))
	}
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("document of %d bytes: %v", len(ok), err)
	}
}

func TestParseAccepts(t *testing.T) {
	for name, in := range map[string]string{
		"minimal":              `{"version":1}`,
		"whitespace":           " \n{ \"version\" : 1 }\n ",
		"max version":          `{"version":9223372036854775807}`,
		"empty rule set":       doc(`{}`),
		"empty lists":          doc(`{"kinds":[],"chain_ids":[],"limits":[]}`),
		"max window":           doc(`{"limits":[{"asset":"btc","window_seconds":2678400,"max_per_window":"0"}]}`),
		"max amount":           doc(`{"limits":[{"asset":"btc","max_per_tx":"115792089237316195423570985008687907853269984665640564039457584007913129639935"}]}`),
		"same asset two chain": doc(`{"chain_ids":[1,10],"limits":[{"asset":"native","chain_id":1},{"asset":"native","chain_id":10}]}`),
		"deny and allow":       doc(`{"allow_destinations":["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"],"deny_destinations":["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]}`),
		"base58 case differs":  doc(`{"allow_destinations":["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy","3j98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]}`),
		"keys only":            `{"version":5,"keys":{"0101010101010101010101010101010101010101010101010101010101010101":{"any_destination":true}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse([]byte(in)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestParseErrorsDoNotEcho: refusals name fields, not the values found.
func TestParseErrorsDoNotEcho(t *testing.T) {
	const marker = "SECRETMARKER"
	for _, in := range []string{
		`{"version":"` + marker + `"}`,
		doc(`{"kinds":["` + marker + `!"]}`),
		doc(`{"allow_destinations":["` + marker + `!"]}`),
		doc(`{"limits":[{"asset":"` + marker + `","chain_id":1}]}`),
		doc(`{"limits":[{"asset":"btc","max_per_tx":"` + marker + `"}]}`),
		`{"version":1,"keys":{"` + strings.ToLower(marker) + `":{}}}`,
		`{"version":1,"` + marker + `":1}`,
		`{"version":1}` + marker,
	} {
		_, err := Parse([]byte(in))
		if err == nil || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(marker)) {
			t.Errorf("Parse(%s): %v", in, err)
		}
	}
}

func TestCanonicalAddress(t *testing.T) {
	for in, want := range map[string]string{
		"0xAbCdEf0000000000000000000000000000000000":                     "0xabcdef0000000000000000000000000000000000",
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed":                     "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
		"BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ":                     "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
		"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx":                     "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
		"bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw":                   "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw",
		"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2":                             "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
		"bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297": "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
	} {
		got, ok := canonicalAddress(in)
		if !ok || got != want {
			t.Errorf("canonicalAddress(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0x", "0x123", "0x" + strings.Repeat("g", 40), "bc1 space", strings.Repeat("a", 91), "short", "0X1111111111111111111111111111111111111111"} {
		if got, ok := canonicalAddress(in); ok {
			t.Errorf("canonicalAddress(%q) = %s, want refusal", in, got)
		}
	}
}

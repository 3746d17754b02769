package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Bounds on EIP-712 documents. apitypes re-validates every type and
// recomputes the type hash for every struct it encodes, so its work grows
// with (declared fields) × (objects in the message) and with the size of
// the type graph; these bounds keep the worst case measured here near 30 ms
// while leaving room for real documents (a Seaport order declares about 30
// fields).
const (
	maxJSONDepth   = 24
	maxJSONNodes   = 4096
	maxTypedTypes  = 32
	maxTypedFields = 256
	maxTypedName   = 256
	// maxTypedWork bounds declared fields × (objects in the message + 1).
	maxTypedWork = 1 << 16
)

const domainType = "EIP712Domain"

// Struct type names must be identifiers, and not the name of an atomic
// type: apitypes would otherwise encode "uint256" as a struct where other
// implementations see an integer.
var (
	structName = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)
	atomicName = regexp.MustCompile(`^(address|bool|string|(u?int|bytes)[0-9]*)$`)
)

// Domain keys apitypes.TypedDataDomain can carry; any other key would be
// dropped silently, so a document using one is refused.
var domainKeys = map[string]bool{
	"name": true, "version": true, "chainId": true, "verifyingContract": true, "salt": true,
}

func parseEIP712(req Request, key ethKey) (*Parsed, error) {
	root, err := decodeJSON(req.Bytes)
	if err != nil {
		return nil, err
	}
	td, err := typedData(root)
	if err != nil {
		return nil, err
	}
	chain, err := typedChain(td.Domain.ChainId, req.ChainID)
	if err != nil {
		return nil, err
	}
	var digest []byte
	// apitypes panics on some hostile documents (reflection on values of
	// the wrong shape); decodeJSON already refuses the ones known (nulls).
	err = safeCall("EIP-712 hashing failed", func() (err error) {
		digest, _, err = apitypes.TypedDataAndHash(td)
		return err
	})
	if err != nil || len(digest) != DigestSize {
		return nil, invalid("EIP-712 document does not hash (types and values disagree)")
	}
	p := newParsed(EIP712, SchemeECDSA, key.pub, [DigestSize]byte(digest))
	p.eth = &ethState{from: key.addr}
	p.Summary.ChainID = chain
	p.Summary.Typed = typedSummary(td)
	return p, nil
}

func typedSummary(td apitypes.TypedData) *Typed {
	t := &Typed{PrimaryType: td.PrimaryType, Name: td.Domain.Name, Version: td.Domain.Version}
	t.VerifyingContract = td.Domain.VerifyingContract
	if common.IsHexAddress(t.VerifyingContract) {
		t.VerifyingContract = common.HexToAddress(t.VerifyingContract).Hex()
	}
	return t
}

// typedChain settles the chain of a document: the domain's chainId when it
// has one (which must agree with the request's, if set), else the request's.
func typedChain(domain *math.HexOrDecimal256, req uint64) (uint64, error) {
	if domain == nil {
		return req, nil
	}
	c := (*big.Int)(domain)
	if c.Sign() < 0 || !c.IsUint64() {
		return 0, invalid("chain ID out of range")
	}
	if req != 0 && c.Uint64() != req {
		return 0, invalid("chain ID differs from the request's")
	}
	return c.Uint64(), nil
}

// typedData builds an apitypes.TypedData from a strict JSON tree, with
// exact keys at every level apitypes would otherwise match loosely.
func typedData(root any) (apitypes.TypedData, error) {
	var td apitypes.TypedData
	obj, ok := root.(map[string]any)
	if !ok || !exactKeys(obj, "types", "primaryType", "domain", "message") {
		return td, invalid("EIP-712 document needs exactly types, primaryType, domain and message")
	}
	types, fields, err := typedTypes(obj["types"])
	if err != nil {
		return td, err
	}
	td.Types = types
	td.PrimaryType, ok = obj["primaryType"].(string)
	if !ok || td.PrimaryType == domainType || types[td.PrimaryType] == nil {
		return td, invalid("EIP-712 primaryType must name a declared type")
	}
	if td.Domain, err = typedDomain(obj["domain"]); err != nil {
		return td, err
	}
	msg, ok := obj["message"].(map[string]any)
	if !ok {
		return td, invalid("EIP-712 message must be an object")
	}
	if fields*(countObjects(msg)+1) > maxTypedWork {
		return td, invalid("EIP-712 document too complex")
	}
	td.Message, err = typedValues(msg)
	return td, err
}

func typedTypes(v any) (apitypes.Types, int, error) {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) > maxTypedTypes {
		return nil, 0, invalid("EIP-712 types must be an object of at most 32 types")
	}
	if _, ok := obj[domainType]; !ok {
		return nil, 0, invalid("EIP-712 types must declare EIP712Domain")
	}
	types, total := apitypes.Types{}, 0
	for name, list := range obj {
		fields, err := typedFields(list)
		if err != nil {
			return nil, 0, err
		}
		if !structName.MatchString(name) || len(name) > maxTypedName || atomicName.MatchString(name) {
			return nil, 0, invalid("EIP-712 type name is not an identifier or names an atomic type")
		}
		types[name] = fields
		total += len(fields)
	}
	if total > maxTypedFields {
		return nil, 0, invalid("EIP-712 types declare too many fields")
	}
	return types, total, nil
}

func typedFields(v any) ([]apitypes.Type, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, invalid("EIP-712 type must be a list of fields")
	}
	fields := make([]apitypes.Type, 0, len(list))
	seen := map[string]bool{}
	for _, f := range list {
		obj, ok := f.(map[string]any)
		if !ok || !exactKeys(obj, "name", "type") {
			return nil, invalid("EIP-712 field needs exactly name and type")
		}
		name, ok1 := obj["name"].(string)
		typ, ok2 := obj["type"].(string)
		if !ok1 || !ok2 || name == "" || typ == "" || len(name) > maxTypedName || len(typ) > maxTypedName {
			return nil, invalid("EIP-712 field name or type empty or too long")
		}
		if seen[name] {
			return nil, invalid("EIP-712 type declares a field twice")
		}
		seen[name] = true
		fields = append(fields, apitypes.Type{Name: name, Type: typ})
	}
	return fields, nil
}

func typedDomain(v any) (apitypes.TypedDataDomain, error) {
	var d apitypes.TypedDataDomain
	obj, ok := v.(map[string]any)
	if !ok {
		return d, invalid("EIP-712 domain must be an object")
	}
	for k, val := range obj {
		if !domainKeys[k] {
			return d, invalid("EIP-712 domain has an unsupported field")
		}
		if k == "chainId" {
			continue
		}
		s, ok := val.(string)
		if !ok || len(s) > maxTypedName {
			return d, invalid("EIP-712 domain field must be a short string")
		}
		switch k {
		case "name":
			d.Name = s
		case "version":
			d.Version = s
		case "verifyingContract":
			d.VerifyingContract = s
		case "salt":
			d.Salt = s
		}
	}
	if c, ok := obj["chainId"]; ok {
		n, err := typedInteger(c)
		if err != nil {
			return d, err
		}
		d.ChainId = n
	}
	return d, nil
}

// typedInteger reads a JSON integer literal or a decimal or 0x-hex string.
func typedInteger(v any) (*math.HexOrDecimal256, error) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
		if strings.ContainsAny(s, ".eE") {
			return nil, invalid("EIP-712 numbers must be integers")
		}
	case string:
		s = t
	default:
		return nil, invalid("EIP-712 integer has the wrong JSON type")
	}
	n, ok := math.ParseBig256(s)
	if !ok {
		return nil, invalid("EIP-712 integer out of range")
	}
	return (*math.HexOrDecimal256)(n), nil
}

// typedValues converts JSON numbers in a message to the integer type
// apitypes takes, so no value passes through float64.
func typedValues(m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		c, err := typedValue(v)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

func typedValue(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		return typedValues(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := typedValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		return typedInteger(t)
	}
	return v, nil
}

func countObjects(v any) int {
	n := 0
	switch t := v.(type) {
	case map[string]any:
		n++
		for _, e := range t {
			n += countObjects(e)
		}
	case []any:
		n++
		for _, e := range t {
			n += countObjects(e)
		}
	}
	return n
}

func exactKeys(obj map[string]any, keys ...string) bool {
	if len(obj) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			return false
		}
	}
	return true
}

// decodeJSON reads one JSON value into a tree of map[string]any, []any,
// string, json.Number and bool. It refuses invalid UTF-8 (and strings that
// decode to U+FFFD, which is how lone surrogate escapes come out), nulls,
// duplicate keys, nesting deeper than maxJSONDepth, more than maxJSONNodes
// values, and anything after the value.
func decodeJSON(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, invalid("JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	r := &jsonReader{dec: dec}
	v, err := r.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("data after the JSON value")
	}
	return v, nil
}

type jsonReader struct {
	dec   *json.Decoder
	nodes int
}

var errMalformedJSON = invalid("malformed JSON")

func (r *jsonReader) value(depth int) (any, error) {
	if r.nodes++; depth > maxJSONDepth || r.nodes > maxJSONNodes {
		return nil, invalid("JSON too deep or too large")
	}
	tok, err := r.dec.Token()
	if err != nil {
		return nil, errMalformedJSON
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return r.object(depth)
		}
		if t == '[' {
			return r.array(depth)
		}
	case string:
		if strings.ContainsRune(t, utf8.RuneError) {
			return nil, invalid("JSON string holds U+FFFD")
		}
		return t, nil
	case json.Number, bool:
		return t, nil
	case nil:
		return nil, invalid("JSON null")
	}
	return nil, errMalformedJSON
}

func (r *jsonReader) object(depth int) (any, error) {
	m := map[string]any{}
	for r.dec.More() {
		tok, err := r.dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, errMalformedJSON
		}
		if _, dup := m[key]; dup || strings.ContainsRune(key, utf8.RuneError) {
			return nil, invalid("JSON key duplicated or holds U+FFFD")
		}
		if m[key], err = r.value(depth + 1); err != nil {
			return nil, err
		}
	}
	if _, err := r.dec.Token(); err != nil {
		return nil, errMalformedJSON
	}
	return m, nil
}

func (r *jsonReader) array(depth int) (any, error) {
	list := []any{}
	for r.dec.More() {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	if _, err := r.dec.Token(); err != nil {
		return nil, errMalformedJSON
	}
	return list, nil
}

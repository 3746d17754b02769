package kmsemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// maxPolicySize is KMS's limit on a key policy document.
const maxPolicySize = 32 * 1024

// defaultPolicy is used when CreateKey has no Policy: like AWS's default
// key policy for the account, it allows every action.
const defaultPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable all KMS actions","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}`

// policy is a parsed key policy (see the package documentation).
type policy struct {
	statements []statement
}

type statement struct {
	name       string   // Sid, or "statement <index>"
	allow      bool     // Effect Allow (true) or Deny
	actions    []string // lowercase patterns with * and ?
	conditions []condition
}

// condition is one operator applied to one key: it holds if the request
// value matches any of values (for negated operators: none of them).
type condition struct {
	op     operator
	key    string // canonical, see canonicalKey
	values []string
}

type operator struct {
	name       string
	ignoreCase bool
	negated    bool
}

var operators = map[string]operator{
	"StringEquals":              {"StringEquals", false, false},
	"StringNotEquals":           {"StringNotEquals", false, true},
	"StringEqualsIgnoreCase":    {"StringEqualsIgnoreCase", true, false},
	"StringNotEqualsIgnoreCase": {"StringNotEqualsIgnoreCase", true, true},
}

// rawStatement is a statement as written. Fields the emulator cannot
// honour (NotAction, NotPrincipal, NotResource) are decoded only to refuse
// them.
type rawStatement struct {
	Sid          string
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	Action       stringList
	NotAction    json.RawMessage
	Resource     json.RawMessage
	NotResource  json.RawMessage
	Condition    map[string]map[string]stringList
}

// stringList is an IAM value that may be one string or a list of them.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("expected a string or a list of strings")
	}
	*s = many
	return nil
}

// parsePolicy parses and validates a key policy document.
func parsePolicy(doc string) (*policy, *apiError) {
	if len(doc) > maxPolicySize {
		return nil, malformedPolicy("the policy is larger than %d bytes", maxPolicySize)
	}
	var raw struct {
		Version   string
		ID        string `json:"Id"`
		Statement json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, malformedPolicy("the policy is not a JSON policy document")
	}
	stmts, aerr := decodeStatements(raw.Statement)
	if aerr != nil {
		return nil, aerr
	}
	p := &policy{}
	for i, rs := range stmts {
		st, aerr := compileStatement(i, rs)
		if aerr != nil {
			return nil, aerr
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

// decodeStatements accepts Statement as one object or a list of them.
func decodeStatements(b json.RawMessage) ([]rawStatement, *apiError) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		b = append(append([]byte{'['}, b...), ']')
	}
	var stmts []rawStatement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&stmts); err != nil || len(stmts) == 0 {
		return nil, malformedPolicy("Statement must be a statement or a non-empty list of statements")
	}
	return stmts, nil
}

func compileStatement(i int, rs rawStatement) (statement, *apiError) {
	st := statement{name: rs.Sid}
	if st.name == "" {
		st.name = "statement " + strconv.Itoa(i)
	}
	switch {
	case rs.NotAction != nil || rs.NotPrincipal != nil || rs.NotResource != nil:
		return st, malformedPolicy("%s: NotAction, NotPrincipal and NotResource are not supported", st.name)
	case rs.Effect != "Allow" && rs.Effect != "Deny":
		return st, malformedPolicy("%s: Effect must be Allow or Deny", st.name)
	case len(rs.Action) == 0:
		return st, malformedPolicy("%s: Action is required", st.name)
	}
	st.allow = rs.Effect == "Allow"
	for _, a := range rs.Action {
		st.actions = append(st.actions, strings.ToLower(a))
	}
	conds, aerr := compileConditions(st.name, rs.Condition)
	st.conditions = conds
	return st, aerr
}

func compileConditions(name string, raw map[string]map[string]stringList) ([]condition, *apiError) {
	var out []condition
	for _, opName := range slices.Sorted(maps.Keys(raw)) {
		op, ok := operators[opName]
		if !ok {
			return nil, malformedPolicy("%s: condition operator %q is not supported by the emulator", name, opName)
		}
		keys := raw[opName]
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			values := keys[key]
			if key == "" || len(values) == 0 {
				return nil, malformedPolicy("%s: a condition needs a key and at least one value", name)
			}
			out = append(out, condition{op: op, key: canonicalKey(key), values: values})
		}
	}
	return out, nil
}

// canonicalKey folds a condition key's case: IAM condition key names are
// case-insensitive, but the context key after kms:EncryptionContext: is
// case-sensitive.
func canonicalKey(k string) string {
	const ecPrefix = "kms:encryptioncontext:"
	if len(k) > len(ecPrefix) && strings.EqualFold(k[:len(ecPrefix)], ecPrefix) {
		return ecPrefix + k[len(ecPrefix):]
	}
	return strings.ToLower(k)
}

// requestContext maps canonical condition keys to the request's values.
type requestContext map[string]string

// authorize evaluates p for action (e.g. "kms:Decrypt"). It returns nil if
// an Allow statement matches and no Deny does, else a reason.
func (p *policy) authorize(action string, rc requestContext) error {
	var allowed bool
	var unmet []string
	for _, st := range p.statements {
		if !st.matchesAction(action) {
			continue
		}
		if failed, ok := st.conditionsHold(rc); !ok {
			if st.allow {
				unmet = append(unmet, fmt.Sprintf("%s (condition on %s not met)", st.name, failed))
			}
			continue
		}
		if !st.allow {
			return fmt.Errorf("an explicit deny in the key policy (%s)", st.name)
		}
		allowed = true
	}
	if allowed {
		return nil
	}
	if len(unmet) > 0 {
		return fmt.Errorf("no key policy statement allows the action; statements whose conditions failed: %s",
			strings.Join(unmet, "; "))
	}
	return fmt.Errorf("no key policy statement allows the action")
}

func (st statement) matchesAction(action string) bool {
	action = strings.ToLower(action)
	return slices.ContainsFunc(st.actions, func(pattern string) bool {
		return wildcardMatch(pattern, action)
	})
}

// conditionsHold reports whether every condition holds; if not, it
// returns the key of the first that does not.
func (st statement) conditionsHold(rc requestContext) (string, bool) {
	for _, c := range st.conditions {
		if !c.holds(rc) {
			return c.key, false
		}
	}
	return "", true
}

func (c condition) holds(rc requestContext) bool {
	got, present := rc[c.key]
	if !present {
		return c.op.negated
	}
	match := slices.ContainsFunc(c.values, func(want string) bool {
		if c.op.ignoreCase {
			return strings.EqualFold(got, want)
		}
		return got == want
	})
	return match != c.op.negated
}

// wildcardMatch matches s against an IAM pattern where * is any run of
// characters and ? any one character.
func wildcardMatch(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px, mark = star+1, mark+1
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

package deploy

import (
	"fmt"
	"strings"
)

// There is no YAML module in go.mod and no helm binary here, so the chart
// is checked with this reader of the subset values.yaml and Chart.yaml
// keep to: block maps of "key: value" and "key:", lists of scalars
// ("- value"), the empty flow forms {} and [], comments on their own lines,
// two-space indentation, no tabs. Anything else is an error, which keeps
// the files within what the checks understand.

// yamlLine is a meaningful line: its number, indentation and text.
type yamlLine struct {
	n, indent  int
	text       string
	documented bool // a comment line at the same indentation comes right before it
}

func yamlLines(src string) ([]yamlLine, error) {
	var out []yamlLine
	commentAt := -1 // indentation of the comment just before, or -1
	for i, raw := range strings.Split(src, "\n") {
		if strings.Contains(raw, "\t") {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		text := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(text)
		switch {
		case strings.TrimSpace(text) == "":
			commentAt = -1
		case strings.HasPrefix(text, "#"):
			commentAt = indent
		default:
			if indent%2 != 0 {
				return nil, fmt.Errorf("line %d: indentation of %d spaces", i+1, indent)
			}
			out = append(out, yamlLine{i + 1, indent, strings.TrimRight(text, " "), commentAt == indent})
			commentAt = -1
		}
	}
	return out, nil
}

// parseYAML reads the subset into maps, lists and scalar strings; undoc
// lists the keys that have no comment right above them.
func parseYAML(src string) (tree map[string]any, undoc []string, err error) {
	lines, err := yamlLines(src)
	if err != nil {
		return nil, nil, err
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(0, "")
	if err != nil {
		return nil, nil, err
	}
	if p.i < len(lines) {
		return nil, nil, fmt.Errorf("line %d: unexpected indentation", lines[p.i].n)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("the document is not a map")
	}
	return m, p.undoc, nil
}

type yamlParser struct {
	lines []yamlLine
	i     int
	undoc []string
}

// block reads the map or list whose lines are at indent.
func (p *yamlParser) block(indent int, path string) (any, error) {
	if p.i < len(p.lines) && p.lines[p.i].indent == indent && strings.HasPrefix(p.lines[p.i].text, "- ") {
		return p.list(indent)
	}
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := p.lines[p.i]
		key, val, ok := strings.Cut(l.text, ":")
		if !ok || key == "" || strings.ContainsAny(key, " \"'{}[]") || (val != "" && val[0] != ' ') {
			return nil, fmt.Errorf("line %d: not a \"key: value\" line", l.n)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: key %s repeated", l.n, key)
		}
		if !l.documented {
			p.undoc = append(p.undoc, path+key)
		}
		p.i++
		v, err := p.value(strings.TrimSpace(val), indent, path+key+".", l.n)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, nil
}

// value reads what follows "key:": a scalar, {} or [], or a nested block.
func (p *yamlParser) value(val string, indent int, path string, n int) (any, error) {
	switch {
	case val == "{}":
		return map[string]any{}, nil
	case val == "[]":
		return []any{}, nil
	case strings.HasPrefix(val, "{") || strings.HasPrefix(val, "[") || strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">"):
		return nil, fmt.Errorf("line %d: flow or block scalars are outside the subset", n)
	case val != "":
		return scalar(val), nil
	case p.i < len(p.lines) && p.lines[p.i].indent > indent:
		return p.block(p.lines[p.i].indent, path)
	}
	return nil, fmt.Errorf("line %d: a key without a value", n)
}

func (p *yamlParser) list(indent int) (any, error) {
	var out []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		item, ok := strings.CutPrefix(p.lines[p.i].text, "- ")
		if !ok || strings.Contains(item, ": ") {
			return nil, fmt.Errorf("line %d: only lists of scalars are in the subset", p.lines[p.i].n)
		}
		out = append(out, scalar(item))
		p.i++
	}
	return out, nil
}

// scalar unquotes a double-quoted string; other scalars stay as written.
func scalar(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// lookup follows a dotted path through maps.
func lookup(tree map[string]any, path string) bool {
	var cur any = tree
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

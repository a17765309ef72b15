package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// jsonPath is the subset of kubectl's JSONPath templates that scripts use:
// literal text, {.field.path} with [n] and [*], {"literal"}, and
// {range EXPR}...{end}. Several results of one expression print space
// separated, as kubectl does.
type jsonPath struct{ nodes []jpNode }

type jpNode struct {
	text  string   // literal
	path  []string // a field path (segments like "items", "[*]", "[0]")
	isVar bool
	body  []jpNode // range body
	rng   bool
}

func parseJSONPath(tmpl string) (*jsonPath, error) {
	nodes, rest, err := parseJPNodes(tmpl, false)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("jsonpath: unexpected {end}")
	}
	return &jsonPath{nodes: nodes}, nil
}

func parseJPNodes(s string, inRange bool) ([]jpNode, string, error) {
	var nodes []jpNode
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			nodes = append(nodes, jpNode{text: s})
			return nodes, "", nil
		}
		if open > 0 {
			nodes = append(nodes, jpNode{text: s[:open]})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, "", fmt.Errorf("jsonpath: unclosed { in %q", s)
		}
		expr := strings.TrimSpace(s[open+1 : open+end])
		s = s[open+end+1:]
		switch {
		case expr == "end":
			if !inRange {
				return nil, "", fmt.Errorf("jsonpath: {end} without {range}")
			}
			return nodes, s + "\x00", nil
		case strings.HasPrefix(expr, "range "):
			path, err := parseJPPath(strings.TrimSpace(strings.TrimPrefix(expr, "range ")))
			if err != nil {
				return nil, "", err
			}
			body, rest, err := parseJPNodes(s, true)
			if err != nil {
				return nil, "", err
			}
			if !strings.HasSuffix(rest, "\x00") {
				return nil, "", fmt.Errorf("jsonpath: {range} without {end}")
			}
			s = strings.TrimSuffix(rest, "\x00")
			nodes = append(nodes, jpNode{rng: true, path: path, body: body})
		case strings.HasPrefix(expr, `"`):
			lit, err := strconv.Unquote(expr)
			if err != nil {
				return nil, "", fmt.Errorf("jsonpath: bad literal %s", expr)
			}
			nodes = append(nodes, jpNode{text: lit})
		default:
			path, err := parseJPPath(expr)
			if err != nil {
				return nil, "", err
			}
			nodes = append(nodes, jpNode{isVar: true, path: path})
		}
	}
	return nodes, "", nil
}

// parseJPPath splits ".items[*].metadata.name" (a leading $ is allowed).
func parseJPPath(p string) ([]string, error) {
	p = strings.TrimPrefix(p, "$")
	if p != "" && p[0] != '.' && p[0] != '[' {
		return nil, fmt.Errorf("jsonpath: %q must start with a dot", p)
	}
	var segs []string
	for p != "" {
		switch p[0] {
		case '.':
			p = p[1:]
			n := strings.IndexAny(p, ".[")
			if n < 0 {
				n = len(p)
			}
			if n > 0 {
				segs = append(segs, p[:n])
			}
			p = p[n:]
		case '[':
			n := strings.IndexByte(p, ']')
			if n < 0 {
				return nil, fmt.Errorf("jsonpath: unclosed [ in %q", p)
			}
			segs = append(segs, p[:n+1])
			p = p[n+1:]
		default:
			return nil, fmt.Errorf("jsonpath: unexpected %q", p)
		}
	}
	return segs, nil
}

func jpEval(v any, path []string) []any {
	cur := []any{v}
	for _, seg := range path {
		var next []any
		for _, c := range cur {
			switch {
			case seg == "[*]":
				switch t := c.(type) {
				case []any:
					next = append(next, t...)
				case map[string]any:
					for _, k := range sortedKeys(t) {
						next = append(next, t[k])
					}
				}
			case strings.HasPrefix(seg, "["):
				inner := strings.Trim(seg[1:len(seg)-1], `'"`)
				if arr, ok := c.([]any); ok {
					i, err := strconv.Atoi(inner)
					if err == nil && i < 0 {
						i += len(arr)
					}
					if err == nil && i >= 0 && i < len(arr) {
						next = append(next, arr[i])
					}
				} else if m, ok := c.(map[string]any); ok {
					if x, ok := m[inner]; ok {
						next = append(next, x)
					}
				}
			default:
				if m, ok := c.(map[string]any); ok {
					if x, ok := m[seg]; ok {
						next = append(next, x)
					}
				}
			}
		}
		cur = next
	}
	return cur
}

func jpString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	case map[string]any, []any:
		b, _ := json.Marshal(t)
		return string(b)
	}
	return fmt.Sprint(v)
}

func (j *jsonPath) execute(data any) string {
	var b strings.Builder
	jpRun(&b, j.nodes, data)
	return b.String()
}

func jpRun(b *strings.Builder, nodes []jpNode, data any) {
	for _, n := range nodes {
		switch {
		case n.rng:
			for _, item := range jpEval(data, n.path) {
				jpRun(b, n.body, item)
			}
		case n.isVar:
			vals := jpEval(data, n.path)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(jpString(v))
			}
		default:
			b.WriteString(n.text)
		}
	}
}

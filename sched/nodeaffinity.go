package sched

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// nodeSelector is a compiled corev1.NodeSelector: its terms are ORed, the
// requirements of a term ANDed. Compiling once per pod keeps string parsing
// (Gt/Lt operands) out of the per-node loop.
type nodeSelector struct {
	terms []nodeSelectorTerm
}

type nodeSelectorTerm struct {
	labels []nodeRequirement
	fields []nodeRequirement
	// never is set for a term that can match no node: an empty term, or one
	// with a malformed requirement (Kubernetes drops such terms too).
	never bool
}

type nodeRequirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	bound  int64 // the operand of Gt and Lt
}

// compileNodeSelector compiles ns; nil in, nil out.
func compileNodeSelector(ns *corev1.NodeSelector) *nodeSelector {
	if ns == nil {
		return nil
	}
	out := &nodeSelector{terms: make([]nodeSelectorTerm, 0, len(ns.NodeSelectorTerms))}
	for i := range ns.NodeSelectorTerms {
		out.terms = append(out.terms, compileNodeSelectorTerm(&ns.NodeSelectorTerms[i]))
	}
	return out
}

func compileNodeSelectorTerm(t *corev1.NodeSelectorTerm) nodeSelectorTerm {
	var out nodeSelectorTerm
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		out.never = true
		return out
	}
	for _, e := range t.MatchExpressions {
		r, ok := compileNodeRequirement(e, false)
		if !ok {
			out.never = true
			return out
		}
		out.labels = append(out.labels, r)
	}
	for _, e := range t.MatchFields {
		r, ok := compileNodeRequirement(e, true)
		if !ok {
			out.never = true
			return out
		}
		out.fields = append(out.fields, r)
	}
	return out
}

// compileNodeRequirement validates one requirement as the API would. Fields
// support only metadata.name with In and NotIn, as in Kubernetes.
func compileNodeRequirement(e corev1.NodeSelectorRequirement, field bool) (nodeRequirement, bool) {
	r := nodeRequirement{key: e.Key, op: e.Operator, values: e.Values}
	if field {
		if e.Key != "metadata.name" {
			return r, false
		}
		if e.Operator != corev1.NodeSelectorOpIn && e.Operator != corev1.NodeSelectorOpNotIn {
			return r, false
		}
	}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(e.Values) == 0 {
			return r, false
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(e.Values) != 0 {
			return r, false
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(e.Values) != 1 {
			return r, false
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		if err != nil {
			return r, false
		}
		r.bound = n
	default:
		return r, false
	}
	return r, true
}

func (r *nodeRequirement) matches(value string, present bool) bool {
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present {
			return false
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.bound
		}
		return n < r.bound
	}
	return false
}

func (t *nodeSelectorTerm) matches(node *corev1.Node) bool {
	if t.never {
		return false
	}
	for i := range t.labels {
		v, ok := node.Labels[t.labels[i].key]
		if !t.labels[i].matches(v, ok) {
			return false
		}
	}
	for i := range t.fields {
		if !t.fields[i].matches(node.Name, true) {
			return false
		}
	}
	return true
}

// matches reports whether any term matches. A nil selector matches every
// node; a selector without terms matches none.
func (s *nodeSelector) matches(node *corev1.Node) bool {
	if s == nil {
		return true
	}
	for i := range s.terms {
		if s.terms[i].matches(node) {
			return true
		}
	}
	return false
}

// weightedNodeTerm is one preferredDuringScheduling node affinity term.
type weightedNodeTerm struct {
	weight int64
	term   nodeSelectorTerm
}

// nodePlacement is what a pod requires of a node's labels and name:
// spec.nodeSelector and the required node affinity, both of which must hold.
type nodePlacement struct {
	selector map[string]string
	required *nodeSelector
}

func (p *nodePlacement) empty() bool { return len(p.selector) == 0 && p.required == nil }

func (p *nodePlacement) matches(node *corev1.Node) bool {
	for k, v := range p.selector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	return p.required.matches(node)
}

// tolerates reports whether a toleration tolerates a taint, with the API's
// rules: an empty effect matches every effect, an empty key (with Exists)
// every key; Equal (the default) compares values; Lt and Gt compare the
// taint's value numerically with the toleration's.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpLt, corev1.TolerationOpGt:
		want, err1 := strconv.ParseInt(t.Value, 10, 64)
		got, err2 := strconv.ParseInt(taint.Value, 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if t.Operator == corev1.TolerationOpLt {
			return got < want
		}
		return got > want
	}
	return false
}

func toleratesAny(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return true
		}
	}
	return false
}

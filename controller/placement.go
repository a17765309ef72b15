package controller

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// daemonTolerations are added to every DaemonSet pod, as Kubernetes does:
// a node agent's pod must stay on a sick or cordoned node rather than be
// evicted from it (there is nowhere else for it to go).
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// withDaemonTolerations returns tols plus the daemon tolerations it lacks.
func withDaemonTolerations(tols []corev1.Toleration) []corev1.Toleration {
	out := append([]corev1.Toleration(nil), tols...)
	for _, d := range daemonTolerations {
		have := false
		for _, t := range tols {
			if t.Key == d.Key && t.Effect == d.Effect {
				have = true
			}
		}
		if !have {
			out = append(out, d)
		}
	}
	return out
}

// toleratedBy reports whether some toleration in tols tolerates taint.
func toleratedBy(tols []corev1.Toleration, taint *corev1.Taint) *corev1.Toleration {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return &tols[i]
		}
	}
	return nil
}

// tolerates: an empty effect tolerates every effect, an empty key with
// Exists every key; Exists ignores the value, Equal (the default) needs it.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpEqual, "":
		return t.Key != "" && t.Value == taint.Value
	}
	return false
}

// fitsNode reports whether a pod with spec may run on node as far as
// placement goes: nodeSelector, required node affinity, and the node's
// NoExecute taints, and its NoSchedule taints unless running is true (a
// pod already there may stay despite them). It is the DaemonSet's test of
// an eligible node; resources are left to the agent, which rejects a pod
// that does not fit.
func fitsNode(spec *corev1.PodSpec, node *corev1.Node, running bool) (bool, string) {
	if len(spec.NodeSelector) > 0 && !labels.SelectorFromSet(spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false, "node(s) didn't match Pod's node selector"
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		if !nodeSelectorMatches(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution, node) {
			return false, "node(s) didn't match Pod's node affinity"
		}
	}
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule || (running && t.Effect == corev1.TaintEffectNoSchedule) {
			continue
		}
		if toleratedBy(spec.Tolerations, t) == nil {
			return false, "node(s) had untolerated taint {" + t.Key + ": " + t.Value + "}"
		}
	}
	return true, ""
}

// nodeSelectorMatches: the terms are ORed, a term's requirements ANDed; a
// term without requirements matches nothing (as in Kubernetes).
func nodeSelectorMatches(ns *corev1.NodeSelector, node *corev1.Node) bool {
	for _, term := range ns.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range term.MatchExpressions {
			v, present := node.Labels[r.Key]
			if !requirementMatches(r, v, present) {
				ok = false
				break
			}
		}
		for _, r := range term.MatchFields {
			if !ok {
				break
			}
			// metadata.name is the only field Kubernetes supports here.
			if r.Key != "metadata.name" || !requirementMatches(r, node.Name, true) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func requirementMatches(r corev1.NodeSelectorRequirement, v string, present bool) bool {
	in := func() bool {
		for _, x := range r.Values {
			if x == v {
				return true
			}
		}
		return false
	}
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && in()
	case corev1.NodeSelectorOpNotIn:
		return !present || !in()
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

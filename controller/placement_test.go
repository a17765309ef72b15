package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFitsNode(t *testing.T) {
	nodeOf := func(lbl map[string]string, taints ...string) *corev1.Node { return mkNode("n1", lbl, taints...) }
	cases := []struct {
		name    string
		spec    corev1.PodSpec
		node    *corev1.Node
		running bool
		want    bool
	}{
		{"no constraints", corev1.PodSpec{}, nodeOf(nil), false, true},
		{"nodeSelector matches", corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, nodeOf(map[string]string{"disk": "ssd"}), false, true},
		{"nodeSelector differs", corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, nodeOf(map[string]string{"disk": "hdd"}), false, false},
		{"affinity In", withAffinity("zone", "In", "a", "b"), nodeOf(map[string]string{"zone": "b"}), false, true},
		{"affinity NotIn", withAffinity("zone", "NotIn", "a"), nodeOf(map[string]string{"zone": "a"}), false, false},
		{"affinity Exists missing", withAffinity("gpu", "Exists"), nodeOf(nil), false, false},
		{"affinity Gt", withAffinity("cores", "Gt", "4"), nodeOf(map[string]string{"cores": "8"}), false, true},
		{"NoSchedule taint untolerated", corev1.PodSpec{}, nodeOf(nil, "dedicated=db:NoSchedule"), false, false},
		{"NoSchedule taint, pod already there", corev1.PodSpec{}, nodeOf(nil, "dedicated=db:NoSchedule"), true, true},
		{"NoExecute taint, pod already there", corev1.PodSpec{}, nodeOf(nil, "dedicated=db:NoExecute"), true, false},
		{"PreferNoSchedule ignored", corev1.PodSpec{}, nodeOf(nil, "dedicated=db:PreferNoSchedule"), false, true},
		{"tolerated by Equal", withToleration("dedicated", "Equal", "db", ""), nodeOf(nil, "dedicated=db:NoSchedule"), false, true},
		{"Equal with another value", withToleration("dedicated", "Equal", "web", ""), nodeOf(nil, "dedicated=db:NoSchedule"), false, false},
		{"tolerated by Exists", withToleration("dedicated", "Exists", "", "NoSchedule"), nodeOf(nil, "dedicated=db:NoSchedule"), false, true},
		{"Exists, other effect", withToleration("dedicated", "Exists", "", "NoExecute"), nodeOf(nil, "dedicated=db:NoSchedule"), false, false},
		{"empty key Exists tolerates all", withToleration("", "Exists", "", ""), nodeOf(nil, "a=b:NoSchedule", "c=d:NoExecute"), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := fitsNode(&tc.spec, tc.node, tc.running); got != tc.want {
				t.Errorf("fitsNode = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
	// Daemon pods tolerate the unreachable taint but keep their own.
	tols := withDaemonTolerations([]corev1.Toleration{{Key: "x", Operator: "Exists"}})
	if len(tols) != len(daemonTolerations)+1 {
		t.Errorf("withDaemonTolerations: %d tolerations, want %d", len(tols), len(daemonTolerations)+1)
	}
	if !fitsNodeSpec(tols, mkNode("n1", nil, "node.kubernetes.io/unreachable=:NoExecute")) {
		t.Errorf("a daemon pod does not tolerate the unreachable taint")
	}
}

// mkNode is a node with labels and taints written key=value:Effect.
func mkNode(name string, lbl map[string]string, taints ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}}
	for _, t := range taints {
		kv, eff, _ := strings.Cut(t, ":")
		k, v, _ := strings.Cut(kv, "=")
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(eff)})
	}
	return n
}

func withAffinity(key, op string, values ...string) corev1.PodSpec {
	return corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOperator(op), Values: values}},
		}}},
	}}}
}

func withToleration(key, op, value, effect string) corev1.PodSpec {
	return corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: key, Operator: corev1.TolerationOperator(op), Value: value, Effect: corev1.TaintEffect(effect)}}}
}

func fitsNodeSpec(tols []corev1.Toleration, n *corev1.Node) bool {
	ok, _ := fitsNode(&corev1.PodSpec{Tolerations: tols}, n, false)
	return ok
}

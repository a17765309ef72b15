package sched

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Builders for test objects. A node is Ready with 4 cpu, 8Gi memory, 100Gi
// ephemeral storage and room for 110 pods unless told otherwise; a pod has
// one container requesting nothing.

type nodeOpt func(*corev1.Node)

func mkNode(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:              resource.MustParse("4"),
				corev1.ResourceMemory:           resource.MustParse("8Gi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
				corev1.ResourcePods:             resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func alloc(name corev1.ResourceName, q string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[name] = resource.MustParse(q) }
}

func nodeLabels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taint(key, value string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func cordoned() nodeOpt { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }

func notReady() nodeOpt {
	return func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
}

type podOpt func(*corev1.Pod)

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// req sets the first container's requests: req("cpu", "1", "memory", "1Gi").
func req(kv ...string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = requests(kv...) }
}

func container(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name:      fmt.Sprintf("c%d", len(p.Spec.Containers)),
			Resources: corev1.ResourceRequirements{Requests: requests(kv...)},
		})
	}
}

func initContainer(sidecar bool, kv ...string) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.Container{
			Name:      fmt.Sprintf("i%d", len(p.Spec.InitContainers)),
			Resources: corev1.ResourceRequirements{Requests: requests(kv...)},
		}
		if sidecar {
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func inNamespace(ns string) podOpt { return func(p *corev1.Pod) { p.Namespace = ns } }

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func hostPortOpt(proto corev1.Protocol, ip string, port int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports,
			corev1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
	}
}

func nodeSelectorOpt(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func tolerate(t corev1.Toleration) podOpt {
	return func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}

func ownedBy(uid string) podOpt {
	return func(p *corev1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + uid, UID: types.UID(uid), Controller: &yes,
		}}
	}
}

func affinity(a *corev1.Affinity) podOpt {
	return func(p *corev1.Pod) { p.Spec.Affinity = a }
}

func requiredNodeTerms(terms ...corev1.NodeSelectorTerm) podOpt {
	return affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}})
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func podTerm(key string, matchLabels map[string]string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: matchLabels},
		TopologyKey:   key,
	}
}

func spread(key string, maxSkew int32, when corev1.UnsatisfiableConstraintAction, matchLabels map[string]string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
			MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: matchLabels},
		})
	}
}

// cluster builds a snapshot and a scheduler over it.
func cluster(t testing.TB, nodes []*corev1.Node, pods []*corev1.Pod, cfg ...Config) (*Snapshot, *Scheduler) {
	t.Helper()
	snap := NewSnapshot()
	for _, n := range nodes {
		snap.AddNode(n)
	}
	for _, p := range pods {
		if err := snap.AddPod(p); err != nil {
			t.Fatalf("AddPod(%s): %v", podKey(p), err)
		}
	}
	c := DefaultConfig()
	if len(cfg) > 0 {
		c = cfg[0]
	}
	s, err := New(snap, c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return snap, s
}

// filterAll runs the filter pipeline for p on every node (no sampling) and
// returns the nodes that pass, sorted, and the reasons of those that fail.
func (s *Scheduler) filterAll(p *corev1.Pod) ([]string, map[string]int, error) {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	c := &s.c
	if err := s.prepare(c, p); err != nil {
		return nil, nil, err
	}
	var feasible []string
	reasons := map[string]int{}
	for _, ni := range s.snap.list {
		out := c.filter(ni, &s.snap.hot[ni.listIdx], nil)
		if len(out) == 0 {
			feasible = append(feasible, ni.name)
		}
		for _, r := range out {
			reasons[r]++
		}
	}
	slices.Sort(feasible)
	return feasible, reasons, nil
}

func fitError(t *testing.T, err error) *FitError {
	t.Helper()
	var fe *FitError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want a *FitError", err)
	}
	return fe
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

package sched

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFitErrorMessage(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		reasons map[string]int
		want    string
	}{
		{
			name:    "the issue's example",
			n:       3,
			reasons: map[string]int{"Insufficient cpu": 2, ReasonUntoleratedTaint(TaintNodeNotReady, ""): 1},
			want:    "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 Insufficient cpu.",
		},
		{
			name:    "entries sort as strings, count first (as Kubernetes does)",
			n:       12,
			reasons: map[string]int{ReasonNodeAffinity: 2, "Insufficient memory": 10},
			want:    "0/12 nodes are available: 10 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector.",
		},
		{
			name:    "equal counts sort by reason",
			n:       2,
			reasons: map[string]int{ReasonUnschedulable: 1, ReasonHostPorts: 1},
			want:    "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) were unschedulable.",
		},
		{
			name:    "one node short of two resources counts under both",
			n:       1,
			reasons: map[string]int{"Insufficient cpu": 1, "Insufficient memory": 1},
			want:    "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
		},
		{name: "no reasons", n: 0, want: "0/0 nodes are available."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := (&FitError{Pod: "default/p", NumAllNodes: tc.n, Reasons: tc.reasons}).Error()
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestUnschedulableMessages runs whole scheduling attempts and checks the
// message a user would read in the FailedScheduling event.
func TestUnschedulableMessages(t *testing.T) {
	cases := []struct {
		name     string
		nodes    []*corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     string
	}{
		{
			name: "the issue's example",
			nodes: []*corev1.Node{
				mkNode("n1", alloc("cpu", "1")), mkNode("n2", alloc("cpu", "1")),
				mkNode("n3", notReady(), taint(TaintNodeNotReady, "", corev1.TaintEffectNoSchedule)),
			},
			pod:  mkPod("p", req("cpu", "2")),
			want: "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 Insufficient cpu.",
		},
		{
			name: "one reason per node, the first filter that fails",
			nodes: []*corev1.Node{
				mkNode("cordoned", cordoned(), alloc("cpu", "1")),
				mkNode("small", alloc("cpu", "1"), alloc("memory", "1Gi")),
				mkNode("elsewhere", nodeLabels("zone", "b")),
				mkNode("busy", alloc("pods", "1")),
			},
			existing: []*corev1.Pod{mkPod("e", onNode("busy"), hostPortOpt(corev1.ProtocolTCP, "", 80))},
			pod:      mkPod("p", req("cpu", "2", "memory", "2Gi"), hostPortOpt(corev1.ProtocolTCP, "", 80), requiredNodeTerms(expr("zone", corev1.NodeSelectorOpNotIn, "b"))),
			want: "0/4 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, " +
				"1 node(s) didn't have free ports for the requested pod ports, " +
				"1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable.",
		},
		{
			name:  "not ready without a taint",
			nodes: []*corev1.Node{mkNode("n1", notReady()), mkNode("n2", notReady())},
			pod:   mkPod("p"),
			want:  "0/2 nodes are available: 2 node(s) were not ready.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, s := cluster(t, tc.nodes, tc.existing)
			_, err := s.Schedule(tc.pod)
			fe := fitError(t, err)
			if got := fe.Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if fe.Pod != "default/p" || !IsUnschedulable(err) {
				t.Errorf("FitError pod %q, IsUnschedulable %v", fe.Pod, IsUnschedulable(err))
			}
		})
	}
}

func TestScheduleErrors(t *testing.T) {
	_, s := cluster(t, nil, nil)
	if _, err := s.Schedule(mkPod("p")); !errors.Is(err, ErrNoNodesAvailable) || !IsUnschedulable(err) {
		t.Errorf("no nodes: err = %v, want ErrNoNodesAvailable", err)
	}
	_, s = cluster(t, []*corev1.Node{mkNode("n1")}, nil)
	if _, err := s.Schedule(mkPod("p", onNode("n1"))); !errors.Is(err, ErrPodAlreadyBound) {
		t.Errorf("bound pod: err = %v, want ErrPodAlreadyBound", err)
	}
	gated := mkPod("p", func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
	})
	if _, err := s.Schedule(gated); !errors.Is(err, ErrSchedulingGated) || IsUnschedulable(err) {
		t.Errorf("gated pod: err = %v, want ErrSchedulingGated", err)
	}
	claims := mkPod("p", func(p *corev1.Pod) {
		p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
	})
	if _, err := s.Schedule(claims); !errors.Is(err, ErrUnsupported) {
		t.Errorf("pod with resource claims: err = %v, want ErrUnsupported", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"all nodes", func(c *Config) { c.PercentageOfNodesToScore = 100 }, true},
		{"percentage above 100", func(c *Config) { c.PercentageOfNodesToScore = 101 }, false},
		{"negative percentage", func(c *Config) { c.PercentageOfNodesToScore = -1 }, false},
		{"no minimum", func(c *Config) { c.MinFeasibleNodesToFind = 0 }, false},
		{"negative weight", func(c *Config) { c.Weights.OwnerSpread = -1 }, false},
		{"huge weight", func(c *Config) { c.Weights.LeastAllocated = maxWeight + 1 }, false},
		{"all weights zero", func(c *Config) { c.Weights = Weights{} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, err := New(NewSnapshot(), c); (err == nil) != tc.ok {
				t.Errorf("New = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	cases := []struct {
		pct, nodes, want int
	}{
		{0, 50, 50},     // small clusters are searched in full
		{0, 100, 100},   // 50-0 = 50% of 100 = 50, floored at 100
		{0, 1000, 420},  // 50-8 = 42%
		{0, 5000, 500},  // 50-40 = 10%
		{0, 10000, 500}, // 50-80 < 5: 5%
		{30, 1000, 300}, // explicit
		{100, 5000, 5000},
		{1, 5000, 100}, // floored at the minimum
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("pct=%d/nodes=%d", tc.pct, tc.nodes), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PercentageOfNodesToScore = tc.pct
			s, err := New(NewSnapshot(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.numFeasibleNodesToFind(tc.nodes); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWalkStrideVisitsEveryNode(t *testing.T) {
	cases := []struct{ n, want, stride int }{
		{10, 10, 1}, {10, 20, 1}, {1000, 420, 3}, {5000, 500, 11}, {5001, 500, 10}, {7, 3, 2},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n=%d/want=%d", tc.n, tc.want), func(t *testing.T) {
			stride := walkStride(tc.n, tc.want)
			if stride != tc.stride {
				t.Errorf("stride = %d, want %d", stride, tc.stride)
			}
			seen := make([]bool, tc.n)
			idx := 3 % tc.n
			for range tc.n {
				if seen[idx] {
					t.Fatalf("node %d visited twice within %d steps", idx, tc.n)
				}
				seen[idx] = true
				if idx += stride; idx >= tc.n {
					idx -= tc.n
				}
			}
		})
	}
}

// TestSampleSpansZones: nodes registered zone by zone must not make a
// sampled cycle see a single zone.
func TestSampleSpansZones(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 1500 {
		nodes = append(nodes, mkNode(fmt.Sprintf("n%04d", i), nodeLabels("topology.kubernetes.io/zone", fmt.Sprintf("z%d", i/500))))
	}
	snap, s := cluster(t, nodes, nil)
	placed := map[string]int{}
	pods := make([]*corev1.Pod, 300)
	for i := range pods {
		pods[i] = mkPod(fmt.Sprintf("p%d", i), podLabels("app", "web"),
			spread("topology.kubernetes.io/zone", 1, corev1.ScheduleAnyway, map[string]string{"app": "web"}))
	}
	for i, pl := range s.ScheduleBatch(pods) {
		if i == 0 {
			// The batch is done: look at its last cycle's sample.
			s.snap.mu.Lock()
			seen := map[string]int{}
			for _, r := range s.rows {
				seen[r.ni.labels["topology.kubernetes.io/zone"]]++
			}
			s.snap.mu.Unlock()
			if len(seen) != 3 {
				t.Errorf("a sampled cycle saw zones %v, want all three", seen)
			}
		}
		if pl.Err != nil {
			t.Fatal(pl.Err)
		}
		if pl.Evaluated >= 1500 {
			t.Fatalf("evaluated %d nodes: no sampling", pl.Evaluated)
		}
		placed[snap.nodes[pl.Node].labels["topology.kubernetes.io/zone"]]++
	}
	for z, n := range placed {
		if n < 90 || n > 110 {
			t.Errorf("zone %s got %d of 300 pods: %v", z, n, placed)
		}
	}
}

func TestRequiredLabels(t *testing.T) {
	cases := []struct {
		name    string
		sel     *metav1.LabelSelector
		key     string
		values  []string
		indexed bool
	}{
		{"matchLabels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, "app", []string{"web"}, true},
		{"In", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "a"}},
		}}, "tier", []string{"a", "b"}, true},
		{"only NotIn", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a"}},
		}}, "", nil, false},
		{"empty selects everything", &metav1.LabelSelector{}, "", nil, false},
		{"nil selects nothing", nil, "", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := selectorWithKeys(tc.sel, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, values, indexed := requiredLabels(sel)
			if key != tc.key || !slices.Equal(values, tc.values) || indexed != tc.indexed {
				t.Errorf("got %q %v %v, want %q %v %v", key, values, indexed, tc.key, tc.values, tc.indexed)
			}
		})
	}
}

func TestFitErrorMayFitAfter(t *testing.T) {
	all := []ClusterEvent{NodeAdded, NodeUpdated, PodAdded, PodRemoved, VolumeUpdated}
	cases := []struct {
		name    string
		reasons []string
		helped  []ClusterEvent
	}{
		{"resources", []string{"Insufficient cpu", ReasonTooManyPods}, []ClusterEvent{NodeAdded, NodeUpdated, PodRemoved}},
		{"ports", []string{ReasonHostPorts}, []ClusterEvent{NodeAdded, NodeUpdated, PodRemoved}},
		{"taints and cordon", []string{ReasonUntoleratedTaint("k", "v"), ReasonUnschedulable, ReasonNotReady, ReasonNodeAffinity}, []ClusterEvent{NodeAdded, NodeUpdated}},
		{"affinity waits for a pod", []string{ReasonPodAffinity}, []ClusterEvent{NodeAdded, NodeUpdated, PodAdded}},
		{"anti-affinity waits for a pod to go", []string{ReasonPodAntiAffinity, ReasonExistingAntiAffinity}, []ClusterEvent{NodeAdded, NodeUpdated, PodRemoved}},
		{"spread moves both ways", []string{ReasonSpreadConstraints}, []ClusterEvent{NodeAdded, NodeUpdated, PodAdded, PodRemoved}},
		{"missing topology label", []string{ReasonSpreadMissingLabel}, []ClusterEvent{NodeAdded, NodeUpdated}},
		{"volumes", []string{ReasonVolumeNodeAffinity}, []ClusterEvent{NodeAdded, NodeUpdated, VolumeUpdated}},
		{"mixed: any reason helped is enough", []string{ReasonUnschedulable, "Insufficient memory"}, []ClusterEvent{NodeAdded, NodeUpdated, PodRemoved}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fe := &FitError{NumAllNodes: len(tc.reasons), Reasons: map[string]int{}}
			for _, r := range tc.reasons {
				fe.Reasons[r] = 1
			}
			for _, ev := range all {
				if got, want := fe.MayFitAfter(ev), slices.Contains(tc.helped, ev); got != want {
					t.Errorf("MayFitAfter(%d) = %v, want %v", ev, got, want)
				}
			}
		})
	}
}

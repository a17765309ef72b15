package sched

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLeastAndBalancedAllocation(t *testing.T) {
	// The node has 4 cpu and 8Gi; scores use the requests of the pods
	// already there plus the incoming pod's.
	cases := []struct {
		name               string
		existing           []podOpt
		pod                []podOpt
		wantLeast, wantBal int64
	}{
		{"empty node, pod takes a quarter", nil, []podOpt{req("cpu", "1", "memory", "2Gi")}, 75, 100},
		{"half used, pod takes a quarter", []podOpt{req("cpu", "2", "memory", "4Gi")}, []podOpt{req("cpu", "1", "memory", "2Gi")}, 25, 100},
		{"cpu-heavy placement is unbalanced", nil, []podOpt{req("cpu", "4", "memory", "0")}, 48, 51},
		{"over capacity scores zero free", []podOpt{req("cpu", "4", "memory", "8Gi")}, []podOpt{req("cpu", "1", "memory", "1Gi")}, 0, 100},
		{"request-less pod counts 100m and 200Mi", nil, nil, 97, 99},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var existing []*corev1.Pod
			if tc.existing != nil {
				existing = append(existing, mkPod("e", append(tc.existing, onNode("n1"))...))
			}
			snap, _ := cluster(t, []*corev1.Node{mkNode("n1")}, existing)
			pi, err := newPodInfo(mkPod("p", tc.pod...), true)
			if err != nil {
				t.Fatal(err)
			}
			h := &snap.hot[snap.nodes["n1"].listIdx]
			if got := leastAllocated(h, pi); got != tc.wantLeast {
				t.Errorf("leastAllocated = %d, want %d", got, tc.wantLeast)
			}
			if got := balancedAllocation(h, pi); got != tc.wantBal {
				t.Errorf("balancedAllocation = %d, want %d", got, tc.wantBal)
			}
		})
	}
}

// only returns a config where only the weights set by f count, scoring
// every node.
func only(f func(*Weights)) Config {
	c := DefaultConfig()
	c.PercentageOfNodesToScore = 100
	c.Weights = Weights{}
	f(&c.Weights)
	return c
}

func TestScores(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	zoned := func(name, z string, opts ...nodeOpt) *corev1.Node {
		return mkNode(name, append(opts, nodeLabels(zone, z))...)
	}
	web := map[string]string{"app": "web"}
	cases := []struct {
		name     string
		cfg      Config
		nodes    []*corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     []string // the best nodes (any of them may be chosen)
	}{
		{
			name:     "least allocated prefers the emptier node",
			cfg:      only(func(w *Weights) { w.LeastAllocated = 1 }),
			nodes:    []*corev1.Node{mkNode("busy"), mkNode("idle")},
			existing: []*corev1.Pod{mkPod("e", onNode("busy"), req("cpu", "2", "memory", "4Gi"))},
			pod:      mkPod("p", req("cpu", "1", "memory", "1Gi")),
			want:     []string{"idle"},
		},
		{
			name:     "balanced allocation prefers the node the pod evens out",
			cfg:      only(func(w *Weights) { w.BalancedAllocation = 1 }),
			nodes:    []*corev1.Node{mkNode("cpu-heavy"), mkNode("even")},
			existing: []*corev1.Pod{mkPod("e", onNode("cpu-heavy"), req("cpu", "3", "memory", "1Gi"))},
			pod:      mkPod("p", req("cpu", "1", "memory", "2Gi")),
			want:     []string{"even"},
		},
		{
			name:  "preferred node affinity sums the weights of matching terms",
			cfg:   only(func(w *Weights) { w.NodeAffinity = 1 }),
			nodes: []*corev1.Node{mkNode("ssd", nodeLabels("disk", "ssd")), mkNode("fast-ssd", nodeLabels("disk", "ssd", "net", "fast")), mkNode("hdd")},
			pod: mkPod("p", affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 10, Preference: expr("disk", corev1.NodeSelectorOpIn, "ssd")},
					{Weight: 5, Preference: expr("net", corev1.NodeSelectorOpExists)},
				},
			}})),
			want: []string{"fast-ssd"},
		},
		{
			name:  "PreferNoSchedule taints are avoided",
			cfg:   only(func(w *Weights) { w.TaintToleration = 1 }),
			nodes: []*corev1.Node{mkNode("soft", taint("spot", "true", corev1.TaintEffectPreferNoSchedule)), mkNode("clean")},
			pod:   mkPod("p"),
			want:  []string{"clean"},
		},
		{
			name:  "a tolerated PreferNoSchedule taint costs nothing",
			cfg:   only(func(w *Weights) { w.TaintToleration = 1 }),
			nodes: []*corev1.Node{mkNode("soft", taint("spot", "true", corev1.TaintEffectPreferNoSchedule)), mkNode("clean")},
			pod:   mkPod("p", tolerate(corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists})),
			want:  []string{"soft", "clean"},
		},
		{
			name:     "preferred pod affinity pulls towards the zone of the selected pods",
			cfg:      only(func(w *Weights) { w.InterPodAffinity = 1 }),
			nodes:    []*corev1.Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")},
			existing: []*corev1.Pod{mkPod("cache", onNode("a1"), podLabels("app", "cache"))},
			pod: mkPod("p", affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 50, PodAffinityTerm: podTerm(zone, map[string]string{"app": "cache"})},
				},
			}})),
			want: []string{"a1", "a2"},
		},
		{
			name:     "preferred pod anti-affinity pushes away",
			cfg:      only(func(w *Weights) { w.InterPodAffinity = 1 }),
			nodes:    []*corev1.Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")},
			existing: []*corev1.Pod{mkPod("web-0", onNode("a1"), podLabels("app", "web"))},
			pod: mkPod("web-1", podLabels("app", "web"), affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 50, PodAffinityTerm: podTerm(zone, web)},
				},
			}})),
			want: []string{"b1"},
		},
		{
			name:  "an existing pod's preferred affinity attracts the pods it selects",
			cfg:   only(func(w *Weights) { w.InterPodAffinity = 1 }),
			nodes: []*corev1.Node{zoned("a1", "a"), zoned("b1", "b")},
			existing: []*corev1.Pod{mkPod("sidekick", onNode("b1"), affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 10, PodAffinityTerm: podTerm(zone, web)},
				},
			}}))},
			pod:  mkPod("web", podLabels("app", "web")),
			want: []string{"b1"},
		},
		{
			name:  "an existing pod's required affinity attracts the pods it selects a little",
			cfg:   only(func(w *Weights) { w.InterPodAffinity = 1 }),
			nodes: []*corev1.Node{zoned("a1", "a"), zoned("b1", "b")},
			existing: []*corev1.Pod{mkPod("follower", onNode("b1"), affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podTerm(zone, web)},
			}}))},
			pod:  mkPod("web", podLabels("app", "web")),
			want: []string{"b1"},
		},
		{
			name:  "pods of one owner spread across nodes",
			cfg:   only(func(w *Weights) { w.OwnerSpread = 1 }),
			nodes: []*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")},
			existing: []*corev1.Pod{
				mkPod("r0", onNode("n1"), ownedBy("rs1")), mkPod("r1", onNode("n1"), ownedBy("rs1")),
				mkPod("r2", onNode("n2"), ownedBy("rs1")), mkPod("other", onNode("n3"), ownedBy("rs2")),
			},
			pod:  mkPod("r3", ownedBy("rs1")),
			want: []string{"n3"},
		},
		{
			name:  "ScheduleAnyway spread prefers the emptiest zone",
			cfg:   only(func(w *Weights) { w.TopologySpread = 1 }),
			nodes: []*corev1.Node{zoned("a1", "a"), zoned("b1", "b"), zoned("c1", "c"), mkNode("nozone")},
			existing: []*corev1.Pod{
				mkPod("w0", onNode("a1"), podLabels("app", "web")), mkPod("w1", onNode("a1"), podLabels("app", "web")),
				mkPod("w2", onNode("b1"), podLabels("app", "web")),
			},
			pod:  mkPod("w3", podLabels("app", "web"), spread(zone, 1, corev1.ScheduleAnyway, web)),
			want: []string{"c1"},
		},
		{
			name: "weights combine: a strong preference beats a little load",
			cfg:  DefaultConfig(),
			nodes: []*corev1.Node{
				mkNode("preferred", nodeLabels("disk", "ssd")), mkNode("idle"),
			},
			existing: []*corev1.Pod{mkPod("e", onNode("preferred"), req("cpu", "500m", "memory", "512Mi"))},
			pod: mkPod("p", affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 1, Preference: expr("disk", corev1.NodeSelectorOpIn, "ssd")},
				},
			}})),
			want: []string{"preferred"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Several seeds: a winner must win whatever the tie-break.
			seen := map[string]bool{}
			for seed := uint64(1); seed <= 16; seed++ {
				cfg := tc.cfg
				cfg.Seed = seed
				_, s := cluster(t, tc.nodes, tc.existing, cfg)
				res, err := s.Schedule(tc.pod)
				if err != nil {
					t.Fatalf("Schedule: %v", err)
				}
				if !slices.Contains(tc.want, res.Node) {
					t.Fatalf("seed %d: chose %s (score %d), want one of %v", seed, res.Node, res.Score, tc.want)
				}
				seen[res.Node] = true
			}
			if len(tc.want) > 1 && len(seen) < 2 {
				t.Errorf("ties %v always broken towards %v; want the seed to matter", tc.want, seen)
			}
		})
	}
}

func TestTieBreakIsReproducible(t *testing.T) {
	nodes := []*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3"), mkNode("n4")}
	run := func(seed uint64) []string {
		cfg := DefaultConfig()
		cfg.Seed = seed
		_, s := cluster(t, nodes, nil, cfg)
		var out []string
		for range 32 {
			res, err := s.Schedule(mkPod("p"))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Node)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different placements:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave identical placements %v; the tie-break ignores the seed", a)
	}
	used := map[string]bool{}
	for _, n := range a {
		used[n] = true
	}
	if len(used) != len(nodes) {
		t.Errorf("32 ties over 4 equal nodes used only %v", used)
	}
}

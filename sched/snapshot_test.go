package sched

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodRequests(t *testing.T) {
	cases := []struct {
		name          string
		pod           *corev1.Pod
		wantCPU       int64 // millicores
		wantNonZeroMe int64 // scoring memory, bytes
	}{
		{"one container", mkPod("p", req("cpu", "250m", "memory", "1Gi")), 250, 1 << 30},
		{"containers add", mkPod("p", req("cpu", "250m"), container("cpu", "750m")), 1000, 2 * defaultMemoryRequest},
		{"init max beats a smaller sum", mkPod("p", req("cpu", "1"), initContainer(false, "cpu", "3")), 3000, defaultMemoryRequest},
		{"sum beats a smaller init", mkPod("p", req("cpu", "1"), container("cpu", "1"), initContainer(false, "cpu", "1500m")), 2000, 2 * defaultMemoryRequest},
		{
			"a sidecar adds to the app and to later init containers",
			mkPod("p", req("cpu", "1"), initContainer(true, "cpu", "500m"), initContainer(false, "cpu", "2")),
			2500, 2 * defaultMemoryRequest,
		},
		{"overhead on top", mkPod("p", req("cpu", "1"), func(p *corev1.Pod) { p.Spec.Overhead = requests("cpu", "100m") }), 1100, defaultMemoryRequest},
		{"nothing requested", mkPod("p"), 0, defaultMemoryRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, nonZero := podRequests(&tc.pod.Spec)
			if req.milliCPU != tc.wantCPU {
				t.Errorf("cpu = %dm, want %dm", req.milliCPU, tc.wantCPU)
			}
			if nonZero.memory != tc.wantNonZeroMe {
				t.Errorf("scoring memory = %d, want %d", nonZero.memory, tc.wantNonZeroMe)
			}
		})
	}
}

func usage(t *testing.T, snap *Snapshot, node string) NodeUsage {
	t.Helper()
	u, ok := snap.Usage(node)
	if !ok {
		t.Fatalf("Usage(%s): unknown node", node)
	}
	return u
}

func TestSnapshotAccounting(t *testing.T) {
	snap := NewSnapshot()
	snap.AddNode(mkNode("n1"))
	a := mkPod("a", onNode("n1"), req("cpu", "1", "memory", "1Gi"))
	b := mkPod("b", onNode("n1"), req("cpu", "500m"))

	steps := []struct {
		name     string
		do       func() error
		wantCPU  int64
		wantPods int64
	}{
		{"add a", func() error { return snap.AddPod(a) }, 1000, 1},
		{"add b", func() error { return snap.AddPod(b) }, 1500, 2},
		{"re-adding a replaces it", func() error { return snap.AddPod(a) }, 1500, 2},
		{"an update of a with a new request", func() error {
			return snap.UpdatePod(mkPod("a", onNode("n1"), req("cpu", "2")))
		}, 2500, 2},
		{"remove b", func() error { snap.RemovePod(b); return nil }, 2000, 1},
		{"removing b twice is harmless", func() error { snap.RemovePod(b); return nil }, 2000, 1},
		{"a finished", func() error {
			done := mkPod("a", onNode("n1"))
			done.Status.Phase = corev1.PodSucceeded
			return snap.AddPod(done)
		}, 0, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			u := usage(t, snap, "n1")
			if u.RequestedMilliCPU != st.wantCPU || u.Pods != st.wantPods {
				t.Errorf("usage = %dm cpu, %d pods; want %dm, %d", u.RequestedMilliCPU, u.Pods, st.wantCPU, st.wantPods)
			}
		})
	}
	if err := snap.AddPod(mkPod("unbound")); !errors.Is(err, ErrPodNotBound) {
		t.Errorf("AddPod(unbound) = %v, want ErrPodNotBound", err)
	}
}

func TestSnapshotPodBeforeNodeAndNodeRemoval(t *testing.T) {
	snap, s := cluster(t, nil, nil)
	if err := snap.AddPod(mkPod("early", onNode("n1"), req("cpu", "3"))); err != nil {
		t.Fatal(err)
	}
	if n := snap.NumNodes(); n != 0 {
		t.Fatalf("a pod's node is not a candidate before the node exists: NumNodes = %d", n)
	}
	snap.AddNode(mkNode("n1"))
	if u := usage(t, snap, "n1"); u.RequestedMilliCPU != 3000 {
		t.Errorf("the early pod is counted once the node arrives: %dm", u.RequestedMilliCPU)
	}
	if _, err := s.Schedule(mkPod("p", req("cpu", "2"))); err == nil {
		t.Errorf("a 2-cpu pod fits next to the early 3-cpu pod on a 4-cpu node")
	}

	snap.RemoveNode("n1")
	if n := snap.NumNodes(); n != 0 {
		t.Errorf("NumNodes after RemoveNode = %d", n)
	}
	if _, ok := snap.Usage("n1"); !ok {
		t.Errorf("the removed node's pods are forgotten before they are removed")
	}
	checkHot(t, snap)
	snap.RemovePod(mkPod("early"))
	if _, ok := snap.Usage("n1"); ok {
		t.Errorf("a ghost node without pods is kept")
	}
}

func TestSnapshotUpdateNode(t *testing.T) {
	snap, s := cluster(t, []*corev1.Node{mkNode("n1")}, []*corev1.Pod{mkPod("e", onNode("n1"), req("cpu", "1"))})
	p := mkPod("p", nodeSelectorOpt("disk", "ssd"))
	if _, err := s.Schedule(p); err == nil {
		t.Fatal("scheduled before the node had the label")
	}
	snap.UpdateNode(mkNode("n1", nodeLabels("disk", "ssd")))
	if res, err := s.Schedule(p); err != nil || res.Node != "n1" {
		t.Fatalf("after labelling: %v %v", res, err)
	}
	snap.UpdateNode(mkNode("n1", nodeLabels("disk", "ssd"), cordoned()))
	if _, err := s.Schedule(p); err == nil {
		t.Fatal("scheduled onto a cordoned node")
	}
	if u := usage(t, snap, "n1"); u.RequestedMilliCPU != 1000 || snap.NumNodes() != 1 {
		t.Errorf("an update lost the node's pods or duplicated it: %+v, %d nodes", u, snap.NumNodes())
	}
}

func TestAssumeAndForget(t *testing.T) {
	snap, s := cluster(t, []*corev1.Node{mkNode("n1")}, nil)
	p := mkPod("p", req("cpu", "3"))
	if err := snap.AssumePod(p, "nowhere"); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("AssumePod on an unknown node = %v, want ErrNodeNotFound", err)
	}
	if err := snap.AssumePod(p, "n1"); err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Errorf("AssumePod modified the caller's pod")
	}
	if node, ok := snap.NodeOf("default", "p"); !ok || node != "n1" {
		t.Errorf("NodeOf = %q %v", node, ok)
	}
	if _, err := s.Schedule(mkPod("q", req("cpu", "3"))); err == nil {
		t.Errorf("the assumed pod's cpu is still free")
	}
	snap.RemovePod(p) // the binding failed
	if _, err := s.Schedule(mkPod("q", req("cpu", "3"))); err != nil {
		t.Errorf("forgetting the assumed pod did not free its cpu: %v", err)
	}
}

func TestScheduleBatch(t *testing.T) {
	host := "kubernetes.io/hostname"
	replicas := func(n int, opts ...podOpt) []*corev1.Pod {
		var out []*corev1.Pod
		for i := range n {
			out = append(out, mkPod(fmt.Sprintf("r%d", i), opts...))
		}
		return out
	}
	three := func() []*corev1.Node { return []*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")} }
	cases := []struct {
		name      string
		nodes     []*corev1.Node
		pods      []*corev1.Pod
		wantPlace int
		wantErr   string // the message of every failure
		check     func(t *testing.T, placed map[string]int)
	}{
		{
			name:      "a burst does not overcommit cpu",
			nodes:     []*corev1.Node{mkNode("n1", alloc("cpu", "1")), mkNode("n2", alloc("cpu", "1"))},
			pods:      replicas(3, req("cpu", "1")),
			wantPlace: 2,
			wantErr:   "0/2 nodes are available: 2 Insufficient cpu.",
		},
		{
			name:      "a burst does not double-book a host port",
			nodes:     []*corev1.Node{mkNode("n1"), mkNode("n2")},
			pods:      replicas(3, hostPortOpt(corev1.ProtocolTCP, "", 80)),
			wantPlace: 2,
			wantErr:   "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.",
		},
		{
			name:  "a burst respects its own anti-affinity",
			nodes: three(),
			pods: replicas(4, podLabels("app", "web"), affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podTerm(host, map[string]string{"app": "web"})},
			}})),
			wantPlace: 3,
			wantErr:   "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.", // checked first, as in Kubernetes
		},
		{
			name:      "replicas of one owner spread evenly",
			nodes:     three(),
			pods:      replicas(6, ownedBy("rs1")),
			wantPlace: 6,
			check: func(t *testing.T, placed map[string]int) {
				for n, k := range placed {
					if k != 2 {
						t.Errorf("node %s got %d of 6 replicas, want 2 each: %v", n, k, placed)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, s := cluster(t, tc.nodes, nil)
			placed := map[string]int{}
			n := 0
			for _, pl := range s.ScheduleBatch(tc.pods) {
				if pl.Err != nil {
					if got := pl.Err.Error(); got != tc.wantErr {
						t.Errorf("%s: %q, want %q", podKey(pl.Pod), got, tc.wantErr)
					}
					continue
				}
				n++
				placed[pl.Node]++
			}
			if n != tc.wantPlace {
				t.Errorf("placed %d pods (%v), want %d", n, placed, tc.wantPlace)
			}
			if tc.check != nil {
				tc.check(t, placed)
			}
		})
	}
}

func TestScheduleBatchIsReproducible(t *testing.T) {
	run := func() []string {
		var nodes []*corev1.Node
		for i := range 50 {
			nodes = append(nodes, mkNode(fmt.Sprintf("n%02d", i)))
		}
		_, s := cluster(t, nodes, nil)
		var pods []*corev1.Pod
		for i := range 200 {
			pods = append(pods, mkPod(fmt.Sprintf("p%d", i), req("cpu", "100m"), ownedBy(fmt.Sprint(i%7))))
		}
		var out []string
		for _, pl := range s.ScheduleBatch(pods) {
			out = append(out, pl.Node)
		}
		return out
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Errorf("two identical runs placed pods differently")
	}
}

func TestDomainIndexFollowsNodes(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	snap, s := cluster(t, []*corev1.Node{
		mkNode("a1", nodeLabels(zone, "a")), mkNode("b1", nodeLabels(zone, "b")), mkNode("c1", nodeLabels(zone, "c")),
	}, []*corev1.Pod{
		mkPod("w0", onNode("a1"), podLabels("app", "web")), mkPod("w1", onNode("b1"), podLabels("app", "web")),
	})
	web := map[string]string{"app": "web"}
	p := mkPod("w2", podLabels("app", "web"), spread(zone, 1, corev1.DoNotSchedule, web))
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"only the empty zone", func() {}, []string{"c1"}},
		{"c1 moves to zone a: a holds 1, b 1, min is 1", func() {
			snap.UpdateNode(mkNode("c1", nodeLabels(zone, "a")))
		}, []string{"a1", "b1", "c1"}},
		{"a new zone d is empty again", func() {
			snap.AddNode(mkNode("d1", nodeLabels(zone, "d")))
		}, []string{"d1"}},
		{"d1 leaves", func() { snap.RemoveNode("d1") }, []string{"a1", "b1", "c1"}},
		{"c1 loses its zone label", func() { snap.UpdateNode(mkNode("c1")) }, []string{"a1", "b1"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			got, _, err := s.filterAll(p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, st.want) {
				t.Errorf("feasible = %v, want %v", got, st.want)
			}
			checkHot(t, snap)
		})
	}
}

func TestIndexesFollowPodUpdates(t *testing.T) {
	const host = "kubernetes.io/hostname"
	anti := func(app string) podOpt {
		return affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podTerm(host, map[string]string{"app": app})},
		}})
	}
	snap, s := cluster(t, []*corev1.Node{mkNode("n1"), mkNode("n2")}, []*corev1.Pod{
		mkPod("db", onNode("n1"), podLabels("app", "db")),
		mkPod("loner", onNode("n2"), anti("web")),
	})
	web := mkPod("web", podLabels("app", "web"), anti("db"))
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"web avoids the db and the loner avoids web", func() {}, nil},
		{"the db is relabelled: n1 is free for web", func() {
			if err := snap.UpdatePod(mkPod("db", onNode("n1"), podLabels("app", "cache"))); err != nil {
				t.Fatal(err)
			}
		}, []string{"n1"}},
		{"the loner changes its mind: n2 too", func() {
			if err := snap.UpdatePod(mkPod("loner", onNode("n2"), anti("batch"))); err != nil {
				t.Fatal(err)
			}
		}, []string{"n1", "n2"}},
		{"the loner is deleted: no change", func() { snap.RemovePod(mkPod("loner")) }, []string{"n1", "n2"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			got, _, err := s.filterAll(web)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, st.want) {
				t.Errorf("feasible = %v, want %v", got, st.want)
			}
		})
	}
}

// TestConcurrentFeedAndSchedule: informer handlers feed the snapshot from
// their goroutines while the loop schedules (run with -race).
func TestConcurrentFeedAndSchedule(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 20 {
		nodes = append(nodes, mkNode(fmt.Sprintf("n%d", i)))
	}
	snap, s := cluster(t, nodes, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 500 {
			n := fmt.Sprintf("n%d", i%20)
			p := mkPod(fmt.Sprintf("bound-%d", i), onNode(n), req("cpu", "10m"), podLabels("app", "x"))
			if err := snap.AddPod(p); err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				snap.RemovePod(p)
			}
			if i%50 == 0 {
				snap.UpdateNode(mkNode(n, nodeLabels("round", fmt.Sprint(i))))
			}
		}
	}()
	for i := range 50 {
		var pods []*corev1.Pod
		for j := range 10 {
			pods = append(pods, mkPod(fmt.Sprintf("p-%d-%d", i, j), req("cpu", "10m"), ownedBy("rs")))
		}
		for _, pl := range s.ScheduleBatch(pods) {
			if pl.Err != nil {
				t.Fatalf("%s: %v", podKey(pl.Pod), pl.Err)
			}
		}
	}
	<-done
	snap.mu.Lock()
	defer snap.mu.Unlock()
	checkHot(t, snap)
}

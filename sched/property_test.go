package sched

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The property: on random clusters and random pods, scheduled one after the
// other with random deletions in between, the scheduler agrees with a naive
// oracle written independently from the spec of each filter. A placement is
// always on a node the oracle finds feasible (so it never violates a filter
// and never overcommits), and a FitError only happens when the oracle finds
// no feasible node at all (clusters here are below the sampling threshold,
// so every node is tried). The oracle recomputes everything from the plain
// list of pods on each node, so incremental bookkeeping bugs show up too.

const propZone = "topology.kubernetes.io/zone"

type oracle struct {
	nodes map[string]*corev1.Node
	pods  map[string][]*corev1.Pod // node → pods on it
}

func qty(l corev1.ResourceList, name corev1.ResourceName) int64 {
	q, ok := l[name]
	if !ok {
		return 0
	}
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// sumRequests: generated pods have app containers only.
func sumRequests(p *corev1.Pod, name corev1.ResourceName) int64 {
	var n int64
	for _, c := range p.Spec.Containers {
		n += qty(c.Resources.Requests, name)
	}
	return n
}

func (o *oracle) feasible(p *corev1.Pod) []string {
	var out []string
	for name, n := range o.nodes {
		if o.fits(p, n) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (o *oracle) fits(p *corev1.Pod, n *corev1.Node) bool {
	on := o.pods[n.Name]
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready || n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for _, tol := range p.Spec.Tolerations {
			ok = ok || (tol.Key == t.Key && (tol.Operator == corev1.TolerationOpExists || tol.Value == t.Value))
		}
		if !ok {
			return false
		}
	}
	if !selectorMatches(p, n) {
		return false
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		used := sumRequests(p, name)
		for _, q := range on {
			used += sumRequests(q, name)
		}
		if sumRequests(p, name) > 0 && used > qty(n.Status.Allocatable, name) {
			return false
		}
	}
	if int64(len(on)+1) > qty(n.Status.Allocatable, corev1.ResourcePods) {
		return false
	}
	for _, want := range hostPorts(p) {
		for _, q := range on {
			if slices.Contains(hostPorts(q), want) {
				return false
			}
		}
	}
	for _, q := range on {
		if antiApp(p) != "" && q.Labels["app"] == antiApp(p) {
			return false
		}
		if antiApp(q) != "" && p.Labels["app"] == antiApp(q) {
			return false
		}
	}
	if app, ok := spreadApp(p); ok {
		zone, has := n.Labels[propZone]
		if !has {
			return false
		}
		counts := map[string]int{}
		for name, m := range o.nodes {
			z, ok := m.Labels[propZone]
			if !ok || !selectorMatches(p, m) {
				continue
			}
			counts[z] += 0
			for _, q := range o.pods[name] {
				if q.Labels["app"] == app {
					counts[z]++
				}
			}
		}
		minCount := -1
		for _, c := range counts {
			if minCount < 0 || c < minCount {
				minCount = c
			}
		}
		self := 0
		if p.Labels["app"] == app {
			self = 1
		}
		if counts[zone]+self-minCount > 1 {
			return false
		}
	}
	return true
}

func selectorMatches(p *corev1.Pod, n *corev1.Node) bool {
	for k, v := range p.Spec.NodeSelector {
		if n.Labels[k] != v {
			return false
		}
	}
	return true
}

func hostPorts(p *corev1.Pod) []int32 {
	var out []int32
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			out = append(out, cp.HostPort)
		}
	}
	return out
}

// antiApp is the app label value a generated pod refuses to share a node with.
func antiApp(p *corev1.Pod) string {
	if p.Spec.Affinity == nil || p.Spec.Affinity.PodAntiAffinity == nil {
		return ""
	}
	return p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels["app"]
}

func spreadApp(p *corev1.Pod) (string, bool) {
	if len(p.Spec.TopologySpreadConstraints) == 0 {
		return "", false
	}
	return p.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app"], true
}

func randomNode(r *rand.Rand, i int) *corev1.Node {
	opts := []nodeOpt{
		alloc("cpu", fmt.Sprintf("%dm", 500+r.IntN(4000))),
		alloc("memory", fmt.Sprintf("%dMi", 512+r.IntN(8192))),
		alloc("pods", fmt.Sprint(r.IntN(12))),
	}
	if r.IntN(8) != 0 {
		opts = append(opts, nodeLabels(propZone, fmt.Sprintf("z%d", r.IntN(3))))
	}
	if r.IntN(2) == 0 {
		opts = append(opts, nodeLabels("disk", "ssd"))
	}
	switch r.IntN(10) {
	case 0:
		opts = append(opts, taint("dedicated", "db", corev1.TaintEffectNoSchedule))
	case 1:
		opts = append(opts, taint("evict", "yes", corev1.TaintEffectNoExecute))
	case 2:
		opts = append(opts, taint("spot", "true", corev1.TaintEffectPreferNoSchedule))
	}
	if r.IntN(12) == 0 {
		opts = append(opts, cordoned())
	}
	if r.IntN(12) == 0 {
		opts = append(opts, notReady())
	}
	return mkNode(fmt.Sprintf("n%02d", i), opts...)
}

func randomPod(r *rand.Rand, i int) *corev1.Pod {
	app := fmt.Sprintf("a%d", r.IntN(3))
	opts := []podOpt{
		podLabels("app", app),
		req("cpu", fmt.Sprintf("%dm", r.IntN(1500)), "memory", fmt.Sprintf("%dMi", r.IntN(2048))),
		ownedBy(app),
	}
	if r.IntN(3) == 0 {
		opts = append(opts, container("cpu", fmt.Sprintf("%dm", r.IntN(500))))
	}
	if r.IntN(5) == 0 {
		opts = append(opts, nodeSelectorOpt("disk", "ssd"))
	}
	if r.IntN(4) == 0 {
		opts = append(opts, tolerate(corev1.Toleration{Key: "dedicated", Value: "db"}))
	}
	if r.IntN(4) == 0 {
		opts = append(opts, tolerate(corev1.Toleration{Key: "evict", Operator: corev1.TolerationOpExists}))
	}
	if r.IntN(5) == 0 {
		opts = append(opts, hostPortOpt(corev1.ProtocolTCP, "", int32(80+r.IntN(2))))
	}
	if r.IntN(5) == 0 {
		opts = append(opts, affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
				podTerm("kubernetes.io/hostname", map[string]string{"app": fmt.Sprintf("a%d", r.IntN(3))}),
			},
		}}))
	}
	if r.IntN(6) == 0 {
		opts = append(opts, spread(propZone, 1, corev1.DoNotSchedule, map[string]string{"app": app}))
	}
	return mkPod(fmt.Sprintf("p%d", i), opts...)
}

func TestPropertyPlacementsMatchOracle(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			o := &oracle{nodes: map[string]*corev1.Node{}, pods: map[string][]*corev1.Pod{}}
			snap := NewSnapshot()
			for i := range 1 + r.IntN(30) {
				n := randomNode(r, i)
				o.nodes[n.Name] = n
				snap.AddNode(n)
			}
			cfg := DefaultConfig()
			cfg.Seed = seed
			s, err := New(snap, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var placed []*corev1.Pod // bound copies
			all := make(map[string]*corev1.Node, len(o.nodes))
			maps.Copy(all, o.nodes)
			names := slices.Sorted(maps.Keys(all))
			for i := range 150 {
				// Node churn: a node leaves (its pods stay, bound to it) or
				// comes back, or is relabelled into another zone.
				if r.IntN(8) == 0 {
					name := names[r.IntN(len(names))]
					switch _, present := o.nodes[name]; {
					case present && r.IntN(2) == 0:
						delete(o.nodes, name)
						snap.RemoveNode(name)
					case present:
						n := all[name].DeepCopy()
						n.Labels[propZone] = fmt.Sprintf("z%d", r.IntN(3))
						all[name], o.nodes[name] = n, n
						snap.UpdateNode(n)
					default:
						o.nodes[name] = all[name]
						snap.AddNode(all[name])
					}
				}
				if len(placed) > 0 && r.IntN(5) == 0 {
					k := r.IntN(len(placed))
					gone := placed[k]
					placed = slices.Delete(placed, k, k+1)
					snap.RemovePod(gone)
					o.pods[gone.Spec.NodeName] = slices.DeleteFunc(o.pods[gone.Spec.NodeName], func(q *corev1.Pod) bool { return q == gone })
				}
				if i%10 == 0 {
					checkHot(t, snap)
				}
				p := randomPod(r, i)
				want := o.feasible(p)
				pl := s.ScheduleBatch([]*corev1.Pod{p})[0]
				if errors.Is(pl.Err, ErrNoNodesAvailable) && len(o.nodes) == 0 {
					continue
				}
				if pl.Err != nil {
					var fe *FitError
					if !errors.As(pl.Err, &fe) {
						t.Fatalf("pod %d: unexpected error %v", i, pl.Err)
					}
					if len(want) > 0 {
						t.Fatalf("pod %d: %v, but the oracle finds %v feasible", i, pl.Err, want)
					}
					total := 0
					for _, n := range fe.Reasons {
						total += n
					}
					if fe.NumAllNodes != len(o.nodes) || total < fe.NumAllNodes {
						t.Fatalf("pod %d: FitError over %d nodes with %d reasons, cluster has %d nodes", i, fe.NumAllNodes, total, len(o.nodes))
					}
					continue
				}
				if !slices.Contains(want, pl.Node) {
					t.Fatalf("pod %d placed on %s, which the oracle rejects (feasible: %v)", i, pl.Node, want)
				}
				// The informer's view: the bound pod replaces the assumption.
				bound := p.DeepCopy()
				bound.Spec.NodeName = pl.Node
				if err := snap.AddPod(bound); err != nil {
					t.Fatal(err)
				}
				placed = append(placed, bound)
				o.pods[pl.Node] = append(o.pods[pl.Node], bound)
			}
			checkHot(t, snap)
			for name, n := range o.nodes {
				u := usage(t, snap, name)
				var cpu, mem int64
				for _, q := range o.pods[name] {
					cpu += sumRequests(q, corev1.ResourceCPU)
					mem += sumRequests(q, corev1.ResourceMemory)
				}
				if u.RequestedMilliCPU != cpu || u.RequestedMemory != mem || u.Pods != int64(len(o.pods[name])) {
					t.Errorf("node %s: snapshot says %dm/%d/%d pods, pods add up to %dm/%d/%d", name,
						u.RequestedMilliCPU, u.RequestedMemory, u.Pods, cpu, mem, len(o.pods[name]))
				}
				if cpu > qty(n.Status.Allocatable, corev1.ResourceCPU) || mem > qty(n.Status.Allocatable, corev1.ResourceMemory) {
					t.Errorf("node %s overcommitted: %dm cpu, %d memory", name, cpu, mem)
				}
			}
		})
	}
}

// The same property at a scale where nodes are sampled: placements stay
// feasible, only fewer nodes are looked at.
func TestPropertySampledPlacementsAreFeasible(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	o := &oracle{nodes: map[string]*corev1.Node{}, pods: map[string][]*corev1.Pod{}}
	snap := NewSnapshot()
	for i := range 400 {
		n := randomNode(r, i)
		n.Name = fmt.Sprintf("n%03d", i)
		n.Labels["kubernetes.io/hostname"] = n.Name
		o.nodes[n.Name] = n
		snap.AddNode(n)
	}
	s, err := New(snap, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	sampled := false
	for i := range 300 {
		p := randomPod(r, i)
		want := o.feasible(p)
		pl := s.ScheduleBatch([]*corev1.Pod{p})[0]
		if pl.Err != nil {
			if len(want) > 0 {
				t.Fatalf("pod %d: %v, but %d nodes are feasible", i, pl.Err, len(want))
			}
			continue
		}
		sampled = sampled || pl.Evaluated < len(o.nodes)
		if !slices.Contains(want, pl.Node) {
			t.Fatalf("pod %d placed on infeasible %s", i, pl.Node)
		}
		bound := p.DeepCopy()
		bound.Spec.NodeName = pl.Node
		o.pods[pl.Node] = append(o.pods[pl.Node], bound)
	}
	if !sampled {
		t.Errorf("400 nodes were always searched in full; sampling never kicked in")
	}
}

// checkHot verifies the snapshot's derived state against what it derives
// from: the dense hot rows against their nodes, the domain index against
// the nodes' labels, the owner presence bits against the owners' counts.
func checkHot(t *testing.T, snap *Snapshot) {
	t.Helper()
	for key, got := range snap.domainsByKey {
		want := map[string]int{}
		for _, ni := range snap.list {
			if v, ok := ni.labels[key]; ok {
				want[v]++
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("domains of %s: index %v, nodes %v", key, got, want)
		}
	}
	for uid, o := range snap.owners {
		for i, ni := range snap.list {
			if got, want := o.present.get(i), o.perNode[ni] > 0; got != want {
				t.Errorf("owner %s on %s: presence bit %v, %d pods", uid, ni.name, got, o.perNode[ni])
			}
		}
		for i := len(snap.list); i < 64*len(o.present); i++ {
			if o.present.get(i) {
				t.Errorf("owner %s: presence bit %d set beyond the %d candidates", uid, i, len(snap.list))
			}
		}
	}
	n := 0
	for _, set := range snap.podsByLabel {
		n += len(set)
	}
	want := 0
	for _, pi := range snap.pods {
		want += len(pi.labels)
	}
	if n != want {
		t.Errorf("label index holds %d entries, pods have %d labels", n, want)
	}
	if len(snap.hot) != len(snap.list) {
		t.Fatalf("%d hot rows for %d candidate nodes", len(snap.hot), len(snap.list))
	}
	for i, ni := range snap.list {
		if ni.listIdx != i {
			t.Errorf("node %s at list[%d] thinks it is at %d", ni.name, i, ni.listIdx)
		}
		if snap.hot[i] != ni.hot() {
			t.Errorf("node %s: hot row %+v, node says %+v", ni.name, snap.hot[i], ni.hot())
		}
	}
}

// TestPropertyEventOrderDoesNotMatter: the snapshot is built from watch
// events whose order across kinds is arbitrary (pods before their nodes,
// deletions of pods never seen...). Two snapshots fed the same final state
// in different orders, with the nodes listed in the same order, must make
// the same decisions.
func TestPropertyEventOrderDoesNotMatter(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			var nodes []*corev1.Node
			for i := range 12 {
				nodes = append(nodes, randomNode(r, i))
			}
			var bound []*corev1.Pod
			for i := range 60 {
				p := randomPod(r, i)
				p.Spec.NodeName = nodes[r.IntN(len(nodes))].Name
				bound = append(bound, p)
			}
			// In order: nodes, then pods.
			a := NewSnapshot()
			for _, n := range nodes {
				a.AddNode(n)
			}
			for _, p := range bound {
				if err := a.AddPod(p); err != nil {
					t.Fatal(err)
				}
			}
			// Shuffled: pods first (ghost nodes), some added twice, some
			// added, removed and re-added, nodes in between.
			b := NewSnapshot()
			order := r.Perm(len(bound))
			for k, i := range order {
				if k == len(order)/2 {
					for _, n := range nodes {
						b.AddNode(n)
					}
				}
				p := bound[i]
				if err := b.AddPod(p); err != nil {
					t.Fatal(err)
				}
				switch r.IntN(4) {
				case 0:
					b.RemovePod(p)
					if err := b.AddPod(p); err != nil {
						t.Fatal(err)
					}
				case 1:
					if err := b.AddPod(p); err != nil {
						t.Fatal(err)
					}
				}
			}
			b.RemovePod(mkPod("never-seen"))
			checkHot(t, a)
			checkHot(t, b)

			sa, _ := New(a, DefaultConfig())
			sb, _ := New(b, DefaultConfig())
			var pods []*corev1.Pod
			for i := range 40 {
				pods = append(pods, randomPod(r, 1000+i))
			}
			pa, pb := sa.ScheduleBatch(pods), sb.ScheduleBatch(pods)
			for i := range pods {
				ga, gb := pa[i].Node, pb[i].Node
				ea, eb := fmt.Sprint(pa[i].Err), fmt.Sprint(pb[i].Err)
				if ga != gb || ea != eb {
					t.Fatalf("pod %d: %q %v in order, %q %v shuffled", i, ga, ea, gb, eb)
				}
			}
		})
	}
}

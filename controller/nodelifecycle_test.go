package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/gossip"
)

func TestEvictionTime(t *testing.T) {
	added := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewNodeLifecycleController(nil, nil, nil, NodeLifecycleOptions{PodEvictionTimeout: time.Minute}, nil)
	node := mkNode("n1", nil, corev1.TaintNodeUnreachable+"=:NoExecute")
	node.Spec.Taints[0].TimeAdded = &metav1.Time{Time: added}
	tol := func(key string, secs *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}}
	}
	cases := []struct {
		name  string
		tols  []corev1.Toleration
		taint string // an extra taint
		want  time.Duration
		never bool
	}{
		{"no toleration: PodEvictionTimeout", nil, "", time.Minute, false},
		{"tolerationSeconds", tol(corev1.TaintNodeUnreachable, ptrTo(int64(5))), "", 5 * time.Second, false},
		{"negative seconds: at once", tol(corev1.TaintNodeUnreachable, ptrTo(int64(-1))), "", 0, false},
		{"toleration without seconds: never", tol(corev1.TaintNodeUnreachable, nil), "", 0, true},
		{"another NoExecute taint untolerated: at once", tol(corev1.TaintNodeUnreachable, nil), "gpu=broken:NoExecute", 0, false},
		{"NoSchedule taints do not evict", tol(corev1.TaintNodeUnreachable, nil), "gpu=broken:NoSchedule", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := node.DeepCopy()
			if tc.taint != "" {
				extra := mkNode("x", nil, tc.taint).Spec.Taints[0]
				extra.TimeAdded = &metav1.Time{Time: added}
				n.Spec.Taints = append(n.Spec.Taints, extra)
			}
			p := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1", Tolerations: tc.tols}}
			at, evict := c.evictionTime(p, n, added.Add(time.Second))
			if evict == tc.never {
				t.Fatalf("evict = %v, want %v", evict, !tc.never)
			}
			if evict && at.Sub(added) != tc.want {
				t.Errorf("evicted %v after the taint, want %v", at.Sub(added), tc.want)
			}
		})
	}
}

// heartbeats plays a node's agent: while on, it renews the node's Ready
// condition every 100ms.
type heartbeats struct {
	mu sync.Mutex
	on map[string]bool
}

func (h *heartbeats) set(node string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on[node] = on
}

func (k *cluster) heartbeat(h *heartbeats) {
	ctx, cancel := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			h.mu.Lock()
			var nodes []string
			for n, on := range h.on {
				if on {
					nodes = append(nodes, n)
				}
			}
			h.mu.Unlock()
			for _, name := range nodes {
				var n corev1.Node
				if err := k.c.Get(ctx, "", name, &n); err != nil {
					continue
				}
				now := metav1.Now()
				// The agent owns its status and writes it whole.
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
					Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
				_ = k.c.UpdateStatus(ctx, &n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	k.t.Cleanup(func() { cancel(); wg.Wait() })
}

// bindTo plays the scheduler: unbound pods matching sel go to *node.
func (k *cluster) binder(sel string, node func() string) {
	ctx, cancel := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var l corev1.PodList
			if err := k.c.List(ctx, "default", &l, client.ListOptions{LabelSelector: sel}); err == nil {
				for i := range l.Items {
					p := &l.Items[i]
					if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
						p.Spec.NodeName = node()
						if k.c.Update(ctx, p) == nil {
							p.Status.Phase = corev1.PodRunning
							p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
							_ = k.c.UpdateStatus(ctx, p)
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	k.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (k *cluster) node(name string) *corev1.Node {
	k.t.Helper()
	var n corev1.Node
	if err := k.c.Get(k.ctx, "", name, &n); err != nil {
		k.t.Fatalf("get node %s: %v", name, err)
	}
	return &n
}

func taintKeys(n *corev1.Node) map[string]bool {
	m := map[string]bool{}
	for _, t := range n.Spec.Taints {
		m[t.Key+":"+string(t.Effect)] = true
	}
	return m
}

func unreachable(k *cluster, name string) func() error {
	return func() error {
		n := k.node(name)
		r := nodeCondition(n, corev1.NodeReady)
		tk := taintKeys(n)
		if r == nil || r.Status != corev1.ConditionUnknown || !tk[corev1.TaintNodeUnreachable+":NoExecute"] || !tk[corev1.TaintNodeUnreachable+":NoSchedule"] {
			return fmt.Errorf("node %s: ready %+v taints %v", name, r, n.Spec.Taints)
		}
		return nil
	}
}

// TestIntegrationNodeLifecycle: a node that stops heartbeating is marked
// unreachable and tainted, its ReplicaSet's pods are evicted after their
// toleration and replaced elsewhere, and it is untainted when it returns.
func TestIntegrationNodeLifecycle(t *testing.T) {
	// Heartbeat times have a precision of one second: a grace of 3s.
	k := startCluster(t, &Options{NodeMonitorGracePeriod: 3 * time.Second, PodEvictionTimeout: time.Second})
	hb := &heartbeats{on: map[string]bool{"n1": true, "n2": true}}
	k.createNode("n1", nil)
	k.createNode("n2", nil)
	k.heartbeat(hb)
	var mu sync.Mutex
	target := "n1"
	k.binder("app=web", func() string { mu.Lock(); defer mu.Unlock(); return target })

	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web")}}
	rs.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(1))}}
	k.create(rs)
	// A pod tolerating unreachable nodes for ever stays.
	stay := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "stay", Labels: map[string]string{"app": "stay"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "stay:1"}},
			Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}}}
	k.create(stay)
	k.setPodStatus("stay", corev1.PodRunning, true)

	onNode := func(node string, n int) func() error {
		return func() error {
			var got []corev1.Pod
			for _, p := range k.livePods("app=web") {
				if p.Spec.NodeName == node && isReady(&p) {
					got = append(got, p)
				}
			}
			if len(got) != n {
				return fmt.Errorf("%d ready pods on %s (%s), want %d", len(got), node, names(k.pods("app=web")), n)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "pods running on n1", onNode("n1", 2))
	// Healthy nodes stay untainted past the grace period.
	eventually(t, 5*time.Second, "n2 healthy after the grace period", func() error {
		if time.Since(k.node("n2").CreationTimestamp.Time) < 5*time.Second {
			return fmt.Errorf("not yet past the grace period")
		}
		return nil
	})
	if n := k.node("n1"); len(n.Spec.Taints) != 0 {
		t.Fatalf("a heartbeating node was tainted: %v", n.Spec.Taints)
	}

	start := time.Now()
	hb.set("n1", false)
	mu.Lock()
	target = "n2"
	mu.Unlock()
	eventually(t, 20*time.Second, "n1 unreachable", unreachable(k, "n1"))
	eventually(t, 20*time.Second, "pods replaced on n2", onNode("n2", 2))
	t.Logf("node loss to replacement pods ready: %v (grace 3s, toleration 1s)", time.Since(start).Round(time.Millisecond))
	for _, p := range k.pods("app=web") {
		if p.Spec.NodeName == "n1" && p.DeletionTimestamp == nil {
			t.Errorf("pod %s still on n1, not evicted", p.Name)
		}
	}
	var s corev1.Pod
	if err := k.c.Get(k.ctx, "default", "stay", &s); err != nil || s.DeletionTimestamp != nil {
		t.Errorf("pod tolerating unreachable for ever was evicted: %v %v", err, s.DeletionTimestamp)
	} else if isReady(&s) {
		t.Errorf("pod on an unreachable node still Ready")
	}

	hb.set("n1", true)
	eventually(t, 20*time.Second, "n1 untainted on return", func() error {
		n := k.node("n1")
		if r := nodeCondition(n, corev1.NodeReady); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
			return fmt.Errorf("node n1: ready %+v taints %v", r, n.Spec.Taints)
		}
		return nil
	})
}

// fakeHealth is a NodeHealth the test sets.
type fakeHealth struct {
	mu    sync.Mutex
	down  map[string]time.Time
	subs  map[int]func(string)
	nextS int
}

func (f *fakeHealth) NodeDown(node string) (bool, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.down[node]
	return ok, t
}

func (f *fakeHealth) OnChange(fn func(string)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextS
	f.nextS++
	f.subs[id] = fn
	return func() { f.mu.Lock(); defer f.mu.Unlock(); delete(f.subs, id) }
}

func (f *fakeHealth) setDown(node string) {
	f.mu.Lock()
	f.down[node] = time.Now()
	var fns []func(string)
	for _, fn := range f.subs {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(node)
	}
}

// TestIntegrationNodeLifecycleGossip: with a minute of grace, a node the
// health source reports dead is marked unreachable within seconds — but
// only once its heartbeat is overdue (3s here) too.
func TestIntegrationNodeLifecycleGossip(t *testing.T) {
	h := &fakeHealth{down: map[string]time.Time{}, subs: map[int]func(string){}}
	// Heartbeat times have a precision of one second, and heartbeats
	// stall on a loaded machine: a confirm age of 3s.
	k := startCluster(t, &Options{NodeMonitorGracePeriod: time.Minute, NodeHealth: h, NodeHealthConfirmAge: 3 * time.Second})
	hb := &heartbeats{on: map[string]bool{"n1": true, "n2": true}}
	k.createNode("n1", nil)
	k.createNode("n2", nil)
	k.heartbeat(hb)

	// n2: gossip says dead, but it keeps posting status (a gossip-only
	// partition): not marked.
	h.setDown("n2")
	hb.set("n1", false)
	start := time.Now()
	h.setDown("n1")
	eventually(t, 10*time.Second, "n1 unreachable on gossip", unreachable(k, "n1"))
	t.Logf("heartbeats stopped and gossip verdict to node marked unreachable: %v (confirm age 3s)", time.Since(start).Round(time.Millisecond))
	eventually(t, 10*time.Second, "well past n2's confirm age", func() error {
		if time.Since(start) < 6*time.Second {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if n := k.node("n2"); len(n.Spec.Taints) != 0 {
		t.Errorf("n2, heartbeating, was tainted on gossip alone: %v", n.Spec.Taints)
	}
}

// gossip.Pool is the NodeHealth `skiff server` wires in.
var _ NodeHealth = (*gossip.Pool)(nil)

package controller

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// suspectingHealth is a NodeHealth with the NodeSuspicion capability, set
// by the test: a node is alive, suspect or dead.
type suspectingHealth struct {
	mu      sync.Mutex
	suspect map[string]bool
	down    map[string]time.Time
	fns     []func(string)
}

func newSuspectingHealth() *suspectingHealth {
	return &suspectingHealth{suspect: map[string]bool{}, down: map[string]time.Time{}}
}

func (h *suspectingHealth) NodeDown(node string) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.down[node]
	return ok, t
}

func (h *suspectingHealth) NodeSuspect(node string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.suspect[node]
}

func (h *suspectingHealth) OnChange(fn func(string)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fns = append(h.fns, fn)
	return func() {}
}

func (h *suspectingHealth) set(node string, suspect, down bool) {
	h.mu.Lock()
	h.suspect[node] = suspect
	if down {
		h.down[node] = time.Now()
	} else {
		delete(h.down, node)
	}
	fns := slices.Clone(h.fns)
	h.mu.Unlock()
	for _, fn := range fns {
		fn(node)
	}
}

var _ NodeSuspicion = (*suspectingHealth)(nil)

// createLease makes the node's kube-node-lease Lease, renewed now.
func (k *cluster) createLease(node string) {
	k.t.Helper()
	now := metav1.NowMicro()
	secs := int32(40)
	k.create(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: node},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &secs, RenewTime: &now}})
}

func (k *cluster) lease(node string) *coordinationv1.Lease {
	k.t.Helper()
	l := &coordinationv1.Lease{}
	if err := k.c.Get(k.ctx, corev1.NamespaceNodeLease, node, l); err != nil {
		k.t.Fatalf("get lease %s: %v", node, err)
	}
	return l
}

// pingAnswerer plays the agent's answerPings for node: a Lease carrying a
// ping is renewed (which clears it) within about 50ms. It counts the
// pings it answered.
func (k *cluster) pingAnswerer(node string) *atomic.Int64 {
	answered := &atomic.Int64{}
	ctx, cancel := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			l := &coordinationv1.Lease{}
			if err := k.c.Get(ctx, corev1.NamespaceNodeLease, node, l); err == nil && l.Annotations[LeasePingAnnotation] != "" {
				now := metav1.NowMicro()
				l.Spec.RenewTime = &now
				delete(l.Annotations, LeasePingAnnotation)
				if k.c.Update(ctx, l) == nil {
					answered.Add(1)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	k.t.Cleanup(func() { cancel(); wg.Wait() })
	return answered
}

// TestIntegrationNodeLifecyclePing: with heartbeats that would take a
// minute to be overdue, a node gossip holds dead is marked unreachable once it has
// not answered a ping through its Lease within the ping timeout (1s); a
// node gossip holds dead that answers (cut off from gossip only) is left
// alone; a suspect node is pinged at once but not marked until gossip's
// verdict, which then needs no second ping.
func TestIntegrationNodeLifecyclePing(t *testing.T) {
	h := newSuspectingHealth()
	k := startCluster(t, &Options{NodeMonitorGracePeriod: 2 * time.Minute, NodeHealth: h, NodeHealthConfirmAge: time.Minute,
		NodeHealthPingTimeout: time.Second})
	for _, n := range []string{"n1", "n2", "n3"} {
		k.createNode(n, nil)
		k.createLease(n)
	}
	// No status heartbeats: the last ones (at creation) stay far younger
	// than the confirm age (a minute) for the whole test, so only the
	// ping tells, and a wrong mark is not undone by a status write.
	answered := k.pingAnswerer("n2")

	// n1 is dead: its Lease is never renewed.
	start := time.Now()
	h.set("n1", false, true)
	eventually(t, 10*time.Second, "n1 unreachable after an unanswered ping", unreachable(k, "n1"))
	took := time.Since(start)
	t.Logf("gossip verdict to n1 marked unreachable: %v (ping timeout 1s, confirm age 1m)", took.Round(time.Millisecond))
	if took < time.Second {
		t.Errorf("n1 marked %v after gossip's verdict, before its ping could time out (1s)", took)
	}
	if msg := nodeCondition(k.node("n1"), corev1.NodeReady).Message; !strings.Contains(msg, "did not answer a ping") {
		t.Errorf("n1 Ready message %q, want it to say the ping went unanswered", msg)
	}

	// n2 is cut off from gossip only: it answers, and is left alone.
	h.set("n2", false, true)
	eventually(t, 10*time.Second, "n2 pinged and answering", func() error {
		if k.lease("n2").Annotations[LeasePingAnnotation] != "" || answered.Load() == 0 {
			return fmt.Errorf("no ping answered yet")
		}
		return nil
	})
	time.Sleep(3 * time.Second) // three ping timeouts: any wrong mark would be in by now
	if n := k.node("n2"); len(n.Spec.Taints) != 0 || nodeCondition(n, corev1.NodeReady).Status != corev1.ConditionTrue {
		t.Errorf("n2 answered its ping but was marked: taints %v, ready %+v", n.Spec.Taints, nodeCondition(n, corev1.NodeReady))
	}
	if got := answered.Load(); got != 1 {
		t.Errorf("n2 was pinged %d times in one gossip episode, want 1", got)
	}

	// n3 is suspected: pinged at once, not marked on suspicion alone.
	h.set("n3", true, false)
	var pingRV string
	eventually(t, 10*time.Second, "n3 pinged on suspicion", func() error {
		l := k.lease("n3")
		if l.Annotations[LeasePingAnnotation] == "" {
			return fmt.Errorf("no ping on n3's Lease: %v", l.Annotations)
		}
		pingRV = l.ResourceVersion
		return nil
	})
	time.Sleep(2 * time.Second)
	if n := k.node("n3"); len(n.Spec.Taints) != 0 {
		t.Errorf("n3 marked on suspicion alone: taints %v", n.Spec.Taints)
	}
	// Gossip's verdict: the unanswered ping already confirms it.
	h.set("n3", false, true)
	eventually(t, 10*time.Second, "n3 unreachable on gossip's verdict", unreachable(k, "n3"))
	rv, _ := strconv.ParseInt(pingRV, 10, 64)
	if msg := nodeCondition(k.node("n3"), corev1.NodeReady).Message; !strings.Contains(msg, fmt.Sprintf("revision %d)", rv)) {
		t.Errorf("n3 Ready message %q, want the ping made on suspicion (revision %d), not a second one", msg, rv)
	}
}

// TestLeasePingRenewedSince: only a later version of the Lease with a new
// renewTime answers a ping; the controller's own later writes (same
// renewTime) and a stale cache (older revision) do not.
func TestLeasePingRenewedSince(t *testing.T) {
	t0 := metav1.NewMicroTime(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewMicroTime(t0.Add(time.Second))
	p := &leasePing{revision: 100, renewed: &t0}
	lease := func(rv string, renew *metav1.MicroTime) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}, Spec: coordinationv1.LeaseSpec{RenewTime: renew}}
	}
	cases := []struct {
		name string
		l    *coordinationv1.Lease
		want bool
	}{
		{"renewed after the ping", lease("101", &t1), true},
		{"the ping itself", lease("100", &t0), false},
		{"a later write keeping the renewTime (revocation)", lease("105", &t0), false},
		{"stale cache with an older renewTime", lease("90", &t1), false},
		{"no renewTime", lease("101", nil), false},
		{"not a revision", lease("x", &t1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.renewedSince(tc.l); got != tc.want {
				t.Errorf("renewedSince = %v, want %v", got, tc.want)
			}
		})
	}
	unrenewed := &leasePing{revision: 100}
	if !unrenewed.renewedSince(lease("101", &t1)) {
		t.Error("a Lease pinged without renewTime, then renewed: not counted as an answer")
	}
}

package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestNodeVerdict: the decision table of the node lifecycle controller for
// a Ready node — the grace period alone marks it, gossip marks it only
// with an overdue heartbeat, and otherwise it says when to look again.
func TestNodeVerdict(t *testing.T) {
	c := NewNodeLifecycleController(nil, nil, nil, NodeLifecycleOptions{GracePeriod: 40 * time.Second, HealthConfirmAge: 3 * time.Second}, nil)
	since := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		age     time.Duration
		down    bool
		wantMsg string // substring; "" = not marked
		recheck time.Duration
	}{
		{"fresh, gossip silent", time.Second, false, "", 39*time.Second + 10*time.Millisecond},
		{"fresh, gossip says dead: wait for confirmation", time.Second, true, "", 2*time.Second + 10*time.Millisecond},
		{"overdue by the confirm age, gossip says dead", 3 * time.Second, true, "gossip reports it dead since 2026-12-06T20:00:00Z", 0},
		{"overdue by the confirm age, gossip silent: not on heartbeat alone", 3 * time.Second, false, "", 37*time.Second + 10*time.Millisecond},
		{"past the grace period, gossip silent", 40 * time.Second, false, msgStaleHeartbeat, 0},
		{"past the grace period, gossip says dead", time.Minute, true, msgStaleHeartbeat, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, recheck := c.verdict(tc.age, tc.down, since)
			if tc.wantMsg == "" && msg != "" || tc.wantMsg != "" && !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("verdict message %q, want %q", msg, tc.wantMsg)
			}
			if recheck != tc.recheck {
				t.Errorf("recheck after %v, want %v", recheck, tc.recheck)
			}
		})
	}
}

// TestLastSignOfLife: the later of the Ready heartbeat and the Lease's
// renewTime; Leases of other namespaces or without renewTime do not count.
func TestLastSignOfLife(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	node := func(hb time.Time) *corev1.Node {
		n := mkNode("n1", nil)
		n.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour))
		if !hb.IsZero() {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(hb)}}
		}
		return n
	}
	lease := func(ns string, renew *time.Time) runtime.Object {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "n1"}}
		if renew != nil {
			l.Spec.RenewTime = &metav1.MicroTime{Time: *renew}
		}
		return l
	}
	later, earlier := t0.Add(30*time.Second), t0.Add(-30*time.Second)
	cases := []struct {
		name   string
		node   *corev1.Node
		leases []runtime.Object
		want   time.Time
	}{
		{"no heartbeat, no lease: creation", node(time.Time{}), nil, t0.Add(-time.Hour)},
		{"heartbeat only", node(t0), nil, t0},
		{"lease renewed later wins", node(t0), []runtime.Object{lease(corev1.NamespaceNodeLease, &later)}, later},
		{"heartbeat later wins", node(t0), []runtime.Object{lease(corev1.NamespaceNodeLease, &earlier)}, t0},
		{"lease without renewTime", node(t0), []runtime.Object{lease(corev1.NamespaceNodeLease, nil)}, t0},
		{"lease in another namespace", node(t0), []runtime.Object{lease("default", &later)}, t0},
		{"lease only", node(time.Time{}), []runtime.Object{lease(corev1.NamespaceNodeLease, &later)}, later},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := snapshot{}
			for _, o := range tc.leases {
				l := o.(*coordinationv1.Lease)
				cache[l.Namespace+"/"+l.Name] = o
			}
			c := NewNodeLifecycleController(nil, nil, nil, NodeLifecycleOptions{Leases: cache}, nil)
			if got := c.lastSignOfLife(tc.node); !got.Equal(tc.want) {
				t.Errorf("last sign of life %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIntegrationNodeLeaseHeartbeat: a node whose agent renews only its
// Lease (its status heartbeat is long past the grace period) stays Ready;
// once the renewals stop, it is marked unreachable after the grace period.
func TestIntegrationNodeLeaseHeartbeat(t *testing.T) {
	k := startCluster(t, &Options{NodeMonitorGracePeriod: 2 * time.Second, PodEvictionTimeout: time.Second})
	k.createNode("n1", nil)
	start := time.Now()
	var mu sync.Mutex
	renewing := true
	ctx, cancel := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			mu.Lock()
			on := renewing
			mu.Unlock()
			if on {
				now := metav1.NowMicro()
				l := &coordinationv1.Lease{}
				err := k.c.Get(ctx, corev1.NamespaceNodeLease, "n1", l)
				if err != nil {
					l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: "n1"},
						Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("n1"), LeaseDurationSeconds: ptrTo(int32(2)), RenewTime: &now}}
					_ = k.c.Create(ctx, l)
				} else {
					l.Spec.RenewTime = &now
					_ = k.c.Update(ctx, l)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	eventually(t, 10*time.Second, "three grace periods of lease-only renewals", func() error {
		if time.Since(start) < 6*time.Second {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	n := k.node("n1")
	if r := nodeCondition(n, corev1.NodeReady); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Fatalf("node renewing its Lease was marked: ready %+v taints %v", r, n.Spec.Taints)
	}
	mu.Lock()
	renewing = false
	mu.Unlock()
	stopped := time.Now()
	eventually(t, 10*time.Second, "n1 unreachable once its Lease is not renewed", unreachable(k, "n1"))
	if d := time.Since(stopped); d < time.Second {
		t.Errorf("marked %v after the last renewal, before the 2s grace period could pass", d)
	}
}

package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
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

// TestFenceExpiry: a fenceable pod's release time is the node's last sign
// of life plus 1.5 Lease durations plus the pod's grace period.
func TestFenceExpiry(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	node := mkNode("n1", nil)
	node.CreationTimestamp = metav1.NewTime(t0)
	withLease := snapshot{corev1.NamespaceNodeLease + "/n1": &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: "n1"},
		Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: ptrTo(int32(40)), RenewTime: &metav1.MicroTime{Time: t0.Add(10 * time.Second)}}}}
	sts := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptrTo(true)}}
	cases := []struct {
		name      string
		leases    Cache
		grace     *int64
		owners    []metav1.OwnerReference
		annotated bool
		fenceable bool
		want      time.Duration // after t0
	}{
		{"statefulset pod, lease of 40s, default grace", withLease, nil, sts, false, true, 10*time.Second + 60*time.Second + 30*time.Second},
		{"annotated pod, grace 5s", withLease, ptrTo(int64(5)), nil, true, true, 10*time.Second + 60*time.Second + 5*time.Second},
		{"no lease: the grace period (20s) stands for it", snapshot{}, ptrTo(int64(0)), sts, false, true, 30 * time.Second},
		{"replicaset pod: not fenceable", withLease, nil, []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", Controller: ptrTo(true)}}, false, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewNodeLifecycleController(nil, nil, nil, NodeLifecycleOptions{GracePeriod: 20 * time.Second, Leases: tc.leases}, nil)
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: tc.owners}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: tc.grace}}
			if tc.annotated {
				p.Annotations = map[string]string{FenceAnnotation: "true"}
			}
			if got := fenceable(p); got != tc.fenceable {
				t.Fatalf("fenceable = %v, want %v", got, tc.fenceable)
			}
			if !tc.fenceable {
				return
			}
			if got := c.fenceExpiry(node, p).Sub(t0); got != tc.want {
				t.Errorf("fence expiry %v after t0, want %v", got, tc.want)
			}
		})
	}
}

// TestIntegrationFencedPodsReleased: pods evicted from an unreachable node
// stay Terminating (their agent is not there to finish). A StatefulSet's
// pod and an annotated one are deleted for good only once the node's Lease
// has expired and their grace period passed (their agent has fenced them
// by then) — and only then does the StatefulSet start its identity again,
// on another node; an ordinary pod is left to its agent.
func TestIntegrationFencedPodsReleased(t *testing.T) {
	k := startCluster(t, &Options{NodeMonitorGracePeriod: 2 * time.Second, PodEvictionTimeout: time.Second})
	k.createNode("n1", nil)
	k.createNode("n2", nil)
	k.heartbeat(&heartbeats{on: map[string]bool{"n2": true}})
	renewed := metav1.NowMicro()
	k.create(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: "n1"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("n1"), LeaseDurationSeconds: ptrTo(int32(2)), RenewTime: &renewed}})
	var mu sync.Mutex
	target := "n1"
	k.binder("app=db", func() string { mu.Lock(); defer mu.Unlock(); return target })

	tmpl := podTemplate("db")
	tmpl.Spec.TerminationGracePeriodSeconds = ptrTo(int64(1))
	k.create(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(1)), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: tmpl}})
	for _, name := range []string{"fenced", "ordinary"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: ptrTo(int64(1)),
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if name == "fenced" {
			p.Annotations = map[string]string{FenceAnnotation: "true"}
		}
		k.create(p)
	}
	get := func(name string) (*corev1.Pod, error) {
		var p corev1.Pod
		err := k.c.Get(k.ctx, "default", name, &p)
		return &p, err
	}
	var old *corev1.Pod
	eventually(t, 20*time.Second, "db-0 on n1", func() error {
		p, err := get("db-0")
		if err != nil || p.Spec.NodeName != "n1" {
			return fmt.Errorf("db-0: %v %v", err, p.Spec.NodeName)
		}
		old = p
		return nil
	})
	mu.Lock()
	target = "n2"
	mu.Unlock()

	eventually(t, 20*time.Second, "n1 unreachable", unreachable(k, "n1"))
	eventually(t, 20*time.Second, "n1's fenceable pods gone for good", func() error {
		if p, err := get("db-0"); err == nil && p.UID == old.UID {
			return fmt.Errorf("db-0 of n1 still there (deleting: %v)", p.DeletionTimestamp != nil)
		} else if err != nil && !client.IsNotFound(err) {
			return err
		}
		if p, err := get("fenced"); err == nil {
			return fmt.Errorf("pod fenced still there (deleting: %v)", p.DeletionTimestamp != nil)
		} else if !client.IsNotFound(err) {
			return err
		}
		return nil
	})
	var l coordinationv1.Lease
	if err := k.c.Get(k.ctx, corev1.NamespaceNodeLease, "n1", &l); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Annotations[LeaseRevokedAnnotation]; !ok {
		t.Errorf("n1's fenced pods released without revoking its Lease (annotations %v)", l.Annotations)
	}
	// Renewed at r with a 2s duration: not before r + 3s (1.5 durations)
	// + 1s of grace. (Eviction comes at about r + 3s: grace period 2s,
	// eviction timeout 1s.)
	if early := renewed.Add(4 * time.Second); time.Now().Before(early) {
		t.Errorf("fenceable pods released at %v, before their agent must have stopped them (%v)", time.Now(), early)
	}
	eventually(t, 20*time.Second, "db-0 again, on n2", func() error {
		p, err := get("db-0")
		if err != nil || p.UID == old.UID || p.Spec.NodeName != "n2" {
			return fmt.Errorf("db-0: %v, node %q", err, p.Spec.NodeName)
		}
		return nil
	})
	p, err := get("ordinary")
	if err != nil {
		t.Fatalf("the ordinary pod: %v", err)
	}
	if p.DeletionTimestamp == nil {
		t.Errorf("the ordinary pod was not evicted")
	}
}

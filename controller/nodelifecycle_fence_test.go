package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// renewingWriter is the fake cluster with an agent that renews its Lease
// right before the controller's own write to it lands: the race between
// a revocation and a renewal.
type renewingWriter struct {
	*fakeCluster
	renew func()
}

func (w renewingWriter) Update(ctx context.Context, obj runtime.Object) error {
	if _, ok := obj.(*coordinationv1.Lease); ok && w.renew != nil {
		w.renew()
	}
	return w.fakeCluster.Update(ctx, obj)
}

// TestReleaseFencedRevokesFirst: the fenced pod of an unreachable node is
// force-deleted only after the node's Lease, read afresh from the API and
// still expired, has been revoked with a compare-and-swap; a Lease
// renewed since the cache saw it, or renewed under the revocation, keeps
// the pod and leaves the Lease unrevoked.
func TestReleaseFencedRevokesFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute) // the Lease (2s) renewed at t0 has long expired
	leaseKey := corev1.NamespaceNodeLease + "/n1"

	setup := func(t *testing.T) (*fakeCluster, *corev1.Pod) {
		f := newFake()
		node := mkNode("n1", nil)
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastHeartbeatTime: metav1.NewTime(t0)}}
		added := metav1.NewTime(t0.Add(3 * time.Second))
		node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
		renewed := metav1.NewMicroTime(t0)
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: "n1"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("n1"), LeaseDurationSeconds: ptrTo(int32(2)), RenewTime: &renewed}}
		evicted := metav1.NewTime(t0.Add(4 * time.Second))
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-0", DeletionTimestamp: &evicted,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptrTo(true)}}},
			Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: ptrTo(int64(1))}}
		f.add(node, lease, pod)
		return f, pod
	}
	// renew is the agent's renewal at now, through the API.
	renew := func(t *testing.T, f *fakeCluster) {
		var l coordinationv1.Lease
		if err := f.Get(context.Background(), corev1.NamespaceNodeLease, "n1", &l); err != nil {
			t.Fatal(err)
		}
		r := metav1.NewMicroTime(now)
		l.Spec.RenewTime = &r
		if err := f.Update(context.Background(), &l); err != nil {
			t.Fatal(err)
		}
	}
	controllerFor := func(f *fakeCluster, w Writer, leases Cache) *NodeLifecycleController {
		c := NewNodeLifecycleController(f.cache("Node"), f.cache("Pod"), w, NodeLifecycleOptions{GracePeriod: 2 * time.Second, Leases: leases}, nil)
		c.now = func() time.Time { return now }
		return c
	}
	lease := func(t *testing.T, f *fakeCluster) *coordinationv1.Lease {
		var l coordinationv1.Lease
		if err := f.Get(context.Background(), corev1.NamespaceNodeLease, "n1", &l); err != nil {
			t.Fatal(err)
		}
		return &l
	}
	podThere := func(f *fakeCluster, uid string) bool {
		return slices.ContainsFunc(f.pods(), func(p *corev1.Pod) bool { return string(p.UID) == uid })
	}

	t.Run("expired: revoke, then delete", func(t *testing.T) {
		f, pod := setup(t)
		c := controllerFor(f, f, f.cache("Lease"))
		if _, err := c.Reconcile(ctxT(t), "n1"); err != nil {
			t.Fatal(err)
		}
		got := f.takeActions()
		want := []action{{"update", "Lease", leaseKey}, {"delete", "Pod", "default/db-0"}}
		if !slices.Equal(got, want) {
			t.Fatalf("actions %v, want %v (the revocation strictly before the deletion)", got, want)
		}
		if at := lease(t, f).Annotations[LeaseRevokedAnnotation]; at != now.Format(time.RFC3339Nano) {
			t.Errorf("Lease annotation %s=%q, want the time of the revocation %s", LeaseRevokedAnnotation, at, now.Format(time.RFC3339Nano))
		}
		if podThere(f, string(pod.UID)) {
			t.Error("db-0 still there after its Lease was revoked")
		}
	})

	t.Run("renewed since the cache saw it: no revocation, no deletion", func(t *testing.T) {
		f, pod := setup(t)
		stale := snapshotOf(f.cache("Lease")) // the cache still has the expired Lease
		renew(t, f)
		f.takeActions()
		c := controllerFor(f, f, stale)
		res, err := c.Reconcile(ctxT(t), "n1")
		if err != nil {
			t.Fatal(err)
		}
		if got := f.takeActions(); len(got) != 0 {
			t.Errorf("actions %v, want none: the Lease read from the API is not expired", got)
		}
		if !podThere(f, string(pod.UID)) {
			t.Error("db-0 deleted although its agent renewed its Lease")
		}
		if res.RequeueAfter <= 0 {
			t.Errorf("RequeueAfter %v: the controller must look again when the fresh Lease would expire", res.RequeueAfter)
		}
	})

	t.Run("renewed under the revocation: conflict, no deletion", func(t *testing.T) {
		f, pod := setup(t)
		w := renewingWriter{fakeCluster: f}
		w.renew = func() { w.renew = nil; renew(t, f) }
		c := controllerFor(f, &w, f.cache("Lease"))
		res, err := c.Reconcile(ctxT(t), "n1")
		if err != nil {
			t.Fatalf("a lost race is no error, the controller looks again: %v", err)
		}
		got := f.takeActions()
		if want := []action{{"update", "Lease", leaseKey}}; !slices.Equal(got, want) {
			t.Errorf("actions %v, want only the agent's renewal %v", got, want)
		}
		if at, ok := lease(t, f).Annotations[LeaseRevokedAnnotation]; ok {
			t.Errorf("Lease revoked (%q) although the agent renewed it first", at)
		}
		if !podThere(f, string(pod.UID)) {
			t.Fatal("db-0 deleted although the revocation conflicted")
		}
		if res.RequeueAfter <= 0 || res.RequeueAfter > releaseFencedRetry {
			t.Errorf("RequeueAfter %v, want at most %v", res.RequeueAfter, releaseFencedRetry)
		}
		// Looking again, on the renewed Lease: nothing to do.
		if _, err := c.Reconcile(ctxT(t), "n1"); err != nil {
			t.Fatal(err)
		}
		if got := f.takeActions(); len(got) != 0 {
			t.Errorf("second look: actions %v, want none", got)
		}
	})

	t.Run("no Lease in the API: created revoked, then delete", func(t *testing.T) {
		f, pod := setup(t)
		stale := snapshotOf(f.cache("Lease"))
		f.mu.Lock()
		delete(f.objs["Lease"], leaseKey)
		f.mu.Unlock()
		c := controllerFor(f, f, stale)
		if _, err := c.Reconcile(ctxT(t), "n1"); err != nil {
			t.Fatal(err)
		}
		got := f.takeActions()
		if want := []action{{"create", "Lease", leaseKey}, {"delete", "Pod", "default/db-0"}}; !slices.Equal(got, want) {
			t.Fatalf("actions %v, want %v", got, want)
		}
		if _, ok := lease(t, f).Annotations[LeaseRevokedAnnotation]; !ok {
			t.Error("the Lease created by the controller is not revoked: the agent's own creation would succeed")
		}
		if podThere(f, string(pod.UID)) {
			t.Error("db-0 still there")
		}
	})
}

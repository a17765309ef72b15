package node

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func TestValidateHeartbeat(t *testing.T) {
	cases := []struct {
		name              string
		hb, lease, report time.Duration
		wantErr           bool
	}{
		{"defaults", 10 * time.Second, 0, 0, false},
		{"short heartbeat and lease", time.Second, 4 * time.Second, 5 * time.Second, false},
		{"lease not longer than the heartbeat", 10 * time.Second, 10 * time.Second, 0, true},
		{"lease of a fraction of a second", time.Second, 2500 * time.Millisecond, 0, true},
		{"negative report interval", time.Second, 0, -time.Second, true},
		{"report interval below the heartbeat", 10 * time.Second, 0, 5 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{HeartbeatInterval: tc.hb, LeaseDuration: tc.lease, NodeStatusReportInterval: tc.report}
			if err := c.validateHeartbeat(); (err != nil) != tc.wantErr {
				t.Errorf("validateHeartbeat() = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestNodeStatusChanged(t *testing.T) {
	t0, t1 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(110, 0))
	base := corev1.NodeStatus{
		Capacity:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: t0, LastTransitionTime: t0}},
	}
	later := *base.DeepCopy()
	later.Conditions[0].LastHeartbeatTime = t1
	if nodeStatusChanged(base, later) {
		t.Error("a newer heartbeat time alone counted as a change")
	}
	pressure := *later.DeepCopy()
	pressure.Conditions = append(pressure.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue})
	if !nodeStatusChanged(base, pressure) {
		t.Error("a new condition did not count as a change")
	}
	bigger := *later.DeepCopy()
	bigger.Capacity[corev1.ResourceCPU] = resource.MustParse("4")
	if !nodeStatusChanged(base, bigger) {
		t.Error("a capacity change did not count as a change")
	}
}

// TestRenewLease: the agent creates its Lease in kube-node-lease (holder,
// duration, owner), renews it with one update, and recovers from a Lease
// deleted under it.
func TestRenewLease(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a store and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := &Agent{cfg: Config{Name: "n1", Client: c, HeartbeatInterval: time.Second, LeaseDuration: 5 * time.Second},
		log: slog.New(slog.DiscardHandler), nodeUID: "uid-n1"}

	get := func() *coordinationv1.Lease {
		t.Helper()
		l := &coordinationv1.Lease{}
		if err := c.Get(ctx, corev1.NamespaceNodeLease, "n1", l); err != nil {
			t.Fatalf("get lease: %v", err)
		}
		return l
	}
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("first renewal: %v", err)
	}
	first := get()
	if first.Spec.HolderIdentity == nil || *first.Spec.HolderIdentity != "n1" || first.Spec.LeaseDurationSeconds == nil ||
		*first.Spec.LeaseDurationSeconds != 5 || first.Spec.RenewTime == nil || first.Spec.AcquireTime == nil {
		t.Fatalf("lease spec = %+v, want holder n1, 5s, acquire and renew times", first.Spec)
	}
	if len(first.OwnerReferences) != 1 || first.OwnerReferences[0].Kind != "Node" || first.OwnerReferences[0].UID != "uid-n1" {
		t.Errorf("lease owners = %+v, want the Node n1", first.OwnerReferences)
	}
	if a.LeaseRenewed().IsZero() {
		t.Error("LeaseRenewed is zero after a renewal")
	}

	time.Sleep(10 * time.Millisecond) // renewTime has microsecond precision: make the next one differ
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("second renewal: %v", err)
	}
	second := get()
	if !second.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
		t.Errorf("renewTime %v not after %v", second.Spec.RenewTime, first.Spec.RenewTime)
	}
	if !second.Spec.AcquireTime.Equal(first.Spec.AcquireTime) {
		t.Errorf("acquireTime changed on renewal: %v -> %v", first.Spec.AcquireTime, second.Spec.AcquireTime)
	}

	// Deleted under the agent: the renewal's update fails, and the same
	// renewal reads it afresh and recreates it.
	if _, err := c.Delete(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("renewal after the lease was deleted: %v", err)
	}
	if l := get(); l.UID == second.UID {
		t.Error("lease not recreated")
	}
}

// TestLeaseRevocation: the controller revokes the agent's Lease (a
// compare-and-swap writing skiff.dev/revoked-at) before it force-deletes
// the node's fenced pods. The agent, its pod cache stale (the informer
// stopped before the deletions, as one cut off by a partition), renews:
// its compare-and-swap conflicts, it reads the revocation, revokes the
// fenceable pods the API has deleted or is deleting — never to run them
// again, whatever its cache says — and clears the revocation. Live pods,
// fenceable or not, and a replacement of a revoked pod run. A
// revocation based on the Lease read before that renewal then conflicts.
// Once the informer catches up, the revoked pods that are gone are
// forgotten.
func TestLeaseRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a store and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sts := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "sts-uid", Controller: ptr(true)}}
	mk := func(name string, owners []metav1.OwnerReference) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, OwnerReferences: owners},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return p
	}
	db0, db1, db2, web := mk("db-0", sts), mk("db-1", sts), mk("db-2", sts), mk("web", nil)

	pods, err := client.NewInformer(c, "", &corev1.Pod{}, client.ListOptions{FieldSelector: "spec.nodeName=n1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	runInformer := func() (stop func()) {
		ictx, icancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = pods.Run(ictx) }()
		return func() { icancel(); <-done }
	}
	stopInformer := runInformer()
	if !pods.WaitForSync(ctx) {
		t.Fatal("pod informer never synced")
	}
	stopInformer() // the cache now lags every change below
	a := &Agent{cfg: Config{Name: "n1", Client: c, HeartbeatInterval: time.Second, LeaseDuration: 5 * time.Second},
		log: slog.New(slog.DiscardHandler), nodeUID: "uid-n1", pods: pods}
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("first renewal: %v", err)
	}

	// The controller: db-0 evicted then force-deleted (and replaced, on
	// this node too: a new UID), db-1 evicted (Terminating), after
	// revoking the Lease it read expired.
	grace := int64(30)
	for _, p := range []*corev1.Pod{db0, db1} {
		if _, err := c.Delete(ctx, p, &client.DeleteOptions{GracePeriodSeconds: &grace, PreconditionUID: string(p.UID)}); err != nil {
			t.Fatalf("evict %s: %v", p.Name, err)
		}
	}
	var read coordinationv1.Lease
	if err := c.Get(ctx, corev1.NamespaceNodeLease, "n1", &read); err != nil {
		t.Fatal(err)
	}
	revoked := read.DeepCopy()
	revoked.Annotations = map[string]string{LeaseRevokedAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := c.Update(ctx, revoked); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	zero := int64(0)
	if _, err := c.Delete(ctx, db0, &client.DeleteOptions{GracePeriodSeconds: &zero, PreconditionUID: string(db0.UID)}); err != nil {
		t.Fatalf("force-delete db-0: %v", err)
	}
	db0new := mk("db-0", sts)

	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("renewal of the revoked Lease: %v", err)
	}
	var after coordinationv1.Lease
	if err := c.Get(ctx, corev1.NamespaceNodeLease, "n1", &after); err != nil {
		t.Fatal(err)
	}
	if at, ok := after.Annotations[LeaseRevokedAnnotation]; ok {
		t.Errorf("the renewal left the revocation (%s) on the Lease", at)
	}
	if !after.Spec.RenewTime.After(read.Spec.RenewTime.Time) {
		t.Errorf("Lease not renewed: renewTime %v, before the revocation %v", after.Spec.RenewTime, read.Spec.RenewTime)
	}
	for _, tc := range []struct {
		pod     *corev1.Pod
		what    string
		revoked bool
	}{
		{db0, "db-0, force-deleted", true},
		{db1, "db-1, Terminating", true},
		{db0new, "db-0's replacement", false},
		{db2, "db-2, alive", false},
		{web, "web, not fenceable", false},
	} {
		if got := a.revoked(tc.pod.UID); got != tc.revoked {
			t.Errorf("%s (uid %s): revoked %v, want %v", tc.what, tc.pod.UID, got, tc.revoked)
		}
	}
	// What syncPods hands the workers, from the stale cache: neither db-0
	// nor db-1, which the cache shows alive.
	var runs []string
	for _, o := range pods.List(nil) {
		if p := o.(*corev1.Pod); a.mayRun(p, a.Fenced()) {
			runs = append(runs, p.Name+"/"+string(p.UID))
		}
	}
	if want := []string{"db-2/" + string(db2.UID), "web/" + string(web.UID)}; !slices.Equal(runs, want) {
		t.Errorf("from the stale cache the agent would run %v, want %v", runs, want)
	}

	// The controller's revocation on the Lease it read before the renewal
	// loses: the renewal changed its resourceVersion.
	late := after.DeepCopy()
	late.ResourceVersion = revoked.ResourceVersion
	late.Annotations = map[string]string{LeaseRevokedAnnotation: "late"}
	if err := c.Update(ctx, late); !client.IsConflict(err) {
		t.Errorf("a revocation on the Lease as read before the renewal: %v, want a conflict", err)
	}

	// db-1 finished; the informer catches up; the pods gone are forgotten.
	if _, err := c.Delete(ctx, db1, &client.DeleteOptions{GracePeriodSeconds: &zero, PreconditionUID: string(db1.UID)}); err != nil {
		t.Fatalf("finish db-1: %v", err)
	}
	var now corev1.PodList
	if err := c.List(ctx, "", &now, client.ListOptions{FieldSelector: "spec.nodeName=n1"}); err != nil {
		t.Fatal(err)
	}
	defer runInformer()()
	deadline := time.Now().Add(20 * time.Second)
	for !revisionAtLeast(pods.LastResourceVersion(), now.ResourceVersion) {
		if time.Now().After(deadline) {
			t.Fatalf("informer at revision %s, not caught up with %s", pods.LastResourceVersion(), now.ResourceVersion)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.settleFencedPods(ctx); err != nil {
		t.Fatal(err)
	}
	if a.revoked(db0.UID) || a.revoked(db1.UID) || a.hasRevoked() {
		t.Errorf("revoked pods not forgotten once gone: %v", a.fence.revoked)
	}
}

func ptr[T any](v T) *T { return &v }

// TestLeasePing: the node lifecycle controller pings the agent through its
// Lease (skiff.dev/ping) when gossip suspects the node; the agent, watching
// its Lease, renews at once, which clears the ping. A ping on a revoked
// Lease is answered the way a heartbeat would: the revocation is honoured
// and cleared too. The watcher stops with its context.
func TestLeasePing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a store and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A heartbeat of a minute: only the pings renew during the test.
	a := &Agent{cfg: Config{Name: "n1", Client: c, HeartbeatInterval: time.Minute, LeaseDuration: 2 * time.Minute},
		log: slog.New(slog.DiscardHandler), nodeUID: "uid-n1"}
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("first renewal: %v", err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.answerPings(wctx) }()
	defer func() {
		wcancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("answerPings still running 10s after its context ended")
		}
	}()

	ping := func(extra map[string]string) {
		t.Helper()
		var l coordinationv1.Lease
		if err := c.Get(ctx, corev1.NamespaceNodeLease, "n1", &l); err != nil {
			t.Fatal(err)
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[LeasePingAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
		for k, v := range extra {
			l.Annotations[k] = v
		}
		before := l.Spec.RenewTime.DeepCopy()
		if err := c.Update(ctx, &l); err != nil {
			t.Fatalf("ping: %v", err)
		}
		pinged, start := l.ResourceVersion, time.Now()
		for {
			var now coordinationv1.Lease
			if err := c.Get(ctx, corev1.NamespaceNodeLease, "n1", &now); err != nil {
				t.Fatal(err)
			}
			if revisionAtLeast(now.ResourceVersion, pinged) && now.ResourceVersion != pinged {
				if len(now.Annotations) != 0 {
					t.Errorf("the answer left annotations %v, want the ping (and any revocation) cleared", now.Annotations)
				}
				if !now.Spec.RenewTime.After(before.Time) {
					t.Errorf("answered without renewing: renewTime %v, before the ping %v", now.Spec.RenewTime, before)
				}
				t.Logf("ping (revision %s) answered in %v (revision %s)", pinged, time.Since(start).Round(time.Millisecond), now.ResourceVersion)
				return
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("ping at revision %s not answered within 5s: Lease %+v", pinged, now)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ping(nil)
	ping(nil)
	ping(map[string]string{LeaseRevokedAnnotation: time.Now().UTC().Format(time.RFC3339Nano)})
}

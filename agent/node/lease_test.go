package node

import (
	"context"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
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

	// Deleted under the agent: the renewal after the failing one recreates it.
	if _, err := c.Delete(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.renewLease(ctx); err == nil {
		t.Fatal("renewing a deleted lease succeeded")
	}
	if err := a.renewLease(ctx); err != nil {
		t.Fatalf("renewal after the lease was deleted: %v", err)
	}
	if l := get(); l.UID == second.UID {
		t.Error("lease not recreated")
	}
}

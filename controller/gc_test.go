package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

func newGC(f *fakeCluster) *GarbageCollector {
	g := NewGarbageCollector(f, nil)
	g.Watch(&corev1.Pod{}, f.cache("Pod"), true, false)
	g.Watch(&appsv1.ReplicaSet{}, f.cache("ReplicaSet"), true, true)
	g.Watch(&appsv1.Deployment{}, f.cache("Deployment"), false, true)
	return g
}

func TestGarbageCollectorDependents(t *testing.T) {
	rs := testRS("web", 1)
	gone := testRS("gone", 1)
	otherUID := testRS("web", 1)
	otherUID.UID = "rs-web-previous-life"
	foreign := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "job-uid", Controller: new(bool)}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		wantDeleted bool
		wantRefs    []types.UID
	}{
		{name: "live owner: kept", pod: testPod("p", ownedBy(rs, "ReplicaSet")), wantRefs: []types.UID{"rs-web"}},
		{name: "owner gone: deleted", pod: testPod("p", ownedBy(gone, "ReplicaSet")), wantDeleted: true},
		{name: "owner name reused by another uid: deleted", pod: testPod("p", ownedBy(otherUID, "ReplicaSet")), wantDeleted: true},
		{name: "unknown owner kind: kept", pod: testPod("p", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{foreign} }), wantRefs: []types.UID{"job-uid"}},
		{name: "one of two owners gone: reference dropped", pod: testPod("p", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{controllerRef(gone, kindReplicaSet), *metav1.NewControllerRef(rs, kindReplicaSet)}
			p.OwnerReferences[1].Controller = new(bool)
		}), wantRefs: []types.UID{"rs-web"}},
		{name: "no owners: kept", pod: testPod("p")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.add(rs, tt.pod)
			g := newGC(f)
			if _, err := g.Reconcile(ctxT(t), "Pod/default/p"); err != nil {
				t.Fatal(err)
			}
			o, present := f.cache("Pod").Get("default/p")
			if present == tt.wantDeleted {
				t.Fatalf("pod present=%v, want deleted=%v (actions %v)", present, tt.wantDeleted, f.takeActions())
			}
			if !present {
				return
			}
			var got []types.UID
			for _, r := range o.(*corev1.Pod).OwnerReferences {
				got = append(got, r.UID)
			}
			if len(got) != len(tt.wantRefs) || (len(got) > 0 && got[0] != tt.wantRefs[0]) {
				t.Errorf("owner refs %v, want %v", got, tt.wantRefs)
			}
		})
	}
}

// An owner missing from the cache but present in the cluster (the cache is
// behind) must not have its dependents collected.
func TestGarbageCollectorConfirmsLive(t *testing.T) {
	f := newFake()
	rs := testRS("web", 1)
	f.add(rs, testPod("p", ownedBy(rs, "ReplicaSet")))
	g := newGC(f)
	g.kinds["ReplicaSet"].cache = snapshot{} // the cache has not seen the ReplicaSet yet
	if _, err := g.Reconcile(ctxT(t), "Pod/default/p"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.cache("Pod").Get("default/p"); !ok {
		t.Fatal("pod collected although its owner exists")
	}
}

func TestGarbageCollectorOrphanAndForeground(t *testing.T) {
	for _, policy := range []string{"Orphan", "Foreground"} {
		t.Run(policy, func(t *testing.T) {
			f := newFake()
			rs := testRS("web", 2)
			f.add(rs, testPod("a", ownedBy(rs, "ReplicaSet")), testPod("b", ownedBy(rs, "ReplicaSet")))
			g := newGC(f)
			if _, err := f.Delete(ctxT(t), rs.DeepCopy(), &client.DeleteOptions{Propagation: policy}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if _, err := g.Reconcile(ctxT(t), "ReplicaSet/default/web"); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := f.cache("ReplicaSet").Get("default/web"); ok {
				t.Errorf("owner still present after its %s finalizer was handled", policy)
			}
			pods := f.pods()
			switch policy {
			case "Orphan":
				if len(pods) != 2 {
					t.Fatalf("%d pods left, want both orphaned", len(pods))
				}
				for _, p := range pods {
					if len(p.OwnerReferences) != 0 {
						t.Errorf("pod %s still references %v", p.Name, p.OwnerReferences)
					}
				}
			case "Foreground":
				if len(pods) != 0 {
					t.Errorf("%d pods left, want none", len(pods))
				}
			}
		})
	}
}

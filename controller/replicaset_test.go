package controller

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var webLabels = map[string]string{"app": "web"}

func testRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("rs-" + name), Generation: 3},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

type podOpt func(*corev1.Pod)

func scheduled(p *corev1.Pod) { p.Spec.NodeName = "n1"; p.Status.Phase = corev1.PodRunning }
func ready(at time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = "n1"
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
	}
}
func ownedBy(rs metav1.Object, kind string) podOpt {
	return func(p *corev1.Pod) {
		gvk := kindReplicaSet
		if kind == kindReplicationController.Kind {
			gvk = kindReplicationController
		}
		p.OwnerReferences = []metav1.OwnerReference{controllerRef(rs, gvk)}
	}
}
func created(at time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(at) }
}
func withLabels(l map[string]string) podOpt { return func(p *corev1.Pod) { p.Labels = l } }

func testPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func newRSController(f *fakeCluster) *ReplicaSetController {
	c := NewReplicaSetController(f.cache("ReplicaSet"), f.cache("Pod"), f, nil, nil)
	c.now = func() time.Time { return f.now }
	return c
}

func verbs(actions []action, verb string) []string {
	var out []string
	for _, a := range actions {
		if a.Verb == verb && a.Kind == "Pod" {
			out = append(out, a.Key)
		}
	}
	return out
}

func TestReplicaSetReconcile(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := testRS("web", 3)
	tests := []struct {
		name        string
		replicas    int32
		pods        []*corev1.Pod
		wantCreates int
		wantDeletes []string
		wantUpdates []string // pod updates: adoption and release
	}{
		{name: "creates from nothing", replicas: 3, wantCreates: 3},
		{name: "steady", replicas: 2, pods: []*corev1.Pod{
			testPod("a", ownedBy(rs, "ReplicaSet")), testPod("b", ownedBy(rs, "ReplicaSet"))}},
		{name: "adopts a matching orphan", replicas: 2, pods: []*corev1.Pod{
			testPod("a", ownedBy(rs, "ReplicaSet")), testPod("orphan")},
			wantUpdates: []string{"default/orphan"}},
		{name: "releases a pod that stopped matching and replaces it", replicas: 2, pods: []*corev1.Pod{
			testPod("a", ownedBy(rs, "ReplicaSet")), testPod("b", ownedBy(rs, "ReplicaSet"), withLabels(map[string]string{"app": "debug"}))},
			wantUpdates: []string{"default/b"}, wantCreates: 1},
		{name: "leaves pods of other controllers alone", replicas: 1, pods: []*corev1.Pod{
			testPod("other", ownedBy(testRS("other", 1), "ReplicaSet"))}, wantCreates: 1},
		{name: "terminal and terminating pods do not count", replicas: 2, pods: []*corev1.Pod{
			testPod("done", ownedBy(rs, "ReplicaSet"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			testPod("going", ownedBy(rs, "ReplicaSet"), func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }),
			testPod("a", ownedBy(rs, "ReplicaSet"))}, wantCreates: 1},
		{name: "scale down: unscheduled, then unready, then newest", replicas: 2, pods: []*corev1.Pod{
			testPod("old-ready", ownedBy(rs, "ReplicaSet"), created(t0), ready(t0)),
			testPod("new-ready", ownedBy(rs, "ReplicaSet"), created(t0.Add(time.Minute)), ready(t0.Add(time.Minute))),
			testPod("unready", ownedBy(rs, "ReplicaSet"), created(t0), scheduled),
			testPod("unscheduled", ownedBy(rs, "ReplicaSet"), created(t0)),
		}, wantDeletes: []string{"default/unscheduled", "default/unready"}},
		{name: "scale down to one keeps the oldest ready", replicas: 1, pods: []*corev1.Pod{
			testPod("p1", ownedBy(rs, "ReplicaSet"), created(t0), ready(t0)),
			testPod("p2", ownedBy(rs, "ReplicaSet"), created(t0.Add(time.Minute)), ready(t0.Add(time.Minute))),
			testPod("p3", ownedBy(rs, "ReplicaSet"), created(t0.Add(2*time.Minute)), ready(t0.Add(2*time.Minute))),
		}, wantDeletes: []string{"default/p3", "default/p2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			r := testRS("web", tt.replicas)
			f.add(r)
			for _, p := range tt.pods {
				f.add(p)
			}
			c := newRSController(f)
			if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			acts := f.takeActions()
			creates := verbs(acts, "create")
			if len(creates) != tt.wantCreates {
				t.Errorf("created %d pods %v, want %d", len(creates), creates, tt.wantCreates)
			}
			for _, k := range creates {
				o, _ := f.cache("Pod").Get(k)
				p := o.(*corev1.Pod)
				if !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
					t.Errorf("pod name %q, want web-xxxxx", p.Name)
				}
				if ref := controllerOf(p); ref == nil || ref.UID != "rs-web" || ref.Kind != "ReplicaSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
					t.Errorf("pod %s controller ref = %+v", p.Name, ref)
				}
				if p.Labels["tier"] != "front" {
					t.Errorf("pod %s labels %v, want the template's", p.Name, p.Labels)
				}
			}
			if got := strings.Join(verbs(acts, "delete"), ","); got != strings.Join(tt.wantDeletes, ",") {
				t.Errorf("deleted %q, want %q", got, strings.Join(tt.wantDeletes, ","))
			}
			if got := strings.Join(verbs(acts, "update"), ","); got != strings.Join(tt.wantUpdates, ",") {
				t.Errorf("updated pods %q, want %q", got, strings.Join(tt.wantUpdates, ","))
			}
			// Adopted pods carry the reference; released ones do not.
			for _, p := range f.pods() {
				owned := isControlledBy(p, "rs-web")
				matches := p.Labels["app"] == "web"
				if p.Name != "other" && owned != matches {
					t.Errorf("pod %s: owned=%v but matches=%v", p.Name, owned, matches)
				}
			}
		})
	}
}

func TestReplicaSetStatus(t *testing.T) {
	f := newFake()
	t0 := f.now
	rs := testRS("web", 4)
	rs.Spec.MinReadySeconds = 10
	f.add(rs,
		testPod("long-ready", ownedBy(rs, "ReplicaSet"), ready(t0.Add(-time.Minute))),
		testPod("just-ready", ownedBy(rs, "ReplicaSet"), ready(t0.Add(-4*time.Second))),
		testPod("running", ownedBy(rs, "ReplicaSet"), scheduled),
		testPod("partial", ownedBy(rs, "ReplicaSet"), withLabels(webLabels)),
	)
	c := newRSController(f)
	res, err := c.Reconcile(ctxT(t), "default/web")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := f.cache("ReplicaSet").Get("default/web")
	got := o.(*appsv1.ReplicaSet).Status
	want := appsv1.ReplicaSetStatus{Replicas: 4, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("status = %+v, want %+v", got, want)
	}
	if res.RequeueAfter != 6*time.Second {
		t.Errorf("requeue after %v, want 6s (when just-ready becomes available)", res.RequeueAfter)
	}
	// Nothing changed: no second status write.
	f.takeActions()
	if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
		t.Fatal(err)
	}
	if a := f.takeActions(); len(a) != 0 {
		t.Errorf("idempotent reconcile wrote %v", a)
	}
}

// A cache that has not yet seen the pods a reconcile created must not make
// the next reconcile create them again.
func TestReplicaSetExpectationsPreventDuplicates(t *testing.T) {
	f := newFake()
	f.add(testRS("web", 3))
	stalePods := snapshotOf(f.cache("Pod")) // empty, and stays so
	exp := NewExpectations(time.Minute, func() time.Time { return f.now })
	c := NewReplicaSetController(f.cache("ReplicaSet"), stalePods, f, exp, nil)
	for i := 0; i < 3; i++ {
		if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(verbs(f.takeActions(), "create")); n != 3 {
		t.Fatalf("three reconciles over a stale cache created %d pods, want 3", n)
	}
	// Once the cache shows them, the expectations are met: nothing more.
	c.pods = f.cache("Pod")
	if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
		t.Fatal(err)
	}
	if n := len(verbs(f.takeActions(), "create")); n != 0 {
		t.Fatalf("created %d more pods once the cache caught up", n)
	}
	// Expectations that are never met lapse after their timeout.
	c.pods = snapshot{}
	c.exp.ExpectCreate("default/web", "default/never")
	f.now = f.now.Add(2 * time.Minute)
	if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
		t.Fatal(err)
	}
	if n := len(verbs(f.takeActions(), "create")); n != 3 {
		t.Fatalf("after the expectations lapsed created %d, want 3 (the cache shows none)", n)
	}
}

func TestReplicationController(t *testing.T) {
	f := newFake()
	two := int32(2)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "legacy", Generation: 1},
		Spec: corev1.ReplicationControllerSpec{Replicas: &two, Selector: webLabels, Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: webLabels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}},
	}
	f.add(rc, testPod("orphan"))
	c := NewReplicationControllerController(f.cache("ReplicationController"), f.cache("Pod"), f, nil, nil)
	if _, err := c.Reconcile(ctxT(t), "default/legacy"); err != nil {
		t.Fatal(err)
	}
	pods := f.pods()
	if len(pods) != 2 {
		t.Fatalf("%d pods, want 2", len(pods))
	}
	for _, p := range pods {
		if ref := controllerOf(p); ref == nil || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" {
			t.Errorf("pod %s controller = %+v, want the ReplicationController", p.Name, ref)
		}
	}
	// Status counts what the cache shows: the new pod from the next reconcile on.
	if _, err := c.Reconcile(ctxT(t), "default/legacy"); err != nil {
		t.Fatal(err)
	}
	o, _ := f.cache("ReplicationController").Get("default/legacy")
	if st := o.(*corev1.ReplicationController).Status; st.Replicas != 2 || st.ObservedGeneration != 1 {
		t.Errorf("status %+v", st)
	}
}

// Property: from random pod states, one reconcile leaves exactly
// spec.replicas active owned pods, and a scale-down deletes a prefix of the
// deletion ranking (no pod deleted while a cheaper one is kept).
func TestReplicaSetScalingProperty(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for iter := 0; iter < 300; iter++ {
		f := newFake()
		replicas := int32(rng.Intn(8))
		rs := testRS("web", replicas)
		f.add(rs)
		n := rng.Intn(12)
		for i := 0; i < n; i++ {
			var opts []podOpt
			switch rng.Intn(3) {
			case 0: // orphan: adopted
			case 1, 2:
				opts = append(opts, ownedBy(rs, "ReplicaSet"))
			}
			opts = append(opts, created(t0.Add(time.Duration(rng.Intn(100))*time.Second)))
			switch rng.Intn(6) {
			case 0: // unscheduled
			case 1:
				opts = append(opts, scheduled)
			case 2, 3:
				opts = append(opts, ready(t0.Add(time.Duration(rng.Intn(100))*time.Second)))
			case 4:
				opts = append(opts, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })
			case 5:
				opts = append(opts, func(p *corev1.Pod) {
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: int32(rng.Intn(3))}}
				}, scheduled)
			}
			if rng.Intn(10) == 0 {
				opts = append(opts, withLabels(map[string]string{"app": "other"}))
			}
			f.add(testPod(fmt.Sprintf("p%02d", i), opts...))
		}
		c := newRSController(f)
		before := map[string]*corev1.Pod{}
		for _, p := range f.pods() {
			before[p.Name] = p
		}
		if _, err := c.Reconcile(ctxT(t), "default/web"); err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		var active []*corev1.Pod
		for _, p := range f.pods() {
			if isControlledBy(p, rs.UID) && isActive(p) {
				active = append(active, p)
			}
		}
		if len(active) != int(replicas) {
			t.Fatalf("iter %d (seed %d): %d active owned pods, want %d", iter, seed, len(active), replicas)
		}
		deleted := map[string]bool{}
		for _, k := range verbs(f.takeActions(), "delete") {
			deleted[strings.TrimPrefix(k, "default/")] = true
		}
		for d := range deleted {
			for _, kept := range active {
				if deleteFirst(before[kept.Name], before[d]) {
					t.Fatalf("iter %d (seed %d): deleted %s but kept %s, which ranks first for deletion", iter, seed, d, kept.Name)
				}
			}
		}
	}
}

package controller

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// fakeCluster is an in-memory cluster for reconcile tests: a Writer and
// Reader that applies writes at once (with resourceVersion checks) and
// records every action, and Caches that read it live.
type fakeCluster struct {
	mu      sync.Mutex
	objs    map[string]map[string]runtime.Object // kind → key → object
	rv      int64
	uid     int
	now     time.Time
	actions []action
}

type action struct {
	Verb, Kind, Key string
}

func (a action) String() string { return a.Verb + " " + a.Kind + " " + a.Key }

func newFake() *fakeCluster {
	return &fakeCluster{objs: map[string]map[string]runtime.Object{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func kindName(obj runtime.Object) string {
	gvk, err := client.KindOf(obj)
	if err != nil {
		panic(err)
	}
	return gvk.Kind
}

// add stores obj as is (test setup), filling uid and resourceVersion.
func (f *fakeCluster) add(objs ...runtime.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, obj := range objs {
		m, _ := meta.Accessor(obj)
		if m.GetUID() == "" {
			f.uid++
			m.SetUID(types.UID(fmt.Sprintf("uid-%d", f.uid)))
		}
		f.rv++
		m.SetResourceVersion(strconv.FormatInt(f.rv, 10))
		f.store(obj.DeepCopyObject())
	}
}

func (f *fakeCluster) store(obj runtime.Object) {
	k := kindName(obj)
	if f.objs[k] == nil {
		f.objs[k] = map[string]runtime.Object{}
	}
	f.objs[k][client.KeyOf(obj)] = obj
}

func (f *fakeCluster) record(verb string, obj runtime.Object) {
	f.actions = append(f.actions, action{verb, kindName(obj), client.KeyOf(obj)})
}

// takeActions returns and clears the recorded actions.
func (f *fakeCluster) takeActions() []action {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.actions
	f.actions = nil
	return a
}

func notFound(obj runtime.Object) error {
	m, _ := meta.Accessor(obj)
	return client.NewNotFound(schema.GroupResource{Resource: kindName(obj)}, m.GetName())
}

func (f *fakeCluster) Create(_ context.Context, obj runtime.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := meta.Accessor(obj)
	if _, ok := f.objs[kindName(obj)][client.KeyOf(obj)]; ok {
		return client.NewAlreadyExists(schema.GroupResource{Resource: kindName(obj)}, m.GetName())
	}
	f.uid++
	f.rv++
	m.SetUID(types.UID(fmt.Sprintf("uid-%d", f.uid)))
	m.SetResourceVersion(strconv.FormatInt(f.rv, 10))
	f.now = f.now.Add(time.Second) // creation order is visible in timestamps
	m.SetCreationTimestamp(metav1.NewTime(f.now))
	m.SetGeneration(1)
	if p, ok := obj.(*corev1.Pod); ok && p.Status.Phase == "" {
		p.Status.Phase = corev1.PodPending
	}
	f.store(obj.DeepCopyObject())
	f.record("create", obj)
	return nil
}

func (f *fakeCluster) current(obj runtime.Object) (runtime.Object, error) {
	old, ok := f.objs[kindName(obj)][client.KeyOf(obj)]
	if !ok {
		return nil, notFound(obj)
	}
	m, _ := meta.Accessor(obj)
	om, _ := meta.Accessor(old)
	if rv := m.GetResourceVersion(); rv != "" && rv != om.GetResourceVersion() {
		return nil, client.NewConflict(schema.GroupResource{Resource: kindName(obj)}, m.GetName(), client.StaleResourceVersion)
	}
	return old, nil
}

// copyStatus puts from's status into to (same kind).
func copyStatus(to, from runtime.Object) {
	switch t := to.(type) {
	case *corev1.Pod:
		t.Status = *from.(*corev1.Pod).Status.DeepCopy()
	case *appsv1.ReplicaSet:
		t.Status = *from.(*appsv1.ReplicaSet).Status.DeepCopy()
	case *appsv1.Deployment:
		t.Status = *from.(*appsv1.Deployment).Status.DeepCopy()
	case *corev1.ReplicationController:
		t.Status = *from.(*corev1.ReplicationController).Status.DeepCopy()
	}
}

func (f *fakeCluster) write(verb string, obj runtime.Object, status bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := f.current(obj)
	if err != nil {
		return err
	}
	var next runtime.Object
	if status {
		next = old.DeepCopyObject()
		copyStatus(next, obj)
	} else {
		next = obj.DeepCopyObject()
		copyStatus(next, old)
		om, _ := meta.Accessor(old)
		nm, _ := meta.Accessor(next)
		nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
		if spec := func(o runtime.Object) any {
			switch x := o.(type) {
			case *appsv1.ReplicaSet:
				return x.Spec
			case *appsv1.Deployment:
				return x.Spec
			}
			return nil
		}; fmt.Sprint(spec(old)) != fmt.Sprint(spec(next)) {
			nm.SetGeneration(om.GetGeneration() + 1)
		}
	}
	f.rv++
	nm, _ := meta.Accessor(next)
	nm.SetResourceVersion(strconv.FormatInt(f.rv, 10))
	if nm.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) == 0 {
		delete(f.objs[kindName(obj)], client.KeyOf(obj))
	} else {
		f.store(next)
	}
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(nm.GetResourceVersion())
	m.SetGeneration(nm.GetGeneration())
	f.record(verb, obj)
	return nil
}

func (f *fakeCluster) Update(_ context.Context, obj runtime.Object) error {
	return f.write("update", obj, false)
}

func (f *fakeCluster) UpdateStatus(_ context.Context, obj runtime.Object) error {
	return f.write("status", obj, true)
}

func (f *fakeCluster) Delete(_ context.Context, obj runtime.Object, opts *client.DeleteOptions) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.objs[kindName(obj)][client.KeyOf(obj)]
	if !ok {
		return false, notFound(obj)
	}
	om, _ := meta.Accessor(old)
	if opts != nil && opts.PreconditionUID != "" && opts.PreconditionUID != string(om.GetUID()) {
		return false, client.NewConflict(schema.GroupResource{Resource: kindName(obj)}, om.GetName(), "uid precondition")
	}
	f.record("delete", obj)
	var fin []string
	if opts != nil && opts.Propagation == "Orphan" {
		fin = append(fin, FinalizerOrphan)
	}
	if opts != nil && opts.Propagation == "Foreground" {
		fin = append(fin, FinalizerForeground)
	}
	if len(fin) == 0 && len(om.GetFinalizers()) == 0 {
		delete(f.objs[kindName(obj)], client.KeyOf(obj))
		return false, nil
	}
	cp := old.DeepCopyObject()
	cm, _ := meta.Accessor(cp)
	now := metav1.NewTime(f.now)
	cm.SetDeletionTimestamp(&now)
	cm.SetFinalizers(append(cm.GetFinalizers(), fin...))
	f.rv++
	cm.SetResourceVersion(strconv.FormatInt(f.rv, 10))
	f.store(cp)
	return true, nil
}

func (f *fakeCluster) Get(_ context.Context, ns, name string, obj runtime.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	o, ok := f.objs[kindName(obj)][key]
	if !ok {
		return client.NewNotFound(schema.GroupResource{Resource: kindName(obj)}, name)
	}
	// Copy into obj through the scheme-free route: all our kinds are
	// pointers to structs.
	switch t := obj.(type) {
	case *corev1.Pod:
		*t = *o.(*corev1.Pod).DeepCopy()
	case *appsv1.ReplicaSet:
		*t = *o.(*appsv1.ReplicaSet).DeepCopy()
	case *appsv1.Deployment:
		*t = *o.(*appsv1.Deployment).DeepCopy()
	case *corev1.ReplicationController:
		*t = *o.(*corev1.ReplicationController).DeepCopy()
	case *coordinationv1.Lease:
		*t = *o.(*coordinationv1.Lease).DeepCopy()
	default:
		return fmt.Errorf("fake Get: %T", obj)
	}
	return nil
}

// cache is a live Cache of one kind of f.
func (f *fakeCluster) cache(kind string) Cache { return fakeCache{f, kind} }

type fakeCache struct {
	f    *fakeCluster
	kind string
}

func (c fakeCache) Get(key string) (runtime.Object, bool) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	o, ok := c.f.objs[c.kind][key]
	return o, ok
}

func (c fakeCache) List(sel labels.Selector) []runtime.Object {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	var keys []string
	for k := range c.f.objs[c.kind] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []runtime.Object
	for _, k := range keys {
		o := c.f.objs[c.kind][k]
		m, _ := meta.Accessor(o)
		if sel == nil || sel.Matches(labels.Set(m.GetLabels())) {
			out = append(out, o)
		}
	}
	return out
}

// snapshot is a frozen copy of a cache: a cache that lags behind writes.
type snapshot map[string]runtime.Object

func snapshotOf(c Cache) snapshot {
	s := snapshot{}
	for _, o := range c.List(nil) {
		s[client.KeyOf(o)] = o
	}
	return s
}

func (s snapshot) Get(key string) (runtime.Object, bool) { o, ok := s[key]; return o, ok }
func (s snapshot) List(sel labels.Selector) []runtime.Object {
	var keys []string
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []runtime.Object
	for _, k := range keys {
		m, _ := meta.Accessor(s[k])
		if sel == nil || sel.Matches(labels.Set(m.GetLabels())) {
			out = append(out, s[k])
		}
	}
	return out
}

// pods returns f's pods, sorted by key.
func (f *fakeCluster) pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range f.cache("Pod").List(nil) {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

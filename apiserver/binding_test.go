package apiserver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// TestBindBatch: one Bind call whose bindings fail for every reason a
// binding can, beside two that succeed; each failure is its own, the
// successes are written.
func TestBindBatch(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	pods := map[string]*corev1.Pod{}
	for _, name := range []string{"free", "taken", "stale", "gone", "dying", "exact", "theirs", "future"} {
		p := pod("default", name, map[string]string{"app": "web"})
		if name == "dying" {
			p.Finalizers = []string{"test.skiff.dev/hold"}
		}
		if err := c.Create(ctx, p); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		pods[name] = p
	}
	// taken: bound by a single-pod Update, as before Bind existed.
	taken := pods["taken"].DeepCopy()
	taken.Spec.NodeName = "other"
	if err := c.Update(ctx, taken); err != nil {
		t.Fatalf("binding taken with Update: %v", err)
	}
	// stale: changed after the version the binding names.
	staleRV := pods["stale"].ResourceVersion
	changed := pods["stale"].DeepCopy()
	changed.Labels["v"] = "2"
	if err := c.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, pods["gone"], nil); err != nil {
		t.Fatal(err)
	}
	if pending, err := c.Delete(ctx, pods["dying"], nil); err != nil || !pending {
		t.Fatalf("delete dying: pending %v, err %v; want held by its finalizer", pending, err)
	}
	t.Cleanup(func() {
		var p corev1.Pod
		if err := c.Get(ctx, "default", "dying", &p); err == nil {
			p.Finalizers = nil
			_ = c.Update(ctx, &p)
		}
	})

	bindings := []client.PodBinding{
		{Namespace: "default", Name: "free", NodeName: "n1"},
		{Namespace: "default", Name: "taken", NodeName: "n1"},
		{Namespace: "default", Name: "stale", ResourceVersion: staleRV, NodeName: "n1"},
		{Namespace: "default", Name: "gone", NodeName: "n1"},
		{Namespace: "default", Name: "dying", NodeName: "n1"},
		{Namespace: "default", Name: "exact", UID: pods["exact"].UID, ResourceVersion: pods["exact"].ResourceVersion, NodeName: "n2"},
		{Namespace: "default", Name: "free", NodeName: "n3"},
		{Namespace: "default", Name: "exact", NodeName: ""},
		{Namespace: "default", Name: "exact", NodeName: "Not_A_Name"},
		{Namespace: "default", Name: "exact", UID: "someone-else", NodeName: "n2"},
		{Namespace: "default", Name: "theirs", UID: "someone-else", NodeName: "n2"},
		// A version the pod never had: its serializable read looks stale,
		// the linearizable one says Conflict.
		{Namespace: "default", Name: "future", ResourceVersion: "1000000", NodeName: "n2"},
	}
	errs, err := c.Bind(ctx, bindings)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	want := []struct {
		check func(error) bool
		what  string
	}{
		{func(err error) bool { return err == nil }, "success"},
		{client.IsConflict, "Conflict (already assigned)"},
		{client.IsConflict, "Conflict (stale resourceVersion)"},
		{client.IsNotFound, "NotFound"},
		{client.IsConflict, "Conflict (being deleted)"},
		{func(err error) bool { return err == nil }, "success"},
		{client.IsBadRequest, "BadRequest (pod twice in one request)"},
		{client.IsBadRequest, "BadRequest (no node)"},
		{client.IsBadRequest, "BadRequest (invalid node name)"},
		{client.IsBadRequest, "BadRequest (pod twice in one request)"},
		{client.IsConflict, "Conflict (another pod's uid)"},
		{client.IsConflict, "Conflict (a resourceVersion the pod never had)"},
	}
	for i, w := range want {
		if !w.check(errs[i]) {
			t.Errorf("bindings[%d] (%s -> %q): got %v, want %s", i, bindings[i].Name, bindings[i].NodeName, errs[i], w.what)
		}
	}
	if msg := fmt.Sprint(errs[1]); msg != `Operation cannot be fulfilled on pods "taken": pod taken is already assigned to node "other"` {
		t.Errorf("already-assigned message = %q", msg)
	}

	for name, node := range map[string]string{"free": "n1", "exact": "n2", "taken": "other", "stale": "", "dying": "", "theirs": "", "future": ""} {
		var p corev1.Pod
		if err := c.Get(ctx, "default", name, &p); err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if p.Spec.NodeName != node {
			t.Errorf("%s: spec.nodeName = %q, want %q", name, p.Spec.NodeName, node)
		}
		if name == "free" || name == "exact" {
			if p.Generation != 2 {
				t.Errorf("%s: generation %d after binding, want 2 (as Update counts a spec change)", name, p.Generation)
			}
			var cond *corev1.PodCondition
			for i := range p.Status.Conditions {
				if p.Status.Conditions[i].Type == corev1.PodScheduled {
					cond = &p.Status.Conditions[i]
				}
			}
			if cond == nil || cond.Status != corev1.ConditionTrue {
				t.Errorf("%s: PodScheduled condition %+v, want True", name, cond)
			}
		}
	}
}

// TestBindRacingSchedulers: two callers bind the same pods to different
// nodes at once (two schedulers overlapping across a leadership change).
// Each pod ends on exactly one node, and exactly one of the two bindings
// of each pod reports success — the one whose node the pod is on.
func TestBindRacingSchedulers(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	const n = 150 // more than one read chunk (128)
	var a, b []client.PodBinding
	for i := range n {
		p := pod("default", fmt.Sprintf("p-%03d", i), nil)
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		a = append(a, client.PodBinding{Namespace: "default", Name: p.Name, ResourceVersion: p.ResourceVersion, NodeName: "node-a"})
		b = append(b, client.PodBinding{Namespace: "default", Name: p.Name, UID: p.UID, NodeName: "node-b"})
	}
	var wg sync.WaitGroup
	var errsA, errsB []error
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); errsA, errA = c.Bind(ctx, a) }()
	go func() { defer wg.Done(); errsB, errB = c.Bind(ctx, b) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("Bind calls failed: %v, %v", errA, errB)
	}
	for i := range n {
		var p corev1.Pod
		if err := c.Get(ctx, "default", a[i].Name, &p); err != nil {
			t.Fatal(err)
		}
		okA, okB := errsA[i] == nil, errsB[i] == nil
		if okA == okB {
			t.Errorf("%s: binding to node-a err %v, to node-b err %v; want exactly one success", p.Name, errsA[i], errsB[i])
			continue
		}
		winner, loserErr := "node-a", errsB[i]
		if okB {
			winner, loserErr = "node-b", errsA[i]
		}
		if p.Spec.NodeName != winner {
			t.Errorf("%s: on %q, but the binding that succeeded was to %s", p.Name, p.Spec.NodeName, winner)
		}
		if !client.IsConflict(loserErr) {
			t.Errorf("%s: the losing binding failed with %v, want a Conflict", p.Name, loserErr)
		}
	}
}

// TestBindEachPodItsOwnRevision: a watcher sees every pod of a batch bound,
// each at a distinct resourceVersion (one store revision per pod, so a
// watch resumed after any of them misses none of the others).
func TestBindEachPodItsOwnRevision(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	var bs []client.PodBinding
	var last string
	for i := range 20 {
		p := pod("default", fmt.Sprintf("w-%02d", i), nil)
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		last = p.ResourceVersion
		bs = append(bs, client.PodBinding{Namespace: "default", Name: p.Name, NodeName: "n1"})
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, watchErr, err := c.Watch(wctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: last})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := c.Bind(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("bindings[%d]: %v", i, e)
		}
	}
	seen := map[string]string{} // resourceVersion -> pod
	for len(seen) < len(bs) {
		select {
		case <-ctx.Done():
			t.Fatalf("saw %d of %d pods bound before the deadline", len(seen), len(bs))
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended after %d of %d pods: %v", len(seen), len(bs), watchErr())
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || p.Spec.NodeName == "" {
				continue
			}
			if other, dup := seen[p.ResourceVersion]; dup {
				t.Fatalf("pods %s and %s bound at the same resourceVersion %s", other, p.Name, p.ResourceVersion)
			}
			seen[p.ResourceVersion] = p.Name
		}
	}
}

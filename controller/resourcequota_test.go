package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func quotaResources(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// startQuotaController runs the ResourceQuota controller alone over c,
// until the test ends.
func startQuotaController(t *testing.T, c *client.Client, recheck time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	quotas, err := client.NewInformer(c, metav1.NamespaceAll, &corev1.ResourceQuota{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := client.NewInformer(c, metav1.NamespaceAll, &corev1.Pod{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rc := NewResourceQuotaController(quotas, c, ClientLister{C: c}, testLogger(t))
	rc.Recheck = recheck
	l := newLoop(rc, discardLogger())
	rc.register(l.queue, quotas, pods)
	for _, i := range []*client.Informer{quotas, pods} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
	}
	for _, i := range []*client.Informer{quotas, pods} {
		if !i.WaitForSync(ctx) {
			t.Fatal("caches did not sync")
		}
	}
	l.start(ctx, 2, &wg)
	wg.Add(1)
	go func() { defer wg.Done(); <-ctx.Done(); l.queue.ShutDown() }()
}

// quotaUsedIs is nil once the quota's status.used is exactly want (by
// value) and status.hard is its spec.hard.
func quotaUsedIs(ctx context.Context, c *client.Client, ns, name string, want corev1.ResourceList) error {
	q := &corev1.ResourceQuota{}
	if err := c.Get(ctx, ns, name, q); err != nil {
		return err
	}
	if !sameResources(q.Status.Used, want) {
		return fmt.Errorf("status.used = %v, want %v", q.Status.Used, want)
	}
	if !sameResources(q.Status.Hard, q.Spec.Hard) {
		return fmt.Errorf("status.hard = %v, want spec.hard %v", q.Status.Hard, q.Spec.Hard)
	}
	return nil
}

func TestResourceQuotaControllerUsedStatus(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	mkPod := func(name, cpu string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: quotaResources("cpu", cpu)}}}}}
	}
	// Objects that exist before the quota and the controller.
	for _, p := range []*corev1.Pod{mkPod("a", "100m"), mkPod("b", "200m")} {
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "cfg"}}); err != nil {
		t.Fatal(err)
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "q1"},
		Spec: corev1.ResourceQuotaSpec{Hard: quotaResources("pods", "10", "requests.cpu", "2", "count/configmaps", "5", "services", "3")}}
	if err := c.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	startQuotaController(t, c, 200*time.Millisecond)

	want := quotaResources("pods", "2", "requests.cpu", "300m", "count/configmaps", "1", "services", "0")
	eventually(t, 10*time.Second, "initial usage", func() error { return quotaUsedIs(ctx, c, "team", "q1", want) })

	// Converged: the controller does not write again and again.
	first := &corev1.ResourceQuota{}
	if err := c.Get(ctx, "team", "q1", first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // several Recheck periods: nothing may change
	again := &corev1.ResourceQuota{}
	if err := c.Get(ctx, "team", "q1", again); err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != first.ResourceVersion {
		t.Errorf("quota rewritten with nothing changed: resourceVersion %s -> %s", first.ResourceVersion, again.ResourceVersion)
	}

	// A create is charged by admission; deletes and finished pods are
	// given back by the controller.
	if err := c.Create(ctx, mkPod("c", "1")); err != nil {
		t.Fatal(err)
	}
	want = quotaResources("pods", "3", "requests.cpu", "1300m", "count/configmaps", "1", "services", "0")
	eventually(t, 10*time.Second, "usage after a create", func() error { return quotaUsedIs(ctx, c, "team", "q1", want) })
	if _, err := c.Delete(ctx, mkPod("a", "100m"), nil); err != nil {
		t.Fatal(err)
	}
	done := &corev1.Pod{}
	if err := c.Get(ctx, "team", "b", done); err != nil {
		t.Fatal(err)
	}
	done.Status.Phase = corev1.PodSucceeded
	if err := c.UpdateStatus(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "cfg"}}, nil); err != nil {
		t.Fatal(err)
	}
	want = quotaResources("pods", "1", "requests.cpu", "1", "count/configmaps", "0", "services", "0")
	eventually(t, 10*time.Second, "usage after deletes", func() error { return quotaUsedIs(ctx, c, "team", "q1", want) })

	// A changed spec.hard shows in status.hard.
	cur := &corev1.ResourceQuota{}
	if err := c.Get(ctx, "team", "q1", cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Hard = quotaResources("pods", "4")
	if err := c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "usage after a spec change", func() error {
		return quotaUsedIs(ctx, c, "team", "q1", quotaResources("pods", "1"))
	})
}

// Manager.Run runs the ResourceQuota controller: a quota created while it
// runs gets its status.
func TestManagerRunsResourceQuotaController(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- NewManager(c, Options{Resync: -1, Logger: testLogger(t)}).Run(mgrCtx) }()
	defer func() { stop(); <-done }()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "q1"},
		Spec: corev1.ResourceQuotaSpec{Hard: quotaResources("pods", "3", "configmaps", "2")}}
	if err := c.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "quota status from the manager", func() error {
		return quotaUsedIs(ctx, c, "default", "q1", quotaResources("pods", "0", "configmaps", "0"))
	})
}

package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// recorder records handler calls as "ADD ns/name" lines.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.log = append(r.log, s); r.mu.Unlock() }

func (r *recorder) handler() client.Handler {
	return client.Handler{
		OnAdd:    func(o runtime.Object) { r.add("ADD " + client.KeyOf(o)) },
		OnUpdate: func(_, o runtime.Object) { r.add("UPDATE " + client.KeyOf(o)) },
		OnDelete: func(o runtime.Object) { r.add("DELETE " + client.KeyOf(o)) },
	}
}

func (r *recorder) waitFor(t *testing.T, line string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, l := range r.log {
			if l == line {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("handler never saw %q; saw %v", line, r.log)
}

func cm(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"k": "v"}}
}

func TestInformerFollowsChangesAcrossRestartAndCompaction(t *testing.T) {
	endpoints := apiservertest.PrivateStore(t)
	srv := apiservertest.Start(t, endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := srv.Client()
	if err := c.Create(ctx, cm("early")); err != nil {
		t.Fatal(err)
	}

	inf, err := client.NewInformer(c, "default", &corev1.ConfigMap{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	inf.AddHandler(rec.handler())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = inf.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	if !inf.WaitForSync(ctx) {
		t.Fatal("informer never synced")
	}
	rec.waitFor(t, "ADD default/early")

	if err := c.Create(ctx, cm("a")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "ADD default/a")
	a := &corev1.ConfigMap{}
	if err := c.Get(ctx, "default", "a", a); err != nil {
		t.Fatal(err)
	}
	a.Data["k"] = "w"
	if err := c.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "UPDATE default/a")
	if o, ok := inf.Get("default/a"); !ok || o.(*corev1.ConfigMap).Data["k"] != "w" {
		t.Fatalf("cache has %v", o)
	}

	// The API server restarts on the same address; changes made while it
	// was down (through another server) reach the informer in order.
	srv.Stop()
	other := apiservertest.Start(t, endpoints)
	oc := other.Client()
	if _, err := oc.Delete(ctx, cm("early"), nil); err != nil {
		t.Fatal(err)
	}
	if err := oc.Create(ctx, cm("during")); err != nil {
		t.Fatal(err)
	}
	srv = srv.Restart()
	rec.waitFor(t, "DELETE default/early")
	rec.waitFor(t, "ADD default/during")

	// History is compacted past the informer's version while it is not
	// running: when it runs again it relists and still notices the
	// deletion.
	stop()
	<-done
	rc := srv.Client()
	if _, err := rc.Delete(ctx, cm("a"), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := rc.Create(ctx, cm(fmt.Sprintf("late%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	etcd, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	resp, err := etcd.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	done = make(chan struct{})
	go func() { _ = inf.Run(runCtx); close(done) }()
	rec.waitFor(t, "DELETE default/a")
	rec.waitFor(t, "ADD default/late2")
	if _, ok := inf.Get("default/a"); ok {
		t.Error("deleted object still cached after relist")
	}
	if n := len(inf.List(nil)); n != 4 {
		t.Errorf("cache holds %d objects, want 4 (during, late0-2)", n)
	}
	stop()
	<-done
}

func TestInformerFactorySharesInformers(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Create(ctx, cm("x")); err != nil {
		t.Fatal(err)
	}
	f := client.NewInformerFactory(c, 0)
	a, err := f.For(&corev1.ConfigMap{}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.For(&corev1.ConfigMap{}, "")
	if a != b {
		t.Fatal("two informers for one kind")
	}
	pods, _ := f.For(&corev1.Pod{}, "")
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	f.Start(runCtx)
	if err := f.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("default/x"); !ok {
		t.Error("synced configmap informer lacks default/x")
	}
	if n := len(pods.List(nil)); n != 0 {
		t.Errorf("pod informer has %d pods", n)
	}
	// An informer asked for after Start runs too.
	late, _ := f.For(&corev1.Namespace{}, "")
	if !late.WaitForSync(ctx) {
		t.Fatal("informer created after Start never synced")
	}
	if _, ok := late.Get("kube-system"); !ok {
		t.Error("namespace informer lacks kube-system")
	}
}

func TestEventRecorderAggregates(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	rec := client.NewEventRecorder(c, "default-scheduler", "")
	for i := 0; i < 3; i++ {
		if err := rec.Event(ctx, p, corev1.EventTypeWarning, "FailedScheduling", "0/0 nodes are available"); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Event(ctx, p, corev1.EventTypeNormal, "Scheduled", "Successfully assigned default/web to n1"); err != nil {
		t.Fatal(err)
	}
	evs := &corev1.EventList{}
	if err := c.List(ctx, "default", evs, client.ListOptions{FieldSelector: "involvedObject.name=web"}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{}
	for _, ev := range evs.Items {
		counts[ev.Reason] += ev.Count
		if ev.InvolvedObject.UID != p.UID || ev.Source.Component != "default-scheduler" {
			t.Errorf("event %s: involved %+v source %+v", ev.Name, ev.InvolvedObject, ev.Source)
		}
	}
	if len(evs.Items) != 2 || counts["FailedScheduling"] != 3 || counts["Scheduled"] != 1 {
		t.Errorf("%d events, counts %v; want 2 events, FailedScheduling x3 and Scheduled x1", len(evs.Items), counts)
	}
}

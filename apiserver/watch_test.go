package apiserver_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// next reads one non-bookmark event, failing the test after a deadline.
func next(t *testing.T, ch <-chan client.Event, errf func() error) client.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed: %v", errf())
			}
			if ev.Type == client.Bookmark {
				continue
			}
			return ev
		case <-timeout:
			t.Fatalf("no watch event within 10s")
		}
	}
}

func checkEvent(t *testing.T, ev client.Event, typ client.EventType, name string) {
	t.Helper()
	m := ev.Object.(metav1.Object)
	if ev.Type != typ || m.GetName() != name {
		t.Fatalf("event = %s %s, want %s %s", ev.Type, m.GetName(), typ, name)
	}
}

func TestWatchResumesAcrossRestart(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	if err := c.Create(ctx, pod("default", "before", nil)); err != nil {
		t.Fatal(err)
	}
	list := &corev1.PodList{}
	if err := c.List(ctx, "default", list, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, errf, err := c.Watch(wctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, pod("default", "a", nil)); err != nil {
		t.Fatal(err)
	}
	ev := next(t, ch, errf)
	checkEvent(t, ev, client.Added, "a")
	lastRV := ev.Object.(metav1.Object).GetResourceVersion()
	cancel()

	// The server goes away; the world changes meanwhile (through another
	// server on the same store); the first comes back.
	srv.Stop()
	other := apiservertest.Start(t, srv.Config.StoreEndpoints)
	oc := other.Client()
	p := &corev1.Pod{}
	if err := oc.Get(ctx, "default", "a", p); err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"x": "y"}
	if err := oc.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := oc.Create(ctx, pod("default", "b", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Delete(ctx, pod("default", "before", nil), nil); err != nil {
		t.Fatal(err)
	}
	srv2 := srv.Restart()
	c2 := srv2.Client()
	ch, errf, err = c2.Watch(ctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: lastRV, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	checkEvent(t, next(t, ch, errf), client.Modified, "a")
	checkEvent(t, next(t, ch, errf), client.Added, "b")
	ev = next(t, ch, errf)
	checkEvent(t, ev, client.Deleted, "before")
	// Revisions only go forward.
	if client.ResourceVersionOf(ev.Object) <= client.ResourceVersionOf(p) {
		t.Errorf("DELETED at %d not after the update at %d", client.ResourceVersionOf(ev.Object), client.ResourceVersionOf(p))
	}
	// A bookmark arrives on an idle watch.
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed: %v", errf())
			}
			got = ev.Type == client.Bookmark
			if got && client.ResourceVersionOf(ev.Object) < client.ResourceVersionOf(p) {
				t.Errorf("bookmark at %d, behind the last event", client.ResourceVersionOf(ev.Object))
			}
		case <-deadline:
			t.Fatal("no bookmark within 10s")
		}
	}
}

func TestWatchSelectorsAndInitialEvents(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	if err := c.Create(ctx, pod("default", "one", map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, pod("default", "two", map[string]string{"app": "db"})); err != nil {
		t.Fatal(err)
	}
	ch, errf, err := c.Watch(ctx, "", &corev1.Pod{}, client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	checkEvent(t, next(t, ch, errf), client.Added, "one")
	// two starts matching: ADDED; one stops matching: DELETED.
	p := &corev1.Pod{}
	if err := c.Get(ctx, "default", "two", p); err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "web"
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkEvent(t, next(t, ch, errf), client.Added, "two")
	if err := c.Get(ctx, "default", "one", p); err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "other"
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkEvent(t, next(t, ch, errf), client.Deleted, "one")

	// Field selectors on spec.nodeName, status.phase.
	bound := pod("default", "bound", nil)
	bound.Spec.NodeName = "n1"
	if err := c.Create(ctx, bound); err != nil {
		t.Fatal(err)
	}
	list := &corev1.PodList{}
	if err := c.List(ctx, "", list, client.ListOptions{FieldSelector: "spec.nodeName=n1,status.phase=Pending"}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "bound" {
		t.Errorf("field selector list: %d items", len(list.Items))
	}
	if err := c.List(ctx, "", list, client.ListOptions{FieldSelector: "spec.bogus=1"}); !client.IsBadRequest(err) {
		t.Errorf("unknown field selector: got %v, want BadRequest", err)
	}
}

func TestListPaging(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	for i := 0; i < 7; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("cm%d", i),
			Labels: map[string]string{"even": strconv.FormatBool(i%2 == 0)}}}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	opts := client.ListOptions{Limit: 3}
	rv := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		list := &corev1.ConfigMapList{}
		if err := c.List(ctx, "default", list, opts); err != nil {
			t.Fatal(err)
		}
		if rv == "" {
			rv = list.ResourceVersion
			// A write after the first page is not seen by the next ones.
			if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cm99"}}); err != nil {
				t.Fatal(err)
			}
		} else if list.ResourceVersion != rv {
			t.Errorf("page at rv %s, first page at %s", list.ResourceVersion, rv)
		}
		for _, it := range list.Items {
			names = append(names, it.Name)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	if fmt.Sprint(names) != "[cm0 cm1 cm2 cm3 cm4 cm5 cm6]" {
		t.Errorf("paged names = %v", names)
	}
	list := &corev1.ConfigMapList{}
	if err := c.List(ctx, "default", list, client.ListOptions{LabelSelector: "even=true", Limit: 2}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Name != "cm0" || list.Items[1].Name != "cm2" || list.Continue == "" {
		t.Errorf("selective page: %d items, continue %q", len(list.Items), list.Continue)
	}
}

func TestWatchTooOldResourceVersion(t *testing.T) {
	endpoints := apiservertest.PrivateStore(t) // compaction must not disturb other tests
	srv := apiservertest.Start(t, endpoints)
	c := srv.Client()
	ctx := ctxT(t)
	first := pod("default", "p0", nil)
	if err := c.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		if err := c.Create(ctx, pod("default", fmt.Sprintf("p%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	etcd, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	st, err := etcd.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	ch, errf, err := c.Watch(ctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("got event %s from a compacted revision", ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch from a compacted revision neither failed nor closed")
	}
	if err := errf(); !client.IsExpired(err) {
		t.Fatalf("watch from compacted rv: got %v, want Expired", err)
	}
	if se := client.FromError(errf()); se.Status.Code != 410 {
		t.Errorf("expired code = %d, want 410", se.Status.Code)
	}
}

func TestCompactorExpiresOldVersions(t *testing.T) {
	endpoints := apiservertest.PrivateStore(t)
	srv := apiservertest.Start(t, endpoints, func(c *apiserver.Config) { c.CompactionInterval = 200 * time.Millisecond })
	c := srv.Client()
	ctx := ctxT(t)
	p := pod("default", "old", nil)
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Writes move the revision on; within a few intervals the version of
	// the first write falls out of the history.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("old resource version never expired: no compaction")
		}
		if err := c.Create(ctx, pod("default", fmt.Sprintf("p%d", i), nil)); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		ch, errf, err := c.Watch(wctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: p.ResourceVersion})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		for range ch {
		}
		cancel()
		if client.IsExpired(errf()) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWatchOneObjectByName(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	for _, n := range []string{"web", "web-2"} {
		if err := c.Create(ctx, pod("default", n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.Raw().Watch(ctx, &skiffv1.WatchRequest{Ref: &skiffv1.ResourceRef{Version: "v1", Resource: "pods", Namespace: "default", Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := stream.Recv()
	if err != nil || ev.Type != "ADDED" || !strings.Contains(string(ev.Object), `"name":"web"`) {
		t.Fatalf("first event: %v %s %s", err, ev.GetType(), ev.GetObject())
	}
	if _, err := c.Delete(ctx, pod("default", "web-2", nil), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, pod("default", "web", nil), nil); err != nil {
		t.Fatal(err)
	}
	ev, err = stream.Recv()
	if err != nil || ev.Type != "DELETED" || !strings.Contains(string(ev.Object), `"name":"web"`) {
		t.Fatalf("want DELETED web only, got %v %s %s", err, ev.GetType(), ev.GetObject())
	}
}

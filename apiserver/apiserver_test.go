package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func TestCreateGetUpdateConflictDelete(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	p := pod("default", "web", map[string]string{"app": "web"})
	if err := c.Create(ctx, p); err != nil {
		t.Fatalf("create: %v", err)
	}
	if p.UID == "" || p.ResourceVersion == "" || p.CreationTimestamp.IsZero() || p.Generation != 1 {
		t.Fatalf("create did not fill metadata: %+v", p.ObjectMeta)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase = %q, want Pending", p.Status.Phase)
	}
	if err := c.Create(ctx, pod("default", "web", nil)); !client.IsAlreadyExists(err) {
		t.Fatalf("second create: got %v, want AlreadyExists", err)
	}

	got := &corev1.Pod{}
	if err := c.Get(ctx, "default", "web", got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.ResourceVersion != p.ResourceVersion || got.UID != p.UID {
		t.Fatalf("get = rv %s uid %s, want rv %s uid %s", got.ResourceVersion, got.UID, p.ResourceVersion, p.UID)
	}

	// Two writers from the same version: the second is a Conflict.
	a, b := got.DeepCopy(), got.DeepCopy()
	a.Labels["v"] = "a"
	b.Labels["v"] = "b"
	if err := c.Update(ctx, a); err != nil {
		t.Fatalf("first update: %v", err)
	}
	err := c.Update(ctx, b)
	if !client.IsConflict(err) {
		t.Fatalf("stale update: got %v, want Conflict", err)
	}
	if se := client.FromError(err); se.Code.String() != "Aborted" || !strings.Contains(se.Error(), "the object has been modified") {
		t.Errorf("conflict error = %s %q", se.Code, se.Error())
	}
	// Label changes do not bump generation; spec changes do.
	if a.Generation != 1 {
		t.Errorf("generation after label change = %d, want 1", a.Generation)
	}
	a.Spec.ActiveDeadlineSeconds = new(int64)
	*a.Spec.ActiveDeadlineSeconds = 30
	if err := c.Update(ctx, a); err != nil {
		t.Fatalf("spec update: %v", err)
	}
	if a.Generation != 2 {
		t.Errorf("generation after spec change = %d, want 2", a.Generation)
	}
	// Status is not written by Update, only by UpdateStatus.
	a.Status.Phase = corev1.PodRunning
	if err := c.Update(ctx, a); err != nil {
		t.Fatalf("update: %v", err)
	}
	if a.Status.Phase != corev1.PodPending {
		t.Errorf("Update changed status to %q", a.Status.Phase)
	}
	a.Status.Phase = corev1.PodRunning
	if err := c.UpdateStatus(ctx, a); err != nil {
		t.Fatalf("update status: %v", err)
	}
	if a.Status.Phase != corev1.PodRunning {
		t.Errorf("UpdateStatus: phase %q", a.Status.Phase)
	}

	// Delete with a stale precondition is refused.
	if _, err := c.Delete(ctx, got.DeepCopy(), &client.DeleteOptions{PreconditionResourceVersion: got.ResourceVersion}); !client.IsConflict(err) {
		t.Fatalf("delete with stale precondition: got %v, want Conflict", err)
	}
	if _, err := c.Delete(ctx, a.DeepCopy(), nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.Get(ctx, "default", "web", &corev1.Pod{}); !client.IsNotFound(err) {
		t.Fatalf("get after delete: got %v, want NotFound", err)
	}
	if err := c.Create(ctx, pod("nope", "x", nil)); !client.IsNotFound(err) || !strings.Contains(err.Error(), `namespaces "nope" not found`) {
		t.Fatalf("create in missing namespace: got %v", err)
	}
}

func TestUnauthenticatedRefused(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	ctx := ctxT(t)
	cfg, err := client.LoadConfig(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cl, _, _, err := cfg.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	for name, user := range map[string]client.AuthInfo{
		"no credentials": {},
		"wrong token":    {Token: "not-the-token-not-the-token-not-the-token"},
	} {
		c, err := client.Dial(cl, user)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Get(ctx, "kube-system", "x", &corev1.ConfigMap{})
		c.Close()
		if !client.IsUnauthorized(err) || client.FromError(err).Code.String() != "Unauthenticated" {
			t.Errorf("%s: got %v, want Unauthenticated", name, err)
		}
	}
	// The admin token and the node token work.
	for name, tok := range map[string]string{"admin": srv.AdminToken(), "node": srv.NodeToken()} {
		c, err := client.Dial(cl, client.AuthInfo{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		ns := &corev1.Namespace{}
		err = c.Get(ctx, "", "kube-system", ns)
		c.Close()
		if err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	// A client that does not trust the cluster CA refuses the server.
	c, err := client.Dial(client.Cluster{Server: cl.Server}, client.AuthInfo{Token: srv.AdminToken()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Get(ctx, "", "default", &corev1.Namespace{}); err == nil {
		t.Errorf("a client without the CA reached the server")
	}
}

func TestBootstrapNamespaces(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	list := &corev1.NamespaceList{}
	if err := c.List(ctx, "", list, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	if got := strings.Join(names, ","); got != "default,kube-node-lease,kube-public,kube-system" {
		t.Errorf("namespaces = %s", got)
	}
	// Idempotent: a second server on the same store keeps them as they are.
	srv2 := apiservertest.Start(t, srv.Config.StoreEndpoints)
	ns := &corev1.Namespace{}
	if err := srv2.Client().Get(ctx, "", "default", ns); err != nil || ns.UID != list.Items[0].UID {
		t.Errorf("default namespace after second bootstrap: uid %s, want %s (err %v)", ns.UID, list.Items[0].UID, err)
	}
	if _, err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, nil); !client.IsForbidden(err) {
		t.Errorf("deleting kube-system: got %v, want Forbidden", err)
	}
}

func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

func TestNamespaceDeletionSweeps(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Create(ctx, pod("team", fmt.Sprintf("p%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "s"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, pod("default", "keep", nil)); err != nil {
		t.Fatal(err)
	}
	pending, err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, nil)
	if err != nil || !pending {
		t.Fatalf("delete namespace: pending=%v err=%v", pending, err)
	}
	waitFor(t, "namespace team to be gone", func() (bool, error) {
		err := c.Get(ctx, "", "team", &corev1.Namespace{})
		return client.IsNotFound(err), err
	})
	pods := &corev1.PodList{}
	if err := c.List(ctx, "", pods, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Name != "keep" {
		t.Errorf("pods after namespace deletion: %d, want only default/keep", len(pods.Items))
	}
	// The Service's allocations were released with it.
	etcd, err := clientv3.New(clientv3.Config{Endpoints: srv.Config.StoreEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	for _, key := range []string{"/registry/ranges/serviceips/" + svc.Spec.ClusterIP, fmt.Sprintf("/registry/ranges/servicenodeports/%d", svc.Spec.Ports[0].NodePort)} {
		resp, err := etcd.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 0 {
			t.Errorf("allocation %s still held after namespace deletion (err %v)", key, err)
		}
	}
	if err := c.Create(ctx, pod("team", "late", nil)); !client.IsNotFound(err) {
		t.Errorf("create in deleted namespace: got %v, want NotFound", err)
	}
}

func TestInvalidCarriesFieldCauses(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bad"}}
	err := c.Create(ctx, bad)
	if !client.IsInvalid(err) {
		t.Fatalf("pod without containers: got %v, want Invalid", err)
	}
	se := client.FromError(err)
	if se.Code.String() != "InvalidArgument" || se.Status.Code != 422 {
		t.Errorf("invalid: grpc %s http %d", se.Code, se.Status.Code)
	}
	found := false
	for _, cause := range se.Status.GetDetails().GetCauses() {
		found = found || cause.Field == "spec.containers"
	}
	if !found {
		t.Errorf("no cause names spec.containers: %v", se.Status.GetDetails().GetCauses())
	}
	// Binding a pod (spec.nodeName, once) is an update with a compare, so
	// two schedulers cannot both bind it.
	p := pod("default", "p", nil)
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	first, second := p.DeepCopy(), p.DeepCopy()
	first.Spec.NodeName, second.Spec.NodeName = "n1", "n2"
	if err := c.Update(ctx, first); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := c.Update(ctx, second); !client.IsConflict(err) {
		t.Fatalf("second bind: got %v, want Conflict", err)
	}
	err = client.RetryOnConflict(ctx, 3, func() error {
		cur := &corev1.Pod{}
		if err := c.Get(ctx, "default", "p", cur); err != nil {
			return err
		}
		cur.Spec.NodeName = "n2"
		return c.Update(ctx, cur)
	})
	if !client.IsInvalid(err) {
		t.Fatalf("rebinding a bound pod: got %v, want Invalid", err)
	}
}

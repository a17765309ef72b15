package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func resList(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func createNamespace(t *testing.T, c *client.Client, name string) {
	t.Helper()
	if err := c.Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// wantForbidden checks a refused create: PermissionDenied with msg, and
// nothing stored under name.
func wantForbidden(t *testing.T, c *client.Client, err error, ns, name, msg string) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied || !client.IsForbidden(err) {
		t.Fatalf("create %s/%s: got %v (code %s), want Forbidden (PermissionDenied)", ns, name, err, status.Code(err))
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("create %s/%s: message %q lacks %q", ns, name, err.Error(), msg)
	}
	if err := c.Get(ctxT(t), ns, name, &corev1.Pod{}); !client.IsNotFound(err) {
		t.Errorf("refused %s/%s: get says %v, want NotFound (nothing stored)", ns, name, err)
	}
}

func TestLimitRangeAdmission(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	createNamespace(t, c, "lr")
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: "lr", Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: resList("cpu", "500m"), DefaultRequest: resList("cpu", "100m", "memory", "64Mi"),
				Default: resList("memory", "128Mi")},
			{Type: corev1.LimitTypePersistentVolumeClaim, Max: resList("storage", "10Gi")},
		}}}
	if err := c.Create(ctx, lr); err != nil {
		t.Fatalf("create limitrange: %v", err)
	}

	// Defaults fill a pod that sets nothing.
	p := pod("lr", "plain", nil)
	if err := c.Create(ctx, p); err != nil {
		t.Fatalf("create plain pod: %v", err)
	}
	got := &corev1.Pod{}
	if err := c.Get(ctx, "lr", "plain", got); err != nil {
		t.Fatal(err)
	}
	res := got.Spec.Containers[0].Resources
	if q := res.Limits["cpu"]; q.String() != "500m" {
		t.Errorf("limits.cpu = %s, want the max 500m as default", q.String())
	}
	if q := res.Requests["cpu"]; q.String() != "100m" {
		t.Errorf("requests.cpu = %s, want 100m", q.String())
	}
	if q := res.Limits["memory"]; q.String() != "128Mi" {
		t.Errorf("limits.memory = %s, want 128Mi", q.String())
	}
	if got.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QoS %s, want Burstable (from the defaulted resources)", got.Status.QOSClass)
	}
	if a := got.Annotations["kubernetes.io/limit-ranger"]; !strings.Contains(a, "cpu, memory request for container c") {
		t.Errorf("limit-ranger annotation %q", a)
	}

	// Over the max: Forbidden, naming resource and container; nothing stored.
	big := pod("lr", "big", nil)
	big.Spec.Containers[0].Resources.Limits = resList("cpu", "1")
	err := c.Create(ctx, big)
	wantForbidden(t, c, err, "lr", "big", `pods "big" is forbidden: maximum cpu usage per Container is 500m, but limit is 1 (container "c")`)

	// The same through apply (its create path).
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big2","namespace":"lr"},"spec":{"containers":[{"name":"web","image":"x","resources":{"limits":{"cpu":"2"}}}]}}`
	_, err = c.Raw().Apply(ctx, &skiffv1.ApplyRequest{Ref: &skiffv1.ResourceRef{Version: "v1", Resource: "pods", Namespace: "lr", Name: "big2"}, Object: []byte(raw)})
	wantForbidden(t, c, client.FromError(err), "lr", "big2", `maximum cpu usage per Container is 500m, but limit is 2 (container "web")`)

	// Claims: max storage.
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "lr", Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: resList("storage", "20Gi")}}}
	err = c.Create(ctx, pvc)
	if !client.IsForbidden(err) || !strings.Contains(err.Error(), "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi") {
		t.Errorf("big claim: %v", err)
	}
	// Another namespace is not limited.
	big.Namespace, big.ResourceVersion = "default", ""
	if err := c.Create(ctx, big); err != nil {
		t.Errorf("a pod in a namespace without LimitRange: %v", err)
	}
}

func getQuota(t *testing.T, c *client.Client, ns, name string) *corev1.ResourceQuota {
	t.Helper()
	q := &corev1.ResourceQuota{}
	if err := c.Get(ctxT(t), ns, name, q); err != nil {
		t.Fatalf("get quota: %v", err)
	}
	return q
}

func usedOf(q *corev1.ResourceQuota, name string) string {
	u, ok := q.Status.Used[corev1.ResourceName(name)]
	if !ok {
		return "<none>"
	}
	return u.String()
}

func TestResourceQuotaAdmission(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	createNamespace(t, c, "team")
	// A pod that exists before the quota is counted too.
	early := pod("team", "early", nil)
	early.Spec.Containers[0].Resources.Requests = resList("cpu", "200m")
	if err := c.Create(ctx, early); err != nil {
		t.Fatal(err)
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "q1"},
		Spec: corev1.ResourceQuotaSpec{Hard: resList("pods", "2", "requests.cpu", "1", "count/configmaps", "1")}}
	if err := c.Create(ctx, q); err != nil {
		t.Fatalf("create quota: %v", err)
	}
	second := pod("team", "second", nil)
	second.Spec.Containers[0].Resources.Requests = resList("cpu", "300m")
	if err := c.Create(ctx, second); err != nil {
		t.Fatalf("second pod: %v", err)
	}
	got := getQuota(t, c, "team", "q1")
	if usedOf(got, "pods") != "2" || usedOf(got, "requests.cpu") != "500m" {
		t.Errorf("used after two pods: %v, want pods=2 requests.cpu=500m", got.Status.Used)
	}
	third := pod("team", "third", nil)
	third.Spec.Containers[0].Resources.Requests = resList("cpu", "100m")
	wantForbidden(t, c, c.Create(ctx, third), "team", "third",
		`pods "third" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2`)

	// An unbound pod is deleted at once; the delete does not release the
	// charge (the ResourceQuota controller does): make room by hand, as the
	// controller would.
	if _, err := c.Delete(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	got = getQuota(t, c, "team", "q1")
	got.Status.Used = resList("pods", "1", "requests.cpu", "200m", "count/configmaps", "0")
	if err := c.UpdateStatus(ctx, got); err != nil {
		t.Fatalf("update quota status: %v", err)
	}
	greedy := pod("team", "greedy", nil)
	greedy.Spec.Containers[0].Resources.Requests = resList("cpu", "900m")
	wantForbidden(t, c, c.Create(ctx, greedy), "team", "greedy",
		"exceeded quota: q1, requested: requests.cpu=900m, used: requests.cpu=200m, limited: requests.cpu=1")
	// A dry run is judged but charges nothing.
	data := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dry","namespace":"team"},"spec":{"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":"100m"}}}]}}`
	if _, err := c.Raw().Create(ctx, &skiffv1.CreateRequest{Ref: &skiffv1.ResourceRef{Version: "v1", Resource: "pods", Namespace: "team"}, Object: []byte(data), DryRun: true}); err != nil {
		t.Fatalf("dry-run create: %v", err)
	}
	if got := getQuota(t, c, "team", "q1"); usedOf(got, "pods") != "1" {
		t.Errorf("a dry run charged the quota: %v", got.Status.Used)
	}

	// requests.cpu is limited: a pod must say what it requests.
	wantForbidden(t, c, c.Create(ctx, pod("team", "vague", nil)), "team", "vague", `failed quota: q1: must specify requests.cpu`)

	// count/<resource>: one ConfigMap fits, the second does not.
	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name}}
	}
	if err := c.Create(ctx, cm("one")); err != nil {
		t.Fatalf("first configmap: %v", err)
	}
	err := c.Create(ctx, cm("two"))
	if !client.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota: q1, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1") {
		t.Errorf("second configmap: %v", err)
	}
	// Other kinds and namespaces are not limited.
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "s"}}); err != nil {
		t.Errorf("secret: %v", err)
	}
	if err := c.Create(ctx, pod("default", "free", nil)); err != nil {
		t.Errorf("pod in default: %v", err)
	}
}

// Creates racing for the last places of a quota: exactly the room is
// used, none fails for anything but the quota.
func TestResourceQuotaConcurrentCreates(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	createNamespace(t, c, "race")
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "race", Name: "q1"},
		Spec: corev1.ResourceQuotaSpec{Hard: resList("pods", "5")}}
	if err := c.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	const racers = 16
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Create(ctx, pod("race", fmt.Sprintf("p%d", i), nil))
		}()
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch {
		case err == nil:
			created++
		case client.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota: q1"):
		default:
			t.Errorf("racer %d: %v", i, err)
		}
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), "race", &pods, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if created != 5 || len(pods.Items) != 5 {
		t.Errorf("%d creates succeeded, %d pods stored; want 5 and 5 (quota pods=5)", created, len(pods.Items))
	}
	if got := getQuota(t, c, "race", "q1"); usedOf(got, "pods") != "5" {
		t.Errorf("used %v, want pods=5", got.Status.Used)
	}
}

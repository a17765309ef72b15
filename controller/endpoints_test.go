//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func epPod(name, ip string, ready bool, ports ...corev1.ContainerPort) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"}, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name: "c", Image: "web:1", Ports: ports,
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func epService(ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: ports},
	}
}

// describeSubsets renders subsets compactly: "[a b | c] http:8080 m:9090".
func describeSubsets(ss []corev1.EndpointSubset) string {
	var parts []string
	for _, s := range ss {
		var b strings.Builder
		b.WriteString("[")
		for i, a := range s.Addresses {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(a.TargetRef.Name)
			if a.Hostname != "" {
				b.WriteString("(" + a.Hostname + ")")
			}
		}
		if len(s.NotReadyAddresses) > 0 {
			b.WriteString(" |")
			for _, a := range s.NotReadyAddresses {
				b.WriteString(" " + a.TargetRef.Name)
			}
		}
		b.WriteString("]")
		for _, p := range s.Ports {
			fmt.Fprintf(&b, " %s:%d", p.Name, p.Port)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

func TestEndpointSubsets(t *testing.T) {
	httpPort := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
	altHTTP := corev1.ContainerPort{Name: "http", ContainerPort: 8081}
	named := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}
	metrics := corev1.ServicePort{Name: "m", Port: 9090, TargetPort: intstr.FromInt32(9091)}
	unsetTarget := corev1.ServicePort{Port: 7000}
	deleting := epPod("d", "10.0.0.4", true, httpPort)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	failed := epPod("f", "10.0.0.5", true, httpPort)
	failed.Status.Phase = corev1.PodFailed
	sts := epPod("web-0", "10.0.0.6", true)
	sts.Spec.Hostname, sts.Spec.Subdomain = "web-0", "web"
	otherSub := epPod("x-0", "10.0.0.7", true)
	otherSub.Spec.Hostname, otherSub.Spec.Subdomain = "x-0", "other"

	for _, tc := range []struct {
		name    string
		svc     *corev1.Service
		publish bool
		pods    []*corev1.Pod
		want    string
	}{
		{"ready and unready by name", epService(named), false,
			[]*corev1.Pod{epPod("b", "10.0.0.2", true, httpPort), epPod("a", "10.0.0.1", true, httpPort), epPod("c", "10.0.0.3", false, httpPort)},
			"[a b | c] http:8080"},
		{"publishNotReadyAddresses", epService(named), true,
			[]*corev1.Pod{epPod("a", "10.0.0.1", true, httpPort), epPod("c", "10.0.0.3", false, httpPort)},
			"[a c] http:8080"},
		{"named port resolving differently splits subsets", epService(named), false,
			[]*corev1.Pod{epPod("a", "10.0.0.1", true, httpPort), epPod("b", "10.0.0.2", true, altHTTP)},
			"[a] http:8080; [b] http:8081"},
		{"pod lacking the name serves the numeric port only", epService(named, metrics), false,
			[]*corev1.Pod{epPod("a", "10.0.0.1", true, httpPort), epPod("b", "10.0.0.2", true)},
			"[a] http:8080 m:9091; [b] m:9091"},
		{"pod serving no port is left out", epService(named), false,
			[]*corev1.Pod{epPod("b", "10.0.0.2", true)}, ""},
		{"unset targetPort is the port", epService(unsetTarget), false,
			[]*corev1.Pod{epPod("a", "10.0.0.1", true)}, "[a] :7000"},
		{"no IP, deleting and finished pods do not count", epService(named), false,
			[]*corev1.Pod{epPod("n", "", true, httpPort), deleting, failed, epPod("a", "10.0.0.1", true, httpPort)},
			"[a] http:8080"},
		{"headless without ports, hostname under its subdomain", epService(), false,
			[]*corev1.Pod{sts, otherSub}, "[web-0(web-0) x-0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.svc.Spec.PublishNotReadyAddresses = tc.publish
			got := describeSubsets(EndpointSubsets(tc.svc, tc.pods))
			if got != tc.want {
				t.Errorf("subsets:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestIntegrationEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = NewManager(c, Options{Resync: -1, Logger: testLogger(t)}).Run(ctx)
	}()

	svc := epService(
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9091)},
	)
	svc.Labels = map[string]string{"tier": "front"}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatalf("create service: %v", err)
	}
	// A selectorless service with hand-written Endpoints: not ours.
	manual := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "external"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}}
	manualEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "external"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.7"}}, Ports: []corev1.EndpointPort{{Port: 5432}}}}}
	if err := c.Create(ctx, manual); err != nil {
		t.Fatalf("create service: %v", err)
	}
	if err := c.Create(ctx, manualEP); err != nil {
		t.Fatalf("create endpoints: %v", err)
	}

	httpPort := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
	setStatus := func(name, ip string, ready bool) {
		t.Helper()
		err := client.RetryOnConflict(ctx, 5, func() error {
			p := &corev1.Pod{}
			if err := c.Get(ctx, "default", name, p); err != nil {
				return err
			}
			want := epPod(name, ip, ready)
			p.Status.Phase, p.Status.PodIP, p.Status.Conditions = want.Status.Phase, ip, want.Status.Conditions
			if ip != "" {
				p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
			}
			return c.UpdateStatus(ctx, p)
		})
		if err != nil {
			t.Fatalf("pod %s status: %v", name, err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		p := epPod(name, "", false, httpPort)
		p.UID, p.Status = "", corev1.PodStatus{}
		if err := c.Create(ctx, p); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	setStatus("a", "10.244.0.10", true)
	setStatus("b", "10.244.0.11", true)
	setStatus("c", "10.244.0.12", false)

	expect := func(what, want string) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			ep := &corev1.Endpoints{}
			if err := c.Get(ctx, "default", "web", ep); err != nil {
				if want == "<deleted>" && client.IsNotFound(err) {
					return nil
				}
				return err
			}
			if ep.Labels["tier"] != "front" {
				return fmt.Errorf("labels %v, want the service's", ep.Labels)
			}
			if got := describeSubsets(ep.Subsets); got != want {
				return fmt.Errorf("got %s, want %s", got, want)
			}
			return nil
		})
	}
	expect("ready a b, unready c", "[a b | c] http:8080 metrics:9091")
	setStatus("c", "10.244.0.12", true)
	expect("c became ready", "[a b c] http:8080 metrics:9091")
	setStatus("a", "10.244.0.10", false)
	expect("a became unready", "[b c | a] http:8080 metrics:9091")

	b := &corev1.Pod{}
	if err := c.Get(ctx, "default", "b", b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, b, &client.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("delete pod b: %v", err)
	}
	expect("b deleted", "[c | a] http:8080 metrics:9091")

	err := client.RetryOnConflict(ctx, 5, func() error {
		p := &corev1.Pod{}
		if err := c.Get(ctx, "default", "c", p); err != nil {
			return err
		}
		p.Labels = map[string]string{"app": "other"}
		return c.Update(ctx, p)
	})
	if err != nil {
		t.Fatalf("relabel c: %v", err)
	}
	expect("c relabelled away", "[ | a] http:8080 metrics:9091")

	// A hand-edited Endpoints is put back.
	err = client.RetryOnConflict(ctx, 5, func() error {
		ep := &corev1.Endpoints{}
		if err := c.Get(ctx, "default", "web", ep); err != nil {
			return err
		}
		ep.Subsets = nil
		return c.Update(ctx, ep)
	})
	if err != nil {
		t.Fatalf("edit endpoints: %v", err)
	}
	expect("hand edit repaired", "[ | a] http:8080 metrics:9091")

	cur := &corev1.Service{}
	if err := c.Get(ctx, "default", "web", cur); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, cur, nil); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	expect("endpoints of a deleted service", "<deleted>")

	got := &corev1.Endpoints{}
	if err := c.Get(ctx, "default", "external", got); err != nil {
		t.Fatalf("manual endpoints: %v", err)
	}
	if d := describeAddrs(got); d != "192.0.2.7" {
		t.Errorf("manual endpoints changed: %s", d)
	}
}

func describeAddrs(ep *corev1.Endpoints) string {
	var ips []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			ips = append(ips, a.IP)
		}
	}
	return strings.Join(ips, ",")
}

// TestEndpointsOfAServiceNotYetCached: an Endpoints seen before its
// Service (two watches) must not be deleted as an orphan.
func TestEndpointsOfAServiceNotYetCached(t *testing.T) {
	f := newFake()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}}
	f.add(svc, ep)
	lagging := snapshot{} // the services cache has not seen db yet
	c := NewEndpointsController(lagging, f.cache("Pod"), f.cache("Endpoints"), serviceReader{f}, nil)
	res, err := c.Reconcile(ctxT(t), "default/db")
	if err != nil {
		t.Fatal(err)
	}
	if a := f.takeActions(); len(a) != 0 {
		t.Errorf("actions %v, want none while the service exists", a)
	}
	if res.RequeueAfter == 0 {
		t.Error("want a requeue to look again once the cache caught up")
	}

	f.objs["Service"] = nil // now really gone
	if _, err := c.Reconcile(ctxT(t), "default/db"); err != nil {
		t.Fatal(err)
	}
	if a := f.takeActions(); len(a) != 1 || a[0].String() != "delete Endpoints default/db" {
		t.Errorf("actions %v, want the orphan deleted", a)
	}
}

// serviceReader is the fake cluster, reading Services too.
type serviceReader struct{ *fakeCluster }

func (r serviceReader) Get(ctx context.Context, ns, name string, obj runtime.Object) error {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return r.fakeCluster.Get(ctx, ns, name, obj)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o, found := r.objs["Service"][ns+"/"+name]
	if !found {
		return client.NewNotFound(schema.GroupResource{Resource: "services"}, name)
	}
	*s = *o.(*corev1.Service).DeepCopy()
	return nil
}

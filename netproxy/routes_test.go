//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package netproxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func testNodeObject(name, cidr, ip string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// TestTwoNodes: two nodes on one segment, a pod on each. Routes gives
// each node a route to the other's pod CIDR, so pod A reaches pod B by IP
// without NAT, and through a service whose only endpoint is on B.
//
//	podA 10.244.0.10 -- nodeA 192.168.88.1 ==== 192.168.88.2 nodeB -- podB 10.244.1.10
func TestTwoNodes(t *testing.T) {
	requireRoot(t)
	pre := nsPrefix()
	nodeA, nodeB, podA, podB := pre+"nodeA", pre+"nodeB", pre+"podA", pre+"podB"
	for _, ns := range []string{nodeA, nodeB, podA, podB} {
		addNetns(t, ns)
	}
	for _, ns := range []string{nodeA, nodeB} {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	}
	link(t, nodeA, nodeB, "vlink", "192.168.88.1/24", "192.168.88.2/24")
	attachPod(t, nodeA, podA, "vp0", "10.244.0.1", "10.244.0.10")
	attachPod(t, nodeB, podB, "vp0", "10.244.1.1", "10.244.1.10")
	serveIn(t, podB, "podB", 8080)

	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range []*corev1.Node{testNodeObject("a", "10.244.0.0/24", "192.168.88.1"), testNodeObject("b", "10.244.1.0/24", "192.168.88.2")} {
		status := n.Status
		if err := c.Create(ctx, n); err != nil {
			t.Fatalf("create node: %v", err)
		}
		n.Status = status
		if err := c.UpdateStatus(ctx, n); err != nil {
			t.Fatalf("node status: %v", err)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "remote"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, endpointsOf("remote", 8080, "10.244.1.10")); err != nil {
		t.Fatal(err)
	}

	nodes, err := client.NewInformer(c, "", &corev1.Node{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := client.NewInformer(c, "", &corev1.Service{}, client.ListOptions{}, 0)
	eps, _ := client.NewInformer(c, "", &corev1.Endpoints{}, client.ListOptions{}, 0)
	var routes []*Routes
	for name, ns := range map[string]string{"a": nodeA, "b": nodeB} {
		r, err := NewRoutes(RoutesConfig{NodeName: name, IP: []string{"ip", "-n", ns}, Logger: testLogger(t)}, nodes)
		if err != nil {
			t.Fatal(err)
		}
		nodes.AddHandler(r.Handler())
		routes = append(routes, r)
	}
	cfg := DefaultConfig()
	cfg.NodeName, cfg.ClusterCIDR, cfg.MinSyncInterval = "a", "10.244.0.0/16", 50*time.Millisecond
	cfg.Runner = &Exec{Prefix: []string{"ip", "netns", "exec", nodeA}}
	proxy, err := New(cfg, svcs, eps)
	if err != nil {
		t.Fatal(err)
	}
	svcs.AddHandler(proxy.Handler())
	eps.AddHandler(proxy.Handler())

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(runCtx) }()
	}
	goRun(nodes.Run)
	goRun(svcs.Run)
	goRun(eps.Run)
	goRun(proxy.Run)
	for _, r := range routes {
		goRun(r.Run)
	}
	defer func() {
		stop()
		wg.Wait()
		for _, r := range routes {
			if err := r.Cleanup(context.Background()); err != nil {
				t.Errorf("routes cleanup: %v", err)
			}
		}
		if err := proxy.Cleanup(context.Background()); err != nil {
			t.Errorf("proxy cleanup: %v", err)
		}
	}()

	eventually(t, 20*time.Second, "pod A reaches pod B by IP, unNATed", func() error {
		body, err := getFrom(podA, "10.244.1.10:8080")
		if err != nil {
			return err
		}
		if body != "podB 10.244.0.10" {
			return fmt.Errorf("answer %q, want podB seeing 10.244.0.10", body)
		}
		return nil
	})
	eventually(t, 20*time.Second, "pod A reaches the service whose only pod is on B", func() error {
		body, err := getFrom(podA, svc.Spec.ClusterIP+":80")
		if err != nil {
			return err
		}
		if body != "podB 10.244.0.10" {
			return fmt.Errorf("answer %q, want podB seeing 10.244.0.10", body)
		}
		return nil
	})
	have, err := routes[0].Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 1 {
		t.Errorf("owned routes %v, want one, to the other node's CIDR", have)
	}

	// Node b leaves: a's route to it goes, b's own route table is untouched
	// by a (and keeps its route to a).
	b := &corev1.Node{}
	if err := c.Get(ctx, "", "b", b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, b, nil); err != nil {
		t.Fatalf("delete node: %v", err)
	}
	var onA *Routes
	for _, r := range routes {
		if r.cfg.NodeName == "a" {
			onA = r
		}
	}
	eventually(t, 10*time.Second, "route to the deleted node's pods removed", func() error {
		have, err := onA.Current(ctx)
		if err != nil || len(have) != 0 {
			return fmt.Errorf("owned routes on a: %v (%v)", have, err)
		}
		return nil
	})
	if out := strings.TrimSpace(run(t, "ip", "-n", nodeA, "-4", "route", "show", "10.244.1.0/24")); out != "" {
		t.Errorf("node a still routes 10.244.1.0/24: %s", out)
	}
}

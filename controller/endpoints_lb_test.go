package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// TestIntegrationServiceLB runs the ServiceLB and Ingress status
// controllers alone (the node
// lifecycle controller would mark these heartbeat-less nodes NotReady)
// against a real API server.
func TestIntegrationServiceLB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	node := func(name string, ready bool, addrs ...corev1.NodeAddress) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Create(ctx, n); err != nil {
			t.Fatalf("create node: %v", err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		n.Status = corev1.NodeStatus{Addresses: addrs, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}
		if err := c.UpdateStatus(ctx, n); err != nil {
			t.Fatalf("node status: %v", err)
		}
	}
	node("n1", true, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.1"})
	node("n2", true, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.2"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.2"})
	node("n3", false, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.3"})

	lb := func(name string, port int32) *corev1.Service {
		t.Helper()
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: port}}}}
		if err := c.Create(ctx, s); err != nil {
			t.Fatalf("create service: %v", err)
		}
		return s
	}
	// Created in this order, first is older than second; within one second
	// (timestamps have 1s precision) the tie is broken by name, which
	// agrees.
	first := lb("first", 80)
	lb("second", 80) // same port: pending while first holds it
	lb("other", 8080)

	ingress := func(name string, class *string) {
		t.Helper()
		pt := networkingv1.PathTypePrefix
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: networkingv1.IngressSpec{IngressClassName: class, Rules: []networkingv1.IngressRule{{Host: "a.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
		if err := c.Create(ctx, ing); err != nil {
			t.Fatalf("create ingress: %v", err)
		}
	}
	nginx := "nginx"
	ingress("ours", nil)
	ingress("theirs", &nginx)

	svcs, err := client.NewInformer(c, "", &corev1.Service{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ings, err := client.NewInformer(c, "", &networkingv1.Ingress{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.NewInformer(c, "", &corev1.Node{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	lbc := NewServiceLBController(svcs, nodes, c, testLogger(t))
	l := newLoop(lbc, discardLogger())
	lbc.register(l.queue, svcs, nodes)
	isc := NewIngressStatusController(ings, nodes, c, testLogger(t))
	il := newLoop(isc, discardLogger())
	isc.register(il.queue, ings, nodes)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, i := range []*client.Informer{svcs, nodes, ings} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
		if !i.WaitForSync(ctx) {
			t.Fatal("no sync")
		}
	}
	l.start(ctx, 1, &wg)
	defer l.queue.ShutDown()
	il.start(ctx, 1, &wg)
	defer il.queue.ShutDown()

	ingressIPs := func(name string) string {
		ing := &networkingv1.Ingress{}
		if err := c.Get(ctx, "default", name, ing); err != nil {
			return "error: " + err.Error()
		}
		var ips []string
		for _, i := range ing.Status.LoadBalancer.Ingress {
			ips = append(ips, i.IP)
		}
		return strings.Join(ips, ",")
	}
	lbIPs := func(name string) string {
		s := &corev1.Service{}
		if err := c.Get(ctx, "default", name, s); err != nil {
			return "error: " + err.Error()
		}
		var ips []string
		for _, i := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, i.IP)
		}
		return strings.Join(ips, ",")
	}
	expect := func(what string, want map[string]string) {
		t.Helper()
		eventually(t, 20*time.Second, what, func() error {
			for name, w := range want {
				if got := lbIPs(name); got != w {
					return fmt.Errorf("service %s: ingress %q, want %q", name, got, w)
				}
			}
			return nil
		})
	}
	expect("ready nodes' addresses (external preferred); second pending", map[string]string{
		"first": "192.168.1.1,203.0.113.2", "second": "", "other": "192.168.1.1,203.0.113.2"})
	eventually(t, 20*time.Second, "ingress of class skiff (or none) gets the node addresses", func() error {
		if got := ingressIPs("ours"); got != "192.168.1.1,203.0.113.2" {
			return fmt.Errorf("ingress ours: %q", got)
		}
		return nil
	})
	if got := ingressIPs("theirs"); got != "" {
		t.Errorf("ingress of class nginx got addresses %q", got)
	}

	if _, err := c.Delete(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	expect("the port freed goes to second", map[string]string{"second": "192.168.1.1,203.0.113.2"})

	err = client.RetryOnConflict(ctx, 5, func() error {
		n := &corev1.Node{}
		if err := c.Get(ctx, "", "n3", n); err != nil {
			return err
		}
		n.Status.Conditions[0].Status = corev1.ConditionTrue
		return c.UpdateStatus(ctx, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	expect("a node that became ready joins", map[string]string{
		"second": "192.168.1.1,192.168.1.3,203.0.113.2", "other": "192.168.1.1,192.168.1.3,203.0.113.2"})

	err = client.RetryOnConflict(ctx, 5, func() error {
		s := &corev1.Service{}
		if err := c.Get(ctx, "default", "other", s); err != nil {
			return err
		}
		s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeClusterIP, ""
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
		return c.Update(ctx, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	expect("no longer a load balancer: status cleared", map[string]string{"other": ""})
}

package apiserver_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// Read-modify-write increments from many clients, each retrying on
// Conflict, lose no increment: the compare on the mod revision is what
// makes optimistic concurrency safe.
func TestConcurrentIncrementsLoseNothing(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	ctx := ctxT(t)
	c := srv.Client()
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "counter"},
		Data: map[string]string{"n": "0"}}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					cm := &corev1.ConfigMap{}
					if err := c.Get(ctx, "default", "counter", cm); err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(cm.Data["n"])
					cm.Data["n"] = strconv.Itoa(n + 1)
					err := c.Update(ctx, cm)
					if client.IsConflict(err) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, "default", "counter", cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["n"] != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d increments (%d conflicts retried): updates were lost", cm.Data["n"], workers*each, conflicts)
	}
	t.Logf("%d conflicts retried", conflicts)
}

// Services created concurrently through two API servers never share a
// ClusterIP or NodePort.
func TestConcurrentAllocationsAreUnique(t *testing.T) {
	endpoints := apiservertest.Store(t)
	clients := []*client.Client{apiservertest.Start(t, endpoints).Client(), apiservertest.Start(t, endpoints).Client()}
	ctx := ctxT(t)
	const n = 16
	var wg sync.WaitGroup
	results := make(chan *corev1.Service, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("s%d", i)},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
			if err := clients[i%2].Create(context.WithoutCancel(ctx), svc); err != nil {
				errs <- err
				return
			}
			results <- svc
		}(i)
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for s := range results {
		if other, dup := ips[s.Spec.ClusterIP]; dup {
			t.Errorf("clusterIP %s given to %s and %s", s.Spec.ClusterIP, other, s.Name)
		}
		ips[s.Spec.ClusterIP] = s.Name
		np := s.Spec.Ports[0].NodePort
		if other, dup := ports[np]; dup {
			t.Errorf("nodePort %d given to %s and %s", np, other, s.Name)
		}
		ports[np] = s.Name
	}
	if len(ips) != n || len(ports) != n {
		t.Errorf("%d distinct IPs and %d ports for %d services", len(ips), len(ports), n)
	}
}

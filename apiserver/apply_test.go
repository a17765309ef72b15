package apiserver_test

import (
	"fmt"
	"net"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func deployment(replicas int32, labels map[string]string, env []corev1.EnvVar) *appsv1.Deployment {
	sel := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Env: env}}},
			},
		},
	}
}

func TestApplyThreeWayMerge(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	d := deployment(2, map[string]string{"tier": "front", "team": "a"}, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}})
	created, err := c.Apply(ctx, d)
	if err != nil || !created {
		t.Fatalf("first apply: created=%v err=%v", created, err)
	}
	if d.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
		t.Fatal("no last-applied-configuration annotation")
	}
	// Someone else adds a label and an annotation; apply must keep them.
	live := &appsv1.Deployment{}
	if err := c.Get(ctx, "default", "web", live); err != nil {
		t.Fatal(err)
	}
	live.Labels["added-by"] = "controller"
	if err := c.Update(ctx, live); err != nil {
		t.Fatal(err)
	}

	// The manifest drops label team and env B, changes replicas.
	d2 := deployment(3, map[string]string{"tier": "front"}, []corev1.EnvVar{{Name: "A", Value: "1"}})
	created, err = c.Apply(ctx, d2)
	if err != nil || created {
		t.Fatalf("second apply: created=%v err=%v", created, err)
	}
	if err := c.Get(ctx, "default", "web", live); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.Labels["team"]; ok {
		t.Errorf("label removed from the manifest is still there: %v", live.Labels)
	}
	if live.Labels["added-by"] != "controller" || live.Labels["tier"] != "front" {
		t.Errorf("labels = %v, want tier and added-by kept", live.Labels)
	}
	if env := live.Spec.Template.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "A" {
		t.Errorf("env = %v, want only A", env)
	}
	if *live.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", *live.Spec.Replicas)
	}
	if live.Generation != 2 {
		t.Errorf("generation = %d, want 2", live.Generation)
	}
	// Applying the same manifest again changes nothing.
	rv := live.ResourceVersion
	if _, err := c.Apply(ctx, deployment(3, map[string]string{"tier": "front"}, []corev1.EnvVar{{Name: "A", Value: "1"}})); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "default", "web", live); err != nil {
		t.Fatal(err)
	}
	if live.ResourceVersion != rv {
		t.Errorf("no-op apply wrote a new revision: %s -> %s", rv, live.ResourceVersion)
	}
}

func TestServiceAllocationsUniqueAndPersisted(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	svc := func(name string, typ corev1.ServiceType, nodePort int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort}}}}
	}
	ips, ports := map[string]string{}, map[int32]string{}
	record := func(s *corev1.Service) {
		t.Helper()
		ip := net.ParseIP(s.Spec.ClusterIP)
		_, cidr, _ := net.ParseCIDR("10.96.0.0/12")
		if ip == nil || !cidr.Contains(ip) || s.Spec.ClusterIP == "10.96.0.0" || s.Spec.ClusterIP == "10.96.0.1" {
			t.Fatalf("%s: clusterIP %q not a valid address of 10.96.0.0/12", s.Name, s.Spec.ClusterIP)
		}
		if other, dup := ips[s.Spec.ClusterIP]; dup {
			t.Fatalf("clusterIP %s given to %s and %s", s.Spec.ClusterIP, other, s.Name)
		}
		ips[s.Spec.ClusterIP] = s.Name
		if np := s.Spec.Ports[0].NodePort; np != 0 {
			if np < 30000 || np > 32767 {
				t.Fatalf("%s: nodePort %d out of range", s.Name, np)
			}
			if other, dup := ports[np]; dup {
				t.Fatalf("nodePort %d given to %s and %s", np, other, s.Name)
			}
			ports[np] = s.Name
		}
	}
	for i := 0; i < 4; i++ {
		s := svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort, 0)
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		record(s)
	}
	// An explicitly requested, taken nodePort is Invalid.
	s0 := &corev1.Service{}
	if err := c.Get(ctx, "default", "s0", s0); err != nil {
		t.Fatal(err)
	}
	err := c.Create(ctx, svc("dup", corev1.ServiceTypeNodePort, s0.Spec.Ports[0].NodePort))
	if !client.IsInvalid(err) {
		t.Fatalf("taken nodePort: got %v, want Invalid", err)
	}
	if err := c.Create(ctx, svc("far", corev1.ServiceTypeNodePort, 40000)); !client.IsInvalid(err) {
		t.Fatalf("nodePort 40000: got %v, want Invalid", err)
	}
	// After a restart, new allocations still avoid the old ones.
	srv2 := srv.Restart()
	c = srv2.Client()
	for i := 4; i < 7; i++ {
		s := svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort, 0)
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		record(s)
	}
	// Deleting releases: the freed values can be requested explicitly.
	if _, err := c.Delete(ctx, s0, nil); err != nil {
		t.Fatal(err)
	}
	re := svc("again", corev1.ServiceTypeNodePort, s0.Spec.Ports[0].NodePort)
	re.Spec.ClusterIP = s0.Spec.ClusterIP
	if err := c.Create(ctx, re); err != nil {
		t.Fatalf("reusing released values: %v", err)
	}
	// An update that omits clusterIP and nodePort keeps them; changing the
	// clusterIP is refused.
	upd := svc("again", corev1.ServiceTypeNodePort, 0)
	if err := c.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if upd.Spec.ClusterIP != s0.Spec.ClusterIP || upd.Spec.Ports[0].NodePort != s0.Spec.Ports[0].NodePort {
		t.Errorf("update lost allocations: %s/%d, want %s/%d", upd.Spec.ClusterIP, upd.Spec.Ports[0].NodePort,
			s0.Spec.ClusterIP, s0.Spec.Ports[0].NodePort)
	}
	upd.Spec.ClusterIP = "10.96.200.200"
	if err := c.Update(ctx, upd); !client.IsInvalid(err) {
		t.Errorf("changing clusterIP: got %v, want Invalid", err)
	}
	headless := svc("headless", corev1.ServiceTypeClusterIP, 0)
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	if err := c.Create(ctx, headless); err != nil || headless.Spec.ClusterIP != "None" {
		t.Errorf("headless: clusterIP %q err %v", headless.Spec.ClusterIP, err)
	}
}

func TestFinalizersAndGracefulDeletion(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "held", Finalizers: []string{"example.com/hold"}}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	pending, err := c.Delete(ctx, cm.DeepCopy(), nil)
	if err != nil || !pending {
		t.Fatalf("delete with finalizer: pending=%v err=%v", pending, err)
	}
	if err := c.Get(ctx, "default", "held", cm); err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("held object: err=%v deletionTimestamp=%v", err, cm.DeletionTimestamp)
	}
	cm.Finalizers = nil
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "default", "held", cm); !client.IsNotFound(err) {
		t.Fatalf("object after its last finalizer went: %v, want NotFound", err)
	}

	// A pod bound to a node waits for its agent; grace 0 removes it.
	p := pod("default", "bound", nil)
	p.Spec.NodeName = "n1"
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	pending, err = c.Delete(ctx, p.DeepCopy(), nil)
	if err != nil || !pending {
		t.Fatalf("delete bound pod: pending=%v err=%v", pending, err)
	}
	if err := c.Get(ctx, "default", "bound", p); err != nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("bound pod: err=%v meta=%+v", err, p.ObjectMeta)
	}
	zero := int64(0)
	if pending, err := c.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil || pending {
		t.Fatalf("delete with grace 0: pending=%v err=%v", pending, err)
	}
	if err := c.Get(ctx, "default", "bound", p); !client.IsNotFound(err) {
		t.Fatalf("pod after grace-0 delete: %v", err)
	}
	// Orphan propagation leaves the orphan finalizer for the collector.
	cm2 := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "o"}}
	if err := c.Create(ctx, cm2); err != nil {
		t.Fatal(err)
	}
	if pending, err := c.Delete(ctx, cm2.DeepCopy(), &client.DeleteOptions{Propagation: "Orphan"}); err != nil || !pending {
		t.Fatalf("orphan delete: pending=%v err=%v", pending, err)
	}
	if err := c.Get(ctx, "default", "o", cm2); err != nil || len(cm2.Finalizers) != 1 || cm2.Finalizers[0] != "orphan" {
		t.Fatalf("orphan finalizer: %v %v", cm2.Finalizers, err)
	}
}

package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
)

// tcpProxy forwards TCP connections to target until cut: the agent's
// path to the API server, which the test breaks to partition the node.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: "127.0.0.1:0", target: target}
	p.listen()
	t.Cleanup(p.cut)
	return p
}

// listen (again) on the proxy's address.
func (p *tcpProxy) listen() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger a moment after cut
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every connection through it.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestFenceOnLostLease: an agent cut off from the API server for longer
// than its Lease's duration stops the pods of StatefulSets and those
// annotated skiff.dev/fence=true, and leaves the others running; once it
// renews its Lease again, the fenced pods run again.
func TestFenceOnLostLease(t *testing.T) {
	e := newEnv(t)
	px := startProxy(t, e.srv.Addr())
	c, err := client.Dial(client.Cluster{Server: "https://" + px.addr, CertificateAuthorityData: e.srv.CACertPEM()},
		client.AuthInfo{Token: e.srv.NodeToken()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	cfg := node.DefaultConfig("fence-1", e.dir, c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = e.marker, e.marker, e.podCIDR
	cfg.HeartbeatInterval, cfg.Resync, cfg.LeaseDuration = 500*time.Millisecond, time.Second, 3*time.Second
	cfg.StreamListen = ":0"
	cfg.Proxy, cfg.DNS = false, false
	cfg.ClusterCIDR = "10.250.0.0/16"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	t.Cleanup(func() { a.Close() })

	sleeper := func(name string, annotations map[string]string, owner *metav1.OwnerReference) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: annotations},
			Spec: corev1.PodSpec{NodeName: "fence-1", TerminationGracePeriodSeconds: int64Ptr(1),
				Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}}}}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return p
	}
	// The StatefulSet need not exist: the agent goes by the pod's owner.
	sts := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "sts-uid", Controller: boolPtr(true)}
	pods := map[string]*corev1.Pod{
		"db-0":     sleeper("db-0", nil, sts),
		"fenced":   sleeper("fenced", map[string]string{node.FenceAnnotation: "true"}, nil),
		"ordinary": sleeper("ordinary", nil, nil),
	}
	runningOnNode := func(name string) (bool, error) {
		st, err := a.Runtime().PodStatus(context.Background(), string(pods[name].UID))
		if errors.Is(err, runtime.ErrPodNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		c, ok := st.Container("main")
		return ok && c.State == runtime.StateRunning, nil
	}
	waitState := func(timeout time.Duration, want map[string]bool) {
		t.Helper()
		nodetest.Poll(t, timeout, "pods running on the node as wanted", func() (bool, error) {
			for name, w := range want {
				got, err := runningOnNode(name)
				if err != nil {
					return false, err
				}
				if got != w {
					return false, errors.New(name + " running: " + map[bool]string{true: "yes", false: "no"}[got])
				}
			}
			return true, nil
		})
	}
	waitState(60*time.Second, map[string]bool{"db-0": true, "fenced": true, "ordinary": true})
	if a.Fenced() {
		t.Fatal("fenced while connected")
	}

	px.cut()
	cutAt := time.Now()
	waitState(30*time.Second, map[string]bool{"db-0": false, "fenced": false})
	stopped := time.Since(cutAt)
	t.Logf("API cut off to fenced pods stopped: %v (lease 3s, heartbeat 0.5s, grace 1s)", stopped.Round(time.Millisecond))
	if stopped < 2*time.Second {
		t.Errorf("fenced pods stopped %v after the cut, before the 3s lease could expire", stopped)
	}
	if !a.Fenced() {
		t.Error("Fenced() false while the pods are fenced")
	}
	if ok, err := runningOnNode("ordinary"); err != nil || !ok {
		t.Errorf("the ordinary pod stopped while fenced: running %v, %v", ok, err)
	}

	px.listen()
	waitState(90*time.Second, map[string]bool{"db-0": true, "fenced": true, "ordinary": true})
	if a.Fenced() {
		t.Error("still fenced after the Lease was renewed")
	}
}

// TestRevokedPodNeverRestarts: the control plane's side of a partition,
// played by the test as the node lifecycle controller does it: while the
// agent is cut off and fenced, its StatefulSet pod db-0 is evicted, the
// node's Lease revoked (skiff.dev/revoked-at, a compare-and-swap) and the
// pod force-deleted, and a replacement db-0 (a new UID) is bound to the
// same node. When the agent reaches the API again, it reads the
// revocation and clears it with its renewal; the old db-0 never runs
// again, whatever its pod cache still shows, and the replacement runs.
func TestRevokedPodNeverRestarts(t *testing.T) {
	e := newEnv(t)
	px := startProxy(t, e.srv.Addr())
	c, err := client.Dial(client.Cluster{Server: "https://" + px.addr, CertificateAuthorityData: e.srv.CACertPEM()},
		client.AuthInfo{Token: e.srv.NodeToken()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	cfg := node.DefaultConfig("fence-2", e.dir, c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = e.marker, e.marker, e.podCIDR
	cfg.HeartbeatInterval, cfg.Resync, cfg.LeaseDuration = 500*time.Millisecond, time.Second, 3*time.Second
	cfg.StreamListen = ":0"
	cfg.Proxy, cfg.DNS = false, false
	cfg.ClusterCIDR = "10.250.0.0/16"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	t.Cleanup(func() { a.Close() })

	sts := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "sts-uid", Controller: boolPtr(true)}
	db0 := func() *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-0", OwnerReferences: []metav1.OwnerReference{sts}},
			Spec: corev1.PodSpec{NodeName: "fence-2", TerminationGracePeriodSeconds: int64Ptr(1),
				Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}}}}
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("create db-0: %v", err)
		}
		return p
	}
	running := func(uid string) (bool, error) {
		st, err := a.Runtime().PodStatus(context.Background(), uid)
		if errors.Is(err, runtime.ErrPodNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		c, ok := st.Container("main")
		return ok && c.State == runtime.StateRunning, nil
	}
	old := db0()
	oldUID := string(old.UID)
	nodetest.Poll(t, 60*time.Second, "db-0 running", func() (bool, error) { return running(oldUID) })

	px.cut()
	nodetest.Poll(t, 30*time.Second, "db-0 fenced", func() (bool, error) {
		r, err := running(oldUID)
		return !r && a.Fenced(), err
	})

	// The controller: evict, revoke, force-delete; the StatefulSet: a new
	// db-0, bound to this node again.
	grace, zero := int64(30), int64(0)
	if _, err := e.c.Delete(ctx, old, &client.DeleteOptions{GracePeriodSeconds: &grace, PreconditionUID: oldUID}); err != nil {
		t.Fatalf("evict db-0: %v", err)
	}
	var l coordinationv1.Lease
	if err := e.c.Get(ctx, corev1.NamespaceNodeLease, "fence-2", &l); err != nil {
		t.Fatal(err)
	}
	l.Annotations = map[string]string{node.LeaseRevokedAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := e.c.Update(ctx, &l); err != nil {
		t.Fatalf("revoke the Lease: %v", err)
	}
	if _, err := e.c.Delete(ctx, old, &client.DeleteOptions{GracePeriodSeconds: &zero, PreconditionUID: oldUID}); err != nil {
		t.Fatalf("force-delete db-0: %v", err)
	}
	newUID := string(db0().UID)

	px.listen()
	nodetest.Poll(t, 60*time.Second, "the new db-0 running, the old one never again", func() (bool, error) {
		if r, err := running(oldUID); err != nil || r {
			if r {
				t.Fatalf("the old db-0 (uid %s) runs again after the Lease was revoked and the pod deleted", oldUID)
			}
			return false, err
		}
		return running(newUID)
	})
	if a.Fenced() {
		t.Error("still fenced with the new db-0 running")
	}
	var after coordinationv1.Lease
	if err := e.c.Get(ctx, corev1.NamespaceNodeLease, "fence-2", &after); err != nil {
		t.Fatal(err)
	}
	if at, ok := after.Annotations[node.LeaseRevokedAnnotation]; ok {
		t.Errorf("the agent renewed without clearing the revocation (%s): it did not read it", at)
	}
	if !after.Spec.RenewTime.After(l.Spec.RenewTime.Time) {
		t.Errorf("Lease not renewed after the heal: renewTime %v", after.Spec.RenewTime)
	}
}

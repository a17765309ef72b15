package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/gossip"
)

// fastGossip detects a dead member in a second or two on loopback, and
// does not suspect a live one falsely on a loaded machine (-race on two
// shared cores).
func fastGossip(t *testing.T, name, role string, join ...string) *gossip.Config {
	c := gossip.DefaultConfig(name, role)
	c.BindAddr, c.BindPort = "127.0.0.1", 0
	c.Join = join
	c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.GossipInterval = 200*time.Millisecond, 100*time.Millisecond, 3, 50*time.Millisecond
	c.RejoinInterval = 500 * time.Millisecond
	c.DeadNodeReclaimTime = 500 * time.Millisecond
	if testing.Verbose() {
		c.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return &c
}

// fakeNode plays a node agent without containers: it joins gossip with
// the cluster's key and, every 200ms, renews its Lease and (when the
// control plane has marked it not Ready, or every 5s) writes its Ready
// status — the agent's heartbeat, in-process.
type fakeNode struct {
	t      *testing.T
	name   string
	c      *client.Client
	join   string
	key    []byte
	pool   *gossip.Pool
	lease  *coordinationv1.Lease // last written
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startFakeNode(t *testing.T, c *client.Client, name, join string, key []byte) *fakeNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := metav1.Now()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}}}
	if err := c.Create(ctx, n); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	f := &fakeNode{t: t, name: name, c: c, join: join, key: key}
	f.up()
	t.Cleanup(f.down)
	return f
}

// up joins gossip and starts heartbeating.
func (f *fakeNode) up() {
	f.t.Helper()
	cfg := fastGossip(f.t, f.name, gossip.RoleAgent, f.join)
	cfg.SecretKey = f.key
	pool, err := gossip.Start(*cfg)
	if err != nil {
		f.t.Fatalf("gossip for %s: %v", f.name, err)
	}
	f.pool = pool
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		var lastStatus time.Time
		for ctx.Err() == nil {
			f.renewLease(ctx)
			if time.Since(lastStatus) > 5*time.Second || !f.readyInAPI(ctx) {
				if f.writeReady(ctx) == nil {
					lastStatus = time.Now()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// down is a crash: gossip stops without a goodbye, heartbeats stop.
func (f *fakeNode) down() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	_ = f.pool.Close()
	f.cancel = nil
}

// renewLease renews the node's Lease with one write (as the agent does),
// reading it afresh only after a failure.
func (f *fakeNode) renewLease(ctx context.Context) {
	now := metav1.NowMicro()
	l := f.lease
	f.lease = nil
	if l == nil {
		l = &coordinationv1.Lease{}
		if err := f.c.Get(ctx, corev1.NamespaceNodeLease, f.name, l); client.IsNotFound(err) {
			secs := int32(40)
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: f.name},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &f.name, LeaseDurationSeconds: &secs, RenewTime: &now}}
			if f.c.Create(ctx, l) == nil {
				f.lease = l
			}
			return
		} else if err != nil {
			return
		}
	}
	l.Spec.RenewTime = &now
	if f.c.Update(ctx, l) == nil {
		f.lease = l
	}
}

func (f *fakeNode) readyInAPI(ctx context.Context) bool {
	var n corev1.Node
	if err := f.c.Get(ctx, "", f.name, &n); err != nil {
		return false
	}
	r := readyCondition(&n)
	return r != nil && r.Status == corev1.ConditionTrue
}

func (f *fakeNode) writeReady(ctx context.Context) error {
	var n corev1.Node
	if err := f.c.Get(ctx, "", f.name, &n); err != nil {
		return err
	}
	now := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: now, LastTransitionTime: now}}
	return f.c.UpdateStatus(ctx, &n)
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

// TestGossipKey: the first server makes a 32-byte key and keeps it in
// kube-system/skiff-gossip-key; a second call (another server) gets the
// same key.
func TestGossipKey(t *testing.T) {
	cfg := testConfig(t, "m0")
	cfg.Gossip = fastGossip(t, "", "")
	cp := startMember(t, cfg)
	c := adminClient(t, cp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s corev1.Secret
	if err := c.Get(ctx, gossip.KeySecretNamespace, gossip.KeySecretName, &s); err != nil {
		t.Fatalf("gossip key secret: %v", err)
	}
	if k := s.Data[gossip.KeySecretDataKey]; len(k) != 32 {
		t.Fatalf("gossip key has %d bytes, want 32", len(k))
	}
	again, err := EnsureGossipKey(ctx, c)
	if err != nil || !bytes.Equal(again, s.Data[gossip.KeySecretDataKey]) {
		t.Fatalf("EnsureGossipKey again = %x, %v; want the stored key", again, err)
	}
	if p := cp.Gossip(); p == nil {
		t.Fatal("no gossip pool")
	} else if m, ok := p.Member("m0"); !ok || m.Role != gossip.RoleServer {
		t.Errorf("the pool's own member = %+v, %v; want m0, a server", m, ok)
	}
}

// TestGossipNodeLoss: a control plane with the default 40s grace period
// and two nodes in its gossip pool. Node n1 crashes (gossip and
// heartbeats stop): gossip's verdict, confirmed by a heartbeat older than
// the confirm age, marks it Unknown and tainted within seconds, and its
// pods are evicted; n2 is left alone. n1 coming back is untainted.
func TestGossipNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and gossip pools")
	}
	cfg := testConfig(t, "m0")
	cfg.Gossip = fastGossip(t, "", "")
	// Above the worst stall of the fake nodes' renewals under load.
	cfg.NodeHealthConfirmAge = 5 * time.Second
	cfg.PodEvictionTimeout = time.Second
	cfg.DisableScheduler = true
	cp := startMember(t, cfg)
	c := adminClient(t, cp)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eventually(t, 30*time.Second, "m0 leads", func() error {
		if !cp.Leading() {
			return fmt.Errorf("not leading")
		}
		return nil
	})
	key, err := EnsureGossipKey(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	join := cp.Gossip().LocalAddr()
	n1 := startFakeNode(t, c, "n1", join, key)
	startFakeNode(t, c, "n2", join, key)
	eventually(t, 10*time.Second, "n1 and n2 alive in the server's pool", func() error {
		for _, n := range []string{"n1", "n2"} {
			if m, ok := cp.Gossip().Member(n); !ok || m.State != gossip.Alive {
				return fmt.Errorf("%s: %+v", n, m)
			}
		}
		return nil
	})
	for _, p := range []struct{ name, node string }{{"a", "n1"}, {"b", "n1"}, {"c", "n2"}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: p.name},
			Spec: corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}

	node := func(name string) *corev1.Node {
		var n corev1.Node
		if err := c.Get(ctx, "", name, &n); err != nil {
			t.Fatalf("get node %s: %v", name, err)
		}
		return &n
	}
	livePodsOn := func(nodeName string) []string {
		var l corev1.PodList
		if err := c.List(ctx, "default", &l, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range l.Items {
			if p.Spec.NodeName == nodeName && p.DeletionTimestamp == nil {
				out = append(out, p.Name)
			}
		}
		return out
	}

	crash := time.Now()
	n1.down()
	eventually(t, 30*time.Second, "n1 Unknown and tainted unreachable", func() error {
		n := node("n1")
		r := readyCondition(n)
		if r == nil || r.Status != corev1.ConditionUnknown || !hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) ||
			!hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) {
			return fmt.Errorf("ready %+v taints %v", r, n.Spec.Taints)
		}
		if !strings.Contains(r.Message, "gossip") {
			return fmt.Errorf("marked, but not on gossip's verdict: %q", r.Message)
		}
		return nil
	})
	marked := time.Since(crash)
	t.Logf("node crash to Ready=Unknown + unreachable taint: %v (grace period 40s, confirm age 5s)", marked.Round(time.Millisecond))
	if marked >= 20*time.Second {
		t.Errorf("node loss took %v to detect; gossip should cut the 40s grace period to seconds", marked)
	}
	eventually(t, 15*time.Second, "n1's pods evicted", func() error {
		if got := livePodsOn("n1"); len(got) != 0 {
			return fmt.Errorf("pods still on n1: %v", got)
		}
		return nil
	})
	t.Logf("node crash to its pods evicted: %v (eviction timeout 1s)", time.Since(crash).Round(time.Millisecond))
	n2 := node("n2")
	if r := readyCondition(n2); r == nil || r.Status != corev1.ConditionTrue || len(n2.Spec.Taints) != 0 {
		t.Errorf("n2, alive, was marked: ready %+v taints %v", r, n2.Spec.Taints)
	}
	if got := livePodsOn("n2"); len(got) != 1 {
		t.Errorf("pods on n2 = %v, want [c]", got)
	}

	n1.up()
	eventually(t, 15*time.Second, "n1 Ready and untainted on return", func() error {
		n := node("n1")
		if r := readyCondition(n); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
			return fmt.Errorf("ready %+v taints %v", r, n.Spec.Taints)
		}
		return nil
	})
	eventually(t, 10*time.Second, "n1 alive again in the server's pool", func() error {
		if m, ok := cp.Gossip().Member("n1"); !ok || m.State != gossip.Alive {
			return fmt.Errorf("n1: %+v", m)
		}
		return nil
	})
	// Alive again and heartbeating: it stays Ready past the confirm age.
	time.Sleep(6 * time.Second)
	if n := node("n1"); len(n.Spec.Taints) != 0 {
		t.Errorf("n1 tainted again after its return: %v", n.Spec.Taints)
	}
}

// TestGossipNotAlone: a node that gossip holds dead but that keeps
// renewing its Lease (a gossip-only partition) is never marked.
func TestGossipNotAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and gossip pools")
	}
	cfg := testConfig(t, "m0")
	cfg.Gossip = fastGossip(t, "", "")
	cfg.NodeHealthConfirmAge = 3 * time.Second
	cfg.DisableScheduler = true
	cp := startMember(t, cfg)
	c := adminClient(t, cp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := EnsureGossipKey(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	n1 := startFakeNode(t, c, "n1", cp.Gossip().LocalAddr(), key)
	eventually(t, 10*time.Second, "n1 alive in the server's pool", func() error {
		if m, ok := cp.Gossip().Member("n1"); !ok || m.State != gossip.Alive {
			return fmt.Errorf("n1: %+v", m)
		}
		return nil
	})
	// Gossip only: the pool closes, the heartbeats go on.
	_ = n1.pool.Close()
	eventually(t, 10*time.Second, "n1 dead in the server's pool", func() error {
		if down, _ := cp.Gossip().NodeDown("n1"); !down {
			return fmt.Errorf("not down")
		}
		return nil
	})
	time.Sleep(6 * time.Second) // two confirm ages
	var n corev1.Node
	if err := c.Get(ctx, "", "n1", &n); err != nil {
		t.Fatal(err)
	}
	if r := readyCondition(&n); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Errorf("n1 marked on gossip alone: ready %+v taints %v", r, n.Spec.Taints)
	}
}

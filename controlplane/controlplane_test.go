package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

// testConfig is a member on loopback ports picked by the kernel, with its
// files in a temp dir.
func testConfig(t *testing.T, name string) Config {
	cfg := DefaultConfig()
	cfg.Store.Name = name
	cfg.Store.ListenClient = "127.0.0.1:0"
	cfg.Store.ListenPeer = "127.0.0.1:0"
	cfg.ListenAPI = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	cfg.AdminConfigPath = filepath.Join(t.TempDir(), "config")
	cfg.LeaderCheckInterval = 50 * time.Millisecond
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.Logger = testLogger(t)
	return cfg
}

func startMember(t *testing.T, cfg Config) *ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start %s: %v", cfg.Store.Name, err)
	}
	t.Cleanup(func() {
		if err := cp.Close(); err != nil && !errors.Is(err, ErrStoreStopTimeout) {
			t.Errorf("Close %s: %v", cfg.Store.Name, err)
		}
	})
	return cp
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

func adminClient(t *testing.T, cp *ControlPlane) *client.Client {
	t.Helper()
	cfg, err := cp.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSingleMember(t *testing.T) {
	cfg := testConfig(t, "m0")
	cp := startMember(t, cfg)

	if !strings.HasPrefix(cp.APIURL(), "https://127.0.0.1:") {
		t.Errorf("APIURL = %q, want https://127.0.0.1:<port>", cp.APIURL())
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "node-token"))
	if err != nil {
		t.Fatalf("node token file: %v", err)
	}
	if got := strings.TrimSpace(string(tok)); got != cp.NodeToken() || got == "" {
		t.Errorf("node-token file holds %q, NodeToken() = %q", got, cp.NodeToken())
	}
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, "node-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node-token mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if len(cp.CACertPEM()) == 0 {
		t.Error("no CA certificate")
	}
	if _, err := client.LoadConfig(cfg.AdminConfigPath); err != nil {
		t.Errorf("admin config at %s: %v", cfg.AdminConfigPath, err)
	}

	c := adminClient(t, cp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nss corev1.NamespaceList
	if err := c.List(ctx, "", &nss, client.ListOptions{}); err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	eventually(t, 10*time.Second, "leader duties start", func() error {
		if !cp.Leading() {
			return fmt.Errorf("not leading")
		}
		return nil
	})

	// The controllers and the scheduler run: a Deployment gets its pods,
	// bound to the one node.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	// The node IPAM and lifecycle controllers write the Node as soon as it
	// exists, so the status write is a read-modify-write like an agent's.
	err = client.RetryOnConflict(ctx, 10, func() error {
		if err := c.Get(ctx, "", "node-1", node); err != nil {
			return err
		}
		node.Status.Allocatable = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("4Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		return c.UpdateStatus(ctx, node)
	})
	if err != nil {
		t.Fatal(err)
	}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox"}}},
			},
		},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "deployment pods created and bound", func() error {
		var pods corev1.PodList
		if err := c.List(ctx, "default", &pods, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods, want 2", len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != "node-1" {
				return fmt.Errorf("pod %s bound to %q, want node-1", p.Name, p.Spec.NodeName)
			}
		}
		return nil
	})
}

func TestNoAPI(t *testing.T) {
	cfg := testConfig(t, "m0")
	cfg.NoAPI = true
	cp := startMember(t, cfg)
	if cp.APIURL() != "" || cp.NodeToken() != "" {
		t.Errorf("NoAPI member has an API: %q", cp.APIURL())
	}
	if _, err := cp.AdminConfig(); err != ErrNoAPI {
		t.Errorf("AdminConfig err = %v, want ErrNoAPI", err)
	}
	if cp.Store().ClientAddr() == "" {
		t.Error("no store client address")
	}
	select {
	case <-cp.Done():
		t.Error("Done is closed while the store-only member runs")
	default:
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cp.Done():
	default:
		t.Error("Done is still open after Close")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir is required"},
		{"bad listen", func(c *Config) { c.ListenAPI = "6443" }, "--listen-api \"6443\": want host:port"},
		{"advertise with port", func(c *Config) { c.AdvertiseAPI = "10.0.0.1:6443" }, "without a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "m0")
			tc.mod(&cfg)
			_, err := Start(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestAPIPortTaken(t *testing.T) {
	first := startMember(t, testConfig(t, "m0"))
	_, port, _ := strings.Cut(strings.TrimPrefix(first.APIURL(), "https://"), ":")

	// An explicit address that is taken is an error naming the flag.
	cfg := testConfig(t, "m1")
	cfg.ListenAPI = "127.0.0.1:" + port
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--listen-api") {
		t.Fatalf("Start on a taken API port: err = %v, want one naming --listen-api", err)
	}
}

// leaders returns the members running the leader duties.
func leaders(cps []*ControlPlane) []int {
	var out []int
	for i, cp := range cps {
		if cp != nil && cp.Leading() {
			out = append(out, i)
		}
	}
	return out
}

// startThree starts a 3-member control plane: m0 bootstraps, m1 and m2
// join it.
func startThree(t *testing.T) []*ControlPlane {
	cps := []*ControlPlane{startMember(t, testConfig(t, "m0"))}
	for _, name := range []string{"m1", "m2"} {
		cfg := testConfig(t, name)
		cfg.Store.Join = []string{cps[0].Store().PeerAddr()}
		cps = append(cps, startMember(t, cfg))
	}
	return cps
}

// TestLeaderCrash: the leader's store dies without handing leadership
// over; another member is elected and takes the duties within seconds,
// and the dead one stops its own.
func TestLeaderCrash(t *testing.T) {
	cps := startThree(t)
	var lead int
	eventually(t, 15*time.Second, "one member runs the leader duties", func() error {
		l := leaders(cps)
		if len(l) != 1 {
			return fmt.Errorf("leading: %v", l)
		}
		lead = l[0]
		return nil
	})
	crashed := cps[lead]
	_ = crashed.Store().Close() // no leadership transfer: a crash
	start := time.Now()
	eventually(t, 20*time.Second, "a surviving member takes the leader duties over", func() error {
		if crashed.Leading() {
			return fmt.Errorf("the crashed member still runs the duties")
		}
		for i, cp := range cps {
			if i != lead && cp.Leading() {
				return nil
			}
		}
		return fmt.Errorf("no survivor leads")
	})
	t.Logf("leader duties taken over %v after the crash", time.Since(start).Round(time.Millisecond))
}

func TestThreeMembersHandOver(t *testing.T) {
	cps := startThree(t)
	// Every member serves the API, with one CA and one node token.
	for i, cp := range cps[1:] {
		if cp.NodeToken() != cps[0].NodeToken() || string(cp.CACertPEM()) != string(cps[0].CACertPEM()) {
			t.Errorf("member m%d has another node token or CA than m0", i+1)
		}
	}
	var lead int
	eventually(t, 15*time.Second, "exactly one member runs the leader duties", func() error {
		l := leaders(cps)
		if len(l) != 1 {
			return fmt.Errorf("leading: %v", l)
		}
		if !cps[l[0]].Store().IsLeader() {
			return fmt.Errorf("m%d runs the duties but does not lead raft", l[0])
		}
		lead = l[0]
		return nil
	})

	// Stop the leader: another member takes the duties over, and pods
	// created through a surviving member are still scheduled.
	if err := cps[lead].Close(); err != nil {
		// A raftstore shutdown hang after a leadership transfer (raft
		// replication blocked on a dead pipeline) is bounded by Close and
		// is not what this test is about; the hand-over must still happen.
		t.Logf("closing the leader: %v", err)
	}
	cps[lead] = nil
	start := time.Now()
	eventually(t, 20*time.Second, "another member takes the leader duties over", func() error {
		if l := leaders(cps); len(l) != 1 {
			return fmt.Errorf("leading: %v", l)
		}
		return nil
	})
	t.Logf("leader duties handed over in %v", time.Since(start).Round(time.Millisecond))

	survivor := cps[(lead+1)%3]
	c := adminClient(t, survivor)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	eventually(t, 20*time.Second, "node created", func() error {
		err := c.Create(ctx, node)
		if client.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	node.Status = corev1.NodeStatus{
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("110")},
		Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}
	if err := client.RetryOnConflict(ctx, 5, func() error {
		cur := &corev1.Node{}
		if err := c.Get(ctx, "", "node-1", cur); err != nil {
			return err
		}
		cur.Status = node.Status
		return c.UpdateStatus(ctx, cur)
	}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "after-failover", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "pod bound after the failover", func() error {
		p := &corev1.Pod{}
		if err := c.Get(ctx, "default", "after-failover", p); err != nil {
			return err
		}
		if p.Spec.NodeName != "node-1" {
			return fmt.Errorf("nodeName %q", p.Spec.NodeName)
		}
		return nil
	})
}

package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/client"
)

// benchAgentEnv, set in the environment of a re-executed test binary,
// makes it run an agent (configured by the JSON value) until SIGTERM, so
// that its memory is measured apart from the API server's.
const benchAgentEnv = "SKIFF_NODE_TEST_AGENT"

type childAgent struct {
	Server, Token, CAFile               string
	Name, DataDir, Bridge, Cgroup, CIDR string
}

// runChildAgent is the child's main.
func runChildAgent(spec string) int {
	var ca childAgent
	if err := json.Unmarshal([]byte(spec), &ca); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := client.Dial(client.Cluster{Server: ca.Server, CertificateAuthorityData: pem}, client.AuthInfo{Token: ca.Token})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := node.DefaultConfig(ca.Name, ca.DataDir, c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = ca.Bridge, ca.Cgroup, ca.CIDR
	cfg.MaxPods = 250
	cfg.Proxy, cfg.DNS = false, false // several agents on one host
	level := slog.LevelWarn
	if os.Getenv("SKIFF_BENCH_LOG") == "debug" {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if exe, err := os.Executable(); err == nil {
		cfg.LoggerBinary = exe
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	a, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	a.Close()
	return 0
}

// rssKB is VmRSS of a process.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// shimsRSS sums the RSS of the runc shims whose command line names dir.
func shimsRSS(dir string) (n int, kb int64) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "containerd-shim-runc-v2") && strings.Contains(string(cmd), dir) {
			n++
			kb += rssKB(pid)
		}
	}
	return n, kb
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestBenchPods measures pod start latency (create → Running as seen
// through a watch) on one node with a local image, one pod at a time and
// N at once, and the agent's and containerd's memory. A figure, not an
// assertion: `make bench-pods` (SKIFF_BENCH_PODS=100) runs it. Pods are
// created bound to the node (no scheduler in the path).
func TestBenchPods(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_PODS"))
	if n <= 0 {
		t.Skip("set SKIFF_BENCH_PODS=100 (make bench-pods) to run the pod start benchmark")
	}
	e := newEnv(t)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, e.srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(childAgent{Server: e.srv.URL(), Token: e.srv.NodeToken(), CAFile: caFile,
		Name: "bench", DataDir: e.dir, Bridge: e.marker, Cgroup: e.marker, CIDR: e.podCIDR})
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchAgentEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	nodetest.Poll(t, 60*time.Second, "bench node Ready", func() (bool, error) {
		nd := &corev1.Node{}
		if err := e.c.Get(context.Background(), "", "bench", nd); err != nil {
			return false, err
		}
		for _, c := range nd.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	idleAgent := rssKB(cmd.Process.Pid)
	containerdPid := 0
	if b, err := os.ReadFile(filepath.Join(e.dir, "containerd", "containerd.pid")); err == nil {
		containerdPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	idleContainerd := rssKB(containerdPid)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// round creates count pods at once and returns each one's create →
	// Running latency and the time until all ran.
	var createdAll time.Duration
	round := func(prefix string, count int) ([]time.Duration, time.Duration) {
		var list corev1.PodList
		if err := e.c.List(ctx, "default", &list, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		events, werr, err := e.c.Watch(wctx, "default", &corev1.Pod{}, client.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		created := map[string]time.Time{}
		createdCh := make(chan [2]any, count)
		start := time.Now()
		createDone := make(chan time.Duration, 1)
		go func() {
			defer func() { createDone <- time.Since(start) }()
			for i := 0; i < count; i++ {
				name := fmt.Sprintf("%s-%d", prefix, i)
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
					Spec: corev1.PodSpec{NodeName: "bench", TerminationGracePeriodSeconds: int64Ptr(0),
						Containers: []corev1.Container{{Name: "c", Image: "skiff.local/busybox:latest", Command: []string{"sleep", "3600"},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("4Mi")}}}}}}
				at := time.Now()
				if err := e.c.Create(ctx, p); err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				createdCh <- [2]any{name, at}
			}
		}()
		var lat []time.Duration
		seen := map[string]bool{}
		pending := map[string]time.Time{} // Running seen before the create returned
		for len(lat) < count {
			select {
			case c := <-createdCh:
				created[c[0].(string)] = c[1].(time.Time)
				if at, ok := pending[c[0].(string)]; ok {
					lat = append(lat, at.Sub(c[1].(time.Time)))
				}
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("watch ended: %v", werr())
				}
				p, _ := ev.Object.(*corev1.Pod)
				if p == nil || seen[p.Name] || !strings.HasPrefix(p.Name, prefix+"-") || p.Status.Phase != corev1.PodRunning {
					continue
				}
				seen[p.Name] = true
				now := time.Now()
				if at, ok := created[p.Name]; ok {
					lat = append(lat, now.Sub(at))
				} else {
					pending[p.Name] = now
				}
			case <-ctx.Done():
				t.Fatalf("%s: %d of %d pods Running before the deadline", prefix, len(lat), count)
			}
		}
		took := time.Since(start)
		createdAll = <-createDone
		return lat, took
	}

	var singles []time.Duration
	for i := 0; i < 20; i++ {
		lat, _ := round(fmt.Sprintf("one%d", i), 1)
		singles = append(singles, lat...)
	}
	lat, all := round("many", n)
	busyAgent := rssKB(cmd.Process.Pid)
	busyContainerd := rssKB(containerdPid)
	shims, shimKB := shimsRSS(e.dir)

	fmt.Printf("\npod start latency, create → Running through a watch (one node, local image, pods bound at create):\n")
	fmt.Printf("  %-22s p50 %-8v p99 %-8v\n", "1 pod at a time (x20)", percentile(singles, 0.5).Round(time.Millisecond), percentile(singles, 0.99).Round(time.Millisecond))
	fmt.Printf("  %-22s p50 %-8v p99 %-8v all Running after %v (the creates took %v)\n", fmt.Sprintf("%d pods at once", n),
		percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond), all.Round(time.Millisecond),
		createdAll.Round(time.Millisecond))
	fmt.Printf("memory (VmRSS):\n")
	fmt.Printf("  agent       %6.1f MB idle, %6.1f MB with %d pods\n", float64(idleAgent)/1024, float64(busyAgent)/1024, n+20)
	fmt.Printf("  containerd  %6.1f MB idle, %6.1f MB with %d pods\n", float64(idleContainerd)/1024, float64(busyContainerd)/1024, n+20)
	fmt.Printf("  runc shims  %d, %.1f MB in total\n\n", shims, float64(shimKB)/1024)
}

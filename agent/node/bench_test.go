package node_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
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
	"github.com/skiffhq/skiff/client"
)

// skiffBinary is the binary the benchmark runs as the agent: $SKIFF_BINARY
// (make bench-pods builds it), else one `go build` of ./cmd/skiff, so the
// memory measured is that of `skiff agent` itself, not of a test binary
// that also links the API server.
func skiffBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("SKIFF_BINARY"); b != "" {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("SKIFF_BINARY=%s: %v", b, err)
		}
		return b
	}
	out := filepath.Join(t.TempDir(), "skiff")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/skiffhq/skiff/cmd/skiff")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/skiff: %v\n%s", err, b)
	}
	return out
}

// procMemory is a process's resident memory from /proc/PID/status, in kB:
// all of it, anonymous (heap, stacks) and file-backed (mostly the
// binary's text and data pages).
type procMemory struct{ rss, anon, file int64 }

func readProcMemory(pid int) procMemory {
	var m procMemory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{-1, -1, -1}
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		}
	}
	return m
}

// binaryPages splits a process's file-backed resident memory of its own
// executable by mapping: text (r-x), read-only data (r--: type
// information, the function tables the runtime reads for stacks and GC)
// and data (rw-), in kB, from /proc/PID/smaps; and its proportional set
// size (PSS: shared pages divided among the processes mapping them, e.g.
// the cri-loggers, which run the same binary).
func binaryPages(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return ""
	}
	byPerm := map[string]int64{}
	var perm string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			perm = ""
			if len(f) >= 6 && f[5] == exe {
				perm = f[1][:3]
			}
		case len(f) >= 2 && f[0] == "Rss:" && perm != "":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			byPerm[perm] += n
		}
	}
	var pss, pssAnon, pssFile int64
	if r, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, l := range strings.Split(string(r), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Pss:":
				pss = n
			case "Pss_Anon:":
				pssAnon = n
			case "Pss_File:":
				pssFile = n
			}
		}
	}
	mb := func(kb int64) float64 { return float64(kb) / 1024 }
	return fmt.Sprintf("binary pages: text %.1f MB, read-only data %.1f MB, data %.1f MB; PSS %.1f MB (anon %.1f, file %.1f)",
		mb(byPerm["r-x"]), mb(byPerm["r--"]), mb(byPerm["rw-"]), mb(pss), mb(pssAnon), mb(pssFile))
}

func (m procMemory) String() string {
	return fmt.Sprintf("%5.1f MB (anon %5.1f, file %5.1f)", float64(m.rss)/1024, float64(m.anon)/1024, float64(m.file)/1024)
}

// goMemStats reads the runtime.MemStats lines of the agent's heap profile
// (skiff agent --listen-debug) and saves the profile as name under
// $SKIFF_BENCH_PROFILES when that is set.
func goMemStats(t *testing.T, debugAddr, name string) string {
	get := func(q string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/pprof/heap"+q, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Logf("heap profile: %v", err)
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	if dir := os.Getenv("SKIFF_BENCH_PROFILES"); dir != "" {
		if b := get("?gc=1"); b != nil {
			_ = os.WriteFile(filepath.Join(dir, name+".heap.pb.gz"), b, 0o644)
		}
	}
	want := map[string]bool{"HeapAlloc": true, "HeapInuse": true, "HeapIdle": true, "HeapReleased": true, "Stack": true, "Sys": true, "NumGC": true}
	var parts []string
	for _, l := range strings.Split(string(get("?debug=1")), "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "# "))
		if len(f) == 3 && f[1] == "=" && want[f[0]] {
			v := f[2]
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && f[0] != "NumGC" {
				v = fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
			} else if f[0] == "Stack" { // "Stack = inuse / sys"
				continue
			}
			parts = append(parts, f[0]+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}

// shimsRSS sums the RSS of the runc shims whose command line names dir.
func shimsRSS(dir string) (n int, kb int64) {
	for _, pid := range shimsOf(dir) {
		n++
		kb += readProcMemory(pid).rss
	}
	return n, kb
}

// shimsOf lists the containerd shims serving the containerd under dir (its
// socket path is on their command line).
func shimsOf(dir string) []int { return procsWith("containerd-shim-runc-v2", dir) }

// procsWith lists the processes whose command line holds every one of parts.
func procsWith(parts ...string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmd, all := string(b), len(b) > 0
		for _, p := range parts {
			all = all && strings.Contains(cmd, p)
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

// benchLeftovers lists what the benchmark's node left on the host: pod
// network namespaces (named after the bridge), cgroups at any depth of any
// hierarchy whose name holds the marker, mounts under its data dir (pinned
// UTS/IPC namespaces, volumes, rootfs) and shims of its containerd.
func benchLeftovers(dir, marker string) []string {
	var out []string
	if ents, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range ents {
			if strings.Contains(e.Name(), marker) {
				out = append(out, "netns /var/run/netns/"+e.Name())
			}
		}
	}
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hier {
		root := filepath.Join("/sys/fs/cgroup", h.Name())
		// Pod cgroups live under <marker>/pod<uid>/: a marker directory
		// anywhere shows one, so the walk stops at the first level that
		// names it.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Contains(d.Name(), marker) {
				sub := 0
				_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, _ error) error {
					if d != nil && d.IsDir() {
						sub++
					}
					return nil
				})
				out = append(out, fmt.Sprintf("cgroup %s (%d directories)", p, sub))
				return fs.SkipDir
			}
			if strings.Count(strings.TrimPrefix(p, root), "/") >= 2 {
				return fs.SkipDir // only the top levels can hold the marker dir
			}
			return nil
		})
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				out = append(out, "mount "+f[4])
			}
		}
	}
	for _, pid := range shimsOf(dir) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("shim pid %d: %s", pid, strings.ReplaceAll(strings.TrimSpace(string(cmd)), "\x00", " ")))
	}
	return out
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
	bin := skiffBinary(t)
	// Registered before the node's own cleanups, so it runs after them:
	// the teardown must have left nothing of this node on the host.
	var dir, marker string
	t.Cleanup(func() {
		if dir == "" {
			return
		}
		if left := benchLeftovers(dir, marker); len(left) > 0 {
			t.Errorf("the benchmark's teardown left %d things on the host:\n%s", len(left), strings.Join(left, "\n"))
		}
	})
	e := newEnv(t)
	dir, marker = e.dir, e.marker
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, e.srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The real `skiff agent`, with the cluster DNS and the Ingress router
	// (on free ports). Not the service proxy: its iptables chains are
	// global to the host, which other tests share. No gossip: the bare
	// API server runs no pool to join.
	debugAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"agent", "--server", e.srv.URL(), "--token", e.srv.NodeToken(), "--ca-file", caFile,
		"--name", "bench", "--data-dir", e.dir, "--bridge", e.marker, "--cgroup-parent", e.marker,
		"--pod-cidr", e.podCIDR, "--cluster-cidr", "10.250.0.0/16", "--max-pods", "250",
		"--disable-proxy", "--disable-gossip",
		"--ingress-http-port", strconv.Itoa(freePort(t)), "--ingress-https-port", strconv.Itoa(freePort(t)),
		"--listen-streams", "127.0.0.1:0", "--listen-debug", debugAddr, "--log-level", "info"}
	// The log (info: a line per sandbox and container start) gives the
	// phase breakdown; it is printed in full when the test fails.
	agentLog := filepath.Join(t.TempDir(), "agent.log")
	logFile, err := os.Create(agentLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(agentLog)
			t.Logf("agent log:\n%s", b)
		}
	})
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SKIFF_BENCH_AGENT_ENV ("GOGC=50 GOMEMLIMIT=16MiB") tries the agent
	// with other Go runtime settings.
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("SKIFF_BENCH_AGENT_ENV"))...)
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
		select {
		case <-exited:
			return false, fmt.Errorf("skiff agent exited: %v", cmd.ProcessState)
		default:
		}
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
	time.Sleep(2 * time.Second) // let the start's garbage be collected
	idleAgent := readProcMemory(cmd.Process.Pid)
	idlePages := binaryPages(cmd.Process.Pid)
	idleGo := goMemStats(t, debugAddr, "idle")
	containerdPid := 0
	if b, err := os.ReadFile(filepath.Join(e.dir, "containerd", "containerd.pid")); err == nil {
		containerdPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	idleContainerd := readProcMemory(containerdPid)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// round creates count pods at once and returns each one's create →
	// Running latency and the time until all ran.
	var createdAll time.Duration
	createdAt, runningAt := map[string]time.Time{}, map[string]time.Time{} // by pod name, every round
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
				createdAt[c[0].(string)] = c[1].(time.Time)
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
				runningAt[p.Name] = now
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
	cpuBefore := benchCPU(cmd.Process.Pid, containerdPid, e.dir)
	profDone := make(chan struct{})
	go func() { // the agent's CPU profile of the round (SKIFF_BENCH_PROFILES)
		defer close(profDone)
		saveCPUProfile(debugAddr, 30*time.Second)
	}()
	lat, all := round("many", n)
	cpuAfter := benchCPU(cmd.Process.Pid, containerdPid, e.dir)
	<-profDone
	busyAgent := readProcMemory(cmd.Process.Pid)
	busyPages := binaryPages(cmd.Process.Pid)
	busyGo := goMemStats(t, debugAddr, "busy")
	busyContainerd := readProcMemory(containerdPid)
	shims, shimKB := shimsRSS(e.dir)
	load, _ := os.ReadFile("/proc/loadavg")

	fmt.Printf("\npod start latency, create → Running through a watch (one node, local image, pods bound at create):\n")
	fmt.Printf("  %-22s p50 %-8v p99 %-8v\n", "1 pod at a time (x20)", percentile(singles, 0.5).Round(time.Millisecond), percentile(singles, 0.99).Round(time.Millisecond))
	fmt.Printf("  %-22s p50 %-8v p99 %-8v all Running after %v (the creates took %v)\n", fmt.Sprintf("%d pods at once", n),
		percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond), all.Round(time.Millisecond),
		createdAll.Round(time.Millisecond))
	fmt.Printf("memory (VmRSS = RssAnon + RssFile):\n")
	fmt.Printf("  skiff agent  idle            %s\n", idleAgent)
	fmt.Printf("  skiff agent  with %3d pods   %s\n", n+20, busyAgent)
	fmt.Printf("    idle: %s\n", idlePages)
	fmt.Printf("    busy: %s\n", busyPages)
	fmt.Printf("    Go runtime idle: %s\n", idleGo)
	fmt.Printf("    Go runtime busy: %s\n", busyGo)
	fmt.Printf("  containerd   idle            %s\n", idleContainerd)
	fmt.Printf("  containerd   with %3d pods   %s\n", n+20, busyContainerd)
	fmt.Printf("  runc shims   %d, %.1f MB in total\n", shims, float64(shimKB)/1024)
	fmt.Printf("CPU seconds used during the %d-pod round (%v wall, %d CPUs):\n", n, all.Round(time.Millisecond), goruntime.NumCPU())
	cpuAfter.sub(cpuBefore).print(os.Stdout)
	for _, prefix := range []string{"one", "many-"} {
		if err := printPhases(os.Stdout, agentLog, prefix, createdAt, runningAt); err != nil {
			t.Logf("no phase breakdown: %v", err)
		}
	}
	printAgentProblems(os.Stdout, agentLog)
	fmt.Printf("load average at the end: %s\n", strings.TrimSpace(string(load)))
}

// cpuTimes are CPU seconds (user + system) of the node's processes and of
// the whole machine.
type cpuTimes struct {
	agent, agentChildren           float64 // children: CNI plugins, ip
	containerd, containerdChildren float64 // children: shim start-up
	shims, shimChildren            float64 // children: runc
	loggers                        float64 // skiff cri-logger, one per container
	machine                        float64 // every CPU, everyone's work
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{c.agent - o.agent, c.agentChildren - o.agentChildren, c.containerd - o.containerd,
		c.containerdChildren - o.containerdChildren, c.shims - o.shims, c.shimChildren - o.shimChildren,
		c.loggers - o.loggers, c.machine - o.machine}
}

func (c cpuTimes) print(w io.Writer) {
	fmt.Fprintf(w, "  agent %.1f (+%.1f its children: CNI plugins), containerd %.1f (+%.1f), shims %.1f (+%.1f runc), cri-loggers %.1f; machine %.1f in all\n",
		c.agent, c.agentChildren, c.containerd, c.containerdChildren, c.shims, c.shimChildren, c.loggers, c.machine)
}

// procCPU is a process's own and its reaped children's CPU seconds.
func procCPU(pid int) (self, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0
	}
	tick := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v / 100 } // USER_HZ
	return tick(11) + tick(12), tick(13) + tick(14)                                      // utime stime cutime cstime
}

func benchCPU(agentPid, containerdPid int, dir string) cpuTimes {
	var c cpuTimes
	c.agent, c.agentChildren = procCPU(agentPid)
	c.containerd, c.containerdChildren = procCPU(containerdPid)
	for _, pid := range shimsOf(dir) {
		s, ch := procCPU(pid)
		c.shims += s
		c.shimChildren += ch
	}
	for _, pid := range procsWith("cri-logger", dir) {
		s, _ := procCPU(pid)
		c.loggers += s
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, v := range f[1:] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseFloat(v, 64)
			c.machine += n / 100
		}
	}
	return c
}

// saveCPUProfile saves the agent's CPU profile of the next d under
// $SKIFF_BENCH_PROFILES, when that is set.
func saveCPUProfile(debugAddr string, d time.Duration) {
	dir := os.Getenv("SKIFF_BENCH_PROFILES")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, int(d.Seconds())), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(filepath.Join(dir, "round.cpu.pb.gz"), b, 0o644)
}

// agentLine is one line of the agent's text log.
type agentLine struct {
	at              time.Time
	level, msg, pod string
}

var logField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`)

func readAgentLog(path string) ([]agentLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []agentLine
	for _, l := range strings.Split(string(b), "\n") {
		var al agentLine
		for _, m := range logField.FindAllStringSubmatch(l, -1) {
			v := m[2]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			switch m[1] {
			case "time":
				al.at, _ = time.Parse(time.RFC3339Nano, v)
			case "level":
				al.level = v
			case "msg":
				al.msg = v
			case "pod":
				al.pod = v
			}
		}
		if !al.at.IsZero() {
			out = append(out, al)
		}
	}
	return out, nil
}

// printPhases splits the create → Running latency of the pods named
// prefix* into what the agent's log shows: create → sandbox made (the
// informer, the wait for a start slot, netns + CNI + cgroup + pinned
// namespaces), sandbox → container started, started → Running seen through
// the watch (status write and watch delivery). p50/p99 of each.
func printPhases(w io.Writer, path, prefix string, createdAt, runningAt map[string]time.Time) error {
	lines, err := readAgentLog(path)
	if err != nil {
		return err
	}
	sandbox, started := map[string]time.Time{}, map[string]time.Time{}
	for _, l := range lines {
		name, ok := strings.CutPrefix(l.pod, "default/")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		switch l.msg {
		case "sandbox created":
			sandbox[name] = l.at
		case "container started":
			started[name] = l.at
		}
	}
	var toSandbox, toStarted, toSeen []time.Duration
	for name, c := range createdAt {
		s, ok1 := sandbox[name]
		st, ok2 := started[name]
		r, ok3 := runningAt[name]
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		toSandbox = append(toSandbox, s.Sub(c))
		toStarted = append(toStarted, st.Sub(s))
		toSeen = append(toSeen, r.Sub(st))
	}
	if len(toSandbox) == 0 {
		return fmt.Errorf("no pod %s* has all of sandbox created, container started and Running", prefix)
	}
	fmt.Fprintf(w, "where the time of the %d pods %s* went (p50 / p99), from the agent's log:\n", len(toSandbox), prefix)
	for _, r := range []struct {
		what string
		d    []time.Duration
	}{{"create → sandbox made (informer, start slot, netns+CNI+cgroup+namespaces)", toSandbox},
		{"sandbox → container started", toStarted},
		{"container started → Running seen (status write, watch)", toSeen}} {
		fmt.Fprintf(w, "  %-72s %8v / %8v\n", r.what, percentile(r.d, 0.5).Round(time.Millisecond), percentile(r.d, 0.99).Round(time.Millisecond))
	}
	return nil
}

// printAgentProblems prints the agent's warnings and errors (the first 20).
func printAgentProblems(w io.Writer, path string) {
	lines, err := readAgentLog(path)
	if err != nil {
		return
	}
	n := 0
	for _, l := range lines {
		if l.level != "WARN" && l.level != "ERROR" {
			continue
		}
		if n < 20 {
			fmt.Fprintf(w, "  agent %s %s %s %s\n", l.at.Format("15:04:05.000"), l.level, l.pod, l.msg)
		}
		n++
	}
	if n > 0 {
		fmt.Fprintf(w, "agent warnings and errors: %d\n", n)
	}
}

package multinode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/internal/netlab"
)

// Node names the testdata manifests refer to (nodeName of the probe pods).
var nodeNames = []string{"node-a", "node-b", "node-c"}

// proc is a process the harness started on a host, stopped by its pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc starts bin on host h, its output appended to logPath. The
// process has its own process group (a ^C reaches only the test binary,
// which then cleans up) and is killed if the test binary dies.
func startProc(h *netlab.Host, name, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s %s: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), h.Name, bin, strings.Join(args, " "))
	cmd := h.Command(context.Background(), bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then SIGKILLs and waits for the exit.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(p.pid(), sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.name, p.pid())
	}
}

// agent is one node: its host, directories and process.
type agent struct {
	name, dataDir, bridge, cgroupParent, logPath string
	host                                         *netlab.Host
	proc                                         *proc
}

// containerdPID is the agent's private containerd, from its pidfile.
func (a *agent) containerdPID() int {
	b, err := os.ReadFile(filepath.Join(a.dataDir, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// cluster is a running multi-host Skiff.
type cluster struct {
	t      *testing.T
	bin    string
	lab    *netlab.Lab
	dir    string // data dirs and admin config (short path: socket lengths)
	logDir string // member logs, kept when the test fails

	adminConfig string
	server      *proc
	agents      []*agent
	client      *client.Client
	// tuning says which node-loss detection settings the cluster runs with.
	tuning string
	// agentHelp is `skiff agent --help`, to find optional features.
	agentHelp string
}

// hasFlag reports whether a command's help lists flag.
func hasFlag(help, flag string) bool {
	return strings.Contains(help, flag+" ")
}

// startCluster builds 3 hosts, a server on h1 and an agent on each, waits
// for 3 Ready nodes and imports the test images into every node. Cleanup
// is registered first, so a failed start is cleaned up too. The node-loss
// detection runs with shorter heartbeats than the defaults (see
// startClusterWith).
func startCluster(t *testing.T, ctx context.Context) *cluster {
	return startClusterWith(t, ctx, os.Getenv("SKIFF_MULTINODE_DEFAULTS") != "")
}

// startClusterWith is startCluster with the binary's default node-loss
// detection (no heartbeat, grace or gossip flags) when defaults is true,
// else with a 10s grace period, a 3s confirm age and 2s agent heartbeats.
func startClusterWith(t *testing.T, ctx context.Context, defaults bool) *cluster {
	c := &cluster{t: t, bin: skiffBinary}
	t.Cleanup(c.close)
	var err error
	if c.logDir, err = os.MkdirTemp("", "skiff-multinode-logs-"); err != nil {
		t.Fatal(err)
	}
	// netlab.New removes the namespaces of labs whose owner died (a test
	// binary killed before its cleanup); removeStaleRuns then removes what
	// such runs left outside them.
	if c.lab, err = netlab.New(ctx, netlab.Config{Hosts: 3, Log: testLog{t}}); err != nil {
		t.Fatal(err)
	}
	id := c.lab.ID()
	removeStaleRuns(t)
	// Named after the lab, so a later run can tell whether it is stale;
	// short, for containerd's socket paths.
	c.dir = filepath.Join(os.TempDir(), runDirPrefix+id)
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		c.dir = ""
		t.Fatal(err)
	}
	h1 := c.lab.Hosts[0]
	c.adminConfig = filepath.Join(c.dir, "admin.conf")
	serverDir := filepath.Join(c.dir, "server")
	args := []string{"server", "--name", "s1", "--data-dir", serverDir,
		"--listen-client", h1.IP + ":2379", "--listen-peer", h1.IP + ":2380",
		"--listen-api", h1.IP + ":6443", "--admin-config", c.adminConfig}
	serverHelp, _ := exec.CommandContext(ctx, c.bin, "server", "--help").CombinedOutput()
	agentHelp, _ := exec.CommandContext(ctx, c.bin, "agent", "--help").CombinedOutput()
	c.agentHelp = string(agentHelp)
	var agentTuning []string
	c.tuning = "the binary's defaults"
	switch {
	case !hasFlag(string(serverHelp), "--node-monitor-grace-period"):
		c.tuning = "grace 40s, the controller's default (the binary has no --node-monitor-grace-period)"
	case defaults:
		c.tuning = "the binary's defaults"
	default:
		// Faster node-loss detection, as the flags allow: agents renew
		// every 2s; gossip's verdict is confirmed once the Lease is 3s
		// old; without gossip a node is Unknown after 10s of silence.
		args = append(args, "--node-monitor-grace-period", "10s")
		c.tuning = "--node-monitor-grace-period 10s"
		if hasFlag(string(serverHelp), "--node-health-confirm-age") {
			args = append(args, "--node-health-confirm-age", "3s")
			c.tuning += " --node-health-confirm-age 3s"
		}
		agentTuning = []string{"--heartbeat-interval", "2s"}
		c.tuning += ", agents --heartbeat-interval 2s"
	}
	if hasFlag(string(serverHelp), "--listen-gossip") {
		c.tuning += ", gossip on"
	}
	if c.server, err = startProc(h1, "server", filepath.Join(c.logDir, "server.log"), c.bin, args...); err != nil {
		t.Fatal(err)
	}
	token := c.waitFile(ctx, filepath.Join(serverDir, "node-token"))
	c.waitFile(ctx, filepath.Join(serverDir, "ca.crt"))
	c.waitFile(ctx, c.adminConfig)
	if c.client, err = client.New(client.Options{ConfigPath: c.adminConfig}); err != nil {
		t.Fatal(err)
	}
	t.Logf("server on %s (%s); node loss detection: %s", h1.Name, h1.IP, c.tuning)

	for i, h := range c.lab.Hosts {
		a := &agent{
			name:         nodeNames[i],
			host:         h,
			dataDir:      filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
			bridge:       fmt.Sprintf("%sb%d", id, i+1),
			cgroupParent: fmt.Sprintf("%sc%d", id, i+1),
			logPath:      filepath.Join(c.logDir, nodeNames[i]+".log"),
		}
		args := []string{"agent", "--server", "https://" + h1.IP + ":6443", "--token", strings.TrimSpace(token),
			"--ca-file", filepath.Join(serverDir, "ca.crt"), "--name", a.name, "--data-dir", a.dataDir,
			"--node-ip", h.IP, "--bridge", a.bridge, "--cgroup-parent", a.cgroupParent,
			"--listen-streams", h.IP + ":10250"}
		args = append(args, agentTuning...)
		if hasFlag(c.agentHelp, "--listen-gossip") {
			// The server on h1 has h1's port 7946 already.
			port := "7946"
			if h == h1 {
				port = "7947"
			}
			args = append(args, "--listen-gossip", h.IP+":"+port)
		}
		if a.proc, err = startProc(h, a.name, a.logPath, c.bin, args...); err != nil {
			t.Fatal(err)
		}
		c.agents = append(c.agents, a)
	}
	// All agents start at once: the leader's node IPAM controller assigns
	// the pod CIDRs, so agents registering at the same instant still get
	// distinct ranges (checked below).
	for _, a := range c.agents {
		c.poll(ctx, 90*time.Second, a.name+" registered with a pod CIDR", func() (bool, error) {
			if a.proc.exited() {
				return false, fmt.Errorf("agent %s exited (log %s)", a.name, a.logPath)
			}
			var n corev1.Node
			if err := c.client.Get(ctx, "", a.name, &n); err != nil {
				return false, err
			}
			return n.Spec.PodCIDR != "", nil
		})
	}
	c.waitNodesReady(ctx, nodeNames, 90*time.Second)
	cidrs := map[string]string{}
	for _, a := range c.agents {
		var n corev1.Node
		if err := c.client.Get(ctx, "", a.name, &n); err != nil {
			t.Fatal(err)
		}
		if other, dup := cidrs[n.Spec.PodCIDR]; dup {
			t.Fatalf("%s and %s have the same pod CIDR %s", other, a.name, n.Spec.PodCIDR)
		}
		cidrs[n.Spec.PodCIDR] = a.name
		t.Logf("%s on %s: %s, pod CIDR %s, bridge %s, cgroup parent %s, containerd pid %d",
			a.name, a.host.Name, a.host.IP, n.Spec.PodCIDR, a.bridge, a.cgroupParent, a.containerdPID())
	}
	c.importImages(ctx)
	return c
}

// waitFile waits for path to exist with content and returns it.
func (c *cluster) waitFile(ctx context.Context, path string) string {
	c.t.Helper()
	var b []byte
	c.poll(ctx, 60*time.Second, "server wrote "+path, func() (bool, error) {
		if c.server.exited() {
			return false, fmt.Errorf("server exited (log %s)", filepath.Join(c.logDir, "server.log"))
		}
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(b) > 0, err
	})
	return string(b)
}

// importImages builds the test image tarballs once and imports them into
// every node's containerd (the agent's, adopted, through its data dir).
func (c *cluster) importImages(ctx context.Context) {
	c.t.Helper()
	out := filepath.Join(c.dir, "images")
	if b, err := exec.CommandContext(ctx, c.bin, "image", "build-test", "--out", out).CombinedOutput(); err != nil {
		c.t.Fatalf("image build-test: %v: %s", err, b)
	}
	tars, _ := filepath.Glob(filepath.Join(out, "*.tar"))
	if len(tars) == 0 {
		c.t.Fatalf("image build-test wrote no tarball in %s", out)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.agents))
	for i, a := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.host.Run(ctx, c.bin, append([]string{"image", "import", "--data-dir", a.dataDir}, tars...)...)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

// poll calls cond every 200 ms until it is true or timeout passes, then
// fails the test with msg and cond's last error.
func (c *cluster) poll(ctx context.Context, timeout time.Duration, msg string, cond func() (bool, error)) {
	c.t.Helper()
	if err := pollUntil(ctx, timeout, cond); err != nil {
		c.t.Fatalf("%s: %v", msg, err)
	}
}

// pollUntil calls cond every 200 ms until it is true; the error says what
// the last attempt saw when timeout (or ctx) ends first.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not true after %v (last error: %v)", timeout, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitNodesReady waits until every named node reports Ready=True.
func (c *cluster) waitNodesReady(ctx context.Context, names []string, timeout time.Duration) {
	c.t.Helper()
	c.poll(ctx, timeout, fmt.Sprintf("nodes %v Ready", names), func() (bool, error) {
		for _, a := range c.agents {
			if a.proc.exited() {
				return false, fmt.Errorf("agent %s exited (log %s)", a.name, a.logPath)
			}
		}
		var nl corev1.NodeList
		if err := c.client.List(ctx, "", &nl, client.ListOptions{}); err != nil {
			return false, err
		}
		ready := map[string]bool{}
		for _, n := range nl.Items {
			ready[n.Name] = nodeReady(&n) == corev1.ConditionTrue
		}
		for _, n := range names {
			if !ready[n] {
				return false, fmt.Errorf("node %s not Ready (nodes: %v)", n, ready)
			}
		}
		return true, nil
	})
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// skiff runs the CLI against the cluster (from the root namespace, which
// reaches every host through the lab bridge) and returns its output.
func (c *cluster) skiff(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "SKIFFCONFIG="+c.adminConfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("skiff %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// mustSkiff is skiff that fails the test on error.
func (c *cluster) mustSkiff(ctx context.Context, args ...string) string {
	c.t.Helper()
	out, err := c.skiff(ctx, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// pods lists the default namespace's pods matching selector.
func (c *cluster) pods(ctx context.Context, selector string) ([]corev1.Pod, error) {
	var pl corev1.PodList
	if err := c.client.List(ctx, "default", &pl, client.ListOptions{LabelSelector: selector}); err != nil {
		return nil, err
	}
	return pl.Items, nil
}

// livePods are pods not being deleted.
func livePods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPodRunning waits for pod name to be Running and Ready, and returns it.
func (c *cluster) waitPodRunning(ctx context.Context, name string, timeout time.Duration) *corev1.Pod {
	c.t.Helper()
	var p corev1.Pod
	c.poll(ctx, timeout, "pod "+name+" Running and Ready", func() (bool, error) {
		if err := c.client.Get(ctx, "default", name, &p); err != nil {
			return false, err
		}
		return podReady(&p), fmt.Errorf("phase %s, conditions %v", p.Status.Phase, p.Status.Conditions)
	})
	return &p
}

// close stops and removes everything the cluster made, whatever state the
// test left it in; what it cannot remove is reported as an error.
func (c *cluster) close() {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if c.client != nil {
		c.client.Close()
	}
	var errs []error
	for _, a := range c.agents {
		errs = append(errs, a.proc.stop(syscall.SIGKILL, 0))
	}
	// Every agent's pods, bridge, chains, routes and containerd, by the
	// agent's own teardown, on its own host (in parallel: each can take a
	// few seconds per pod).
	var wg sync.WaitGroup
	for _, a := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.host.Heal(ctx)
			if _, err := os.Stat(a.dataDir); err != nil {
				return
			}
			tctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
			defer tcancel()
			out, err := a.host.Run(tctx, c.bin, "teardown-node", "--data-dir", a.dataDir)
			if f, ferr := os.OpenFile(a.logPath, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
				fmt.Fprintf(f, "=== teardown-node\n%s", out)
				f.Close()
			}
			if err != nil {
				t.Logf("teardown of %s: %v", a.name, err)
			}
			if pid := a.containerdPID(); pid > 0 && isProcessOf(pid, a.dataDir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}()
	}
	wg.Wait()
	if c.server != nil {
		errs = append(errs, c.server.stop(syscall.SIGTERM, 10*time.Second))
	}
	// The safety nets: processes left in the agents' cgroups, the cgroups,
	// mounts under the run's dir, then the namespaces and the bridge.
	for _, a := range c.agents {
		errs = append(errs, removeCgroups(a.cgroupParent))
	}
	if c.dir != "" {
		errs = append(errs, unmountUnder(c.dir))
	}
	if c.lab != nil {
		errs = append(errs, c.lab.Close())
	}
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if c.lab != nil {
		if left := leftovers(c.lab.ID(), c.dir); len(left) > 0 {
			t.Errorf("left behind after cleanup:\n%s", strings.Join(left, "\n"))
		}
	}
	if c.logDir != "" {
		if t.Failed() {
			t.Logf("server and agent logs kept in %s", c.logDir)
		} else {
			_ = os.RemoveAll(c.logDir)
		}
	}
}

// runDirPrefix starts each run's directory, followed by its lab id.
const runDirPrefix = "skmn-"

// removeStaleRuns removes the directories, processes, mounts and cgroups
// of earlier runs whose lab has no live owner (their test binary was
// killed before its cleanup ran).
func removeStaleRuns(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	for _, dir := range dirs {
		id := strings.TrimPrefix(filepath.Base(dir), runDirPrefix)
		if netlab.Live(id) {
			continue
		}
		t.Logf("removing the leftovers of stale run %s", dir)
		// containerd and its shims name the dir on their command line.
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/cmdline"))
			if err == nil && pid != os.Getpid() && isProcessOf(pid, dir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		var errs []error
		for i := 1; i <= len(nodeNames); i++ {
			errs = append(errs, removeCgroups(fmt.Sprintf("%sc%d", id, i)))
		}
		errs = append(errs, unmountUnder(dir), os.RemoveAll(dir))
		if err := errors.Join(errs...); err != nil {
			t.Logf("stale run %s: %v", dir, err)
		}
	}
}

// isProcessOf reports whether pid's command line mentions dir (a pidfile
// may outlive its process, and pids are reused).
func isProcessOf(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), dir)
}

// removeCgroups kills what still runs under the cgroup parent (in any
// hierarchy) and removes its directories, deepest first.
func removeCgroups(parent string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range dirs {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		slices.Reverse(dirs)
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = os.Remove(d); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond) // killed processes leave the cgroup asynchronously
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	mps, err := mountPoints(dir)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(mps) - 1; i >= 0; i-- {
		if err := unix.Unmount(mps[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mps[i], err))
		}
	}
	return errors.Join(errs...)
}

// mountPoints lists the mount points containing marker, in mount order.
func mountPoints(marker string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.Contains(fields[4], marker) {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

// leftovers lists what of a run is still on the machine: namespaces and
// links named after the lab id, mounts under dir or the lab's pinned
// namespaces, cgroups named after the id, and processes whose command
// line names dir.
func leftovers(id, dir string) []string {
	var out []string
	if b, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, id) {
				out = append(out, "netns "+l)
			}
		}
	}
	if b, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], id) {
				out = append(out, "link "+f[1])
			}
		}
	}
	marks := []string{"/netns/" + id}
	if dir != "" {
		marks = append(marks, dir)
	}
	for _, m := range marks {
		if mps, err := mountPoints(m); err == nil {
			for _, p := range mps {
				out = append(out, "mount "+p)
			}
		}
	}
	if cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id + "*"); len(cgs) > 0 {
		for _, cg := range cgs {
			out = append(out, "cgroup "+cg)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && dir != "" && strings.Contains(string(b), dir) {
			out = append(out, "process "+strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/cmdline")+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// testLog sends the lab's progress lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

package runtime_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/crilog"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/probe"
	"github.com/skiffhq/skiff/agent/runtime"
)

// TestMain doubles as the CRI logger binary the shim runs per container.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == crilog.Arg {
		crilog.Main(os.Args[2])
		return
	}
	os.Exit(m.Run())
}

type env struct {
	d      *containerd.Daemon
	dir    string
	rt     *runtime.Runtime
	cfg    runtime.Config
	marker string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freeCIDR picks a /24 in 10.250.0.0/16 that no host interface uses.
func freeCIDR(t *testing.T) string {
	addrs, _ := net.InterfaceAddrs()
	for i := 0; i < 50; i++ {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		cidr := fmt.Sprintf("10.250.%d.0/24", b[0])
		_, n, _ := net.ParseCIDR(cidr)
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && n.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			return cidr
		}
	}
	t.Fatal("no free pod CIDR")
	return ""
}

func setup(t *testing.T) *env {
	t.Helper()
	nodetest.RequireNode(t)
	d, dir := nodetest.StartDaemon(t)
	nodetest.ImportTestImages(t, d)
	marker := "skt" + randHex(3)
	cfg := runtime.DefaultConfig(dir, freeCIDR(t))
	cfg.BridgeName = marker
	cfg.CgroupParent = marker
	e := &env{d: d, dir: dir, cfg: cfg, marker: marker}
	t.Cleanup(func() {
		if left := nodetest.HostLeftovers(marker); len(left) > 0 {
			t.Errorf("left behind on the host:\n%s", strings.Join(left, "\n"))
		}
	})
	e.rt = e.newRuntime(t, d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The daemon may have been replaced by a test; use the current one.
		cur, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer cur.Close()
		rt, err := runtime.New(ctx, cur.Client(), cfg)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer rt.Close()
		if err := rt.Teardown(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return e
}

func (e *env) newRuntime(t *testing.T, d *containerd.Daemon) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(context.Background(), d.Client(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func newPod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name + "-" + randHex(4))},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func limits(cpu, mem string) corev1.ResourceRequirements {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return corev1.ResourceRequirements{Limits: l}
}

func readCgroup(t *testing.T, ctrl, path, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, path, file))
	if err != nil {
		t.Fatalf("read cgroup: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func exec(t *testing.T, rt *runtime.Runtime, uid, name string, cmd ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, err := rt.Exec(ctx(t, 20*time.Second), uid, name, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	if errOut.Len() > 0 {
		t.Logf("exec %v stderr: %s", cmd, errOut.String())
	}
	return out.String(), code
}

// TestPodLifecycle runs a two-container pod and checks networking, env,
// limits, logs, stats, volumes, adoption after an agent restart and after a
// containerd SIGKILL, stop and removal.
func TestPodLifecycle(t *testing.T) {
	e := setup(t)
	rt := e.rt
	mem := resource.MustParse("16Mi")
	pod := newPod("web",
		corev1.Container{
			Name: "httpd", Image: "nginx",
			Env: []corev1.EnvVar{{Name: "GREETING", Value: "hello"}, {Name: "MESSAGE", Value: "$(GREETING) from skiff"},
				{Name: "MY_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "MY_MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}}},
			Resources:    limits("500m", "64Mi"),
			VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}, {Name: "scratch", MountPath: "/scratch"}},
		},
		corev1.Container{
			Name: "client", Image: "busybox",
			Command:      []string{"sh", "-c", `while true; do printf 'GET / HTTP/1.0\r\n\r\n' | nc 127.0.0.1 80 | grep -o 'pod IP: [0-9.]*'; echo to-stderr >&2; sleep 0.5; done`},
			Resources:    limits("250m", "32Mi"),
			VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
		},
	)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &mem}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	uid := string(pod.UID)
	start := time.Now()
	st, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod})
	if err != nil {
		t.Fatalf("RunPod: %v", err)
	}
	t.Logf("pod start latency (RunPod → all containers started): %v", time.Since(start).Round(time.Millisecond))
	if st.IP == "" || st.QOSClass != corev1.PodQOSGuaranteed || len(st.Containers) != 2 {
		t.Fatalf("status after RunPod: %+v", st)
	}
	for _, c := range st.Containers {
		if c.State != runtime.StateRunning || c.Pid == 0 {
			t.Fatalf("container %s not running: %+v", c.Name, c)
		}
	}

	// The pod IP answers from the host, with a page naming the pod.
	var body string
	nodetest.Poll(t, 10*time.Second, "GET pod IP from host", func() (bool, error) {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + st.IP + "/")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200, fmt.Errorf("status %d", resp.StatusCode)
	})
	for _, want := range []string{"hostname: web", "pod IP: " + st.IP, "hello from skiff"} {
		if !strings.Contains(body, want) {
			t.Errorf("page from %s lacks %q:\n%s", st.IP, want, body)
		}
	}

	// Probes against the real pod: the httpd image serves /healthz; exec
	// probes go through Exec.
	httpdSpec := &pod.Spec.Containers[0]
	target := probe.Target{PodIP: st.IP, Container: httpdSpec, Exec: func(c context.Context, cmd []string) (int, []byte, error) {
		var b bytes.Buffer
		code, err := rt.Exec(c, uid, "httpd", runtime.ExecOptions{Cmd: cmd, Stdout: &b, Stderr: &b})
		return code, b.Bytes(), err
	}}
	for _, p := range []*corev1.Probe{
		{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(80)}}, TimeoutSeconds: 5},
		{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, TimeoutSeconds: 5},
		{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/var/www/healthz"}}}, TimeoutSeconds: 10},
	} {
		if res, msg := probe.Run(context.Background(), p, target); res != probe.Success {
			t.Errorf("probe %+v: %v %s", p.ProbeHandler, res, msg)
		}
	}
	failing := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, TimeoutSeconds: 10}
	if res, _ := probe.Run(context.Background(), failing, target); res != probe.Failure {
		t.Errorf("exec probe `false`: %v, want Failure", res)
	}

	// Env, with $(VAR) expansion, visible inside.
	out, code := exec(t, rt, uid, "httpd", "env")
	if code != 0 || !strings.Contains(out, "MESSAGE=hello from skiff") || !strings.Contains(out, "PORT=80") ||
		!strings.Contains(out, "MY_POD_IP="+st.IP+"\n") || !strings.Contains(out, "MY_MEM_MI=64\n") {
		t.Errorf("exec env: code %d, output:\n%s", code, out)
	}
	// Both containers share the sandbox's IPC and UTS namespaces.
	if h, _ := exec(t, rt, uid, "client", "hostname"); strings.TrimSpace(h) != "web" {
		t.Errorf("hostname in client = %q, want web", h)
	}
	// emptyDir shared between containers; medium Memory is a capped tmpfs.
	exec(t, rt, uid, "httpd", "sh", "-c", "echo shared > /scratch/f")
	if out, _ := exec(t, rt, uid, "client", "cat", "/scratch/f"); strings.TrimSpace(out) != "shared" {
		t.Errorf("emptyDir not shared: client reads %q", out)
	}
	if out, _ := exec(t, rt, uid, "httpd", "sh", "-c", "grep ' /cache ' /proc/mounts"); !strings.Contains(out, "tmpfs") || !strings.Contains(out, "size=16384k") {
		t.Errorf("/cache is not a 16Mi tmpfs: %q", out)
	}

	// Localhost between containers: the client's log gets the page, in CRI format.
	httpd, _ := st.Container("httpd")
	client, _ := st.Container("client")
	criLine := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (stdout|stderr) [FP] `)
	nodetest.Poll(t, 10*time.Second, "client log shows the page fetched over localhost", func() (bool, error) {
		b, err := os.ReadFile(client.LogPath)
		return bytes.Contains(b, []byte("stdout F pod IP: "+st.IP)) && bytes.Contains(b, []byte("stderr F to-stderr")), err
	})
	logData, _ := os.ReadFile(client.LogPath)
	for _, l := range strings.Split(strings.TrimSpace(string(logData)), "\n") {
		if !criLine.MatchString(l) {
			t.Errorf("log line not in CRI format: %q", l)
		}
	}

	// Limits in the cgroup files: containers and the pod total.
	pcg := st.CgroupPath
	if got := readCgroup(t, "memory", pcg+"/"+httpd.ID, "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("httpd memory.limit_in_bytes = %s, want 67108864", got)
	}
	if got := readCgroup(t, "memory", pcg, "memory.limit_in_bytes"); got != "100663296" {
		t.Errorf("pod memory.limit_in_bytes = %s, want 96Mi", got)
	}
	if got := readCgroup(t, "cpu", pcg+"/"+client.ID, "cpu.cfs_quota_us"); got != "25000" {
		t.Errorf("client cpu.cfs_quota_us = %s, want 25000", got)
	}
	if got := readCgroup(t, "cpu", pcg, "cpu.cfs_quota_us"); got != "75000" {
		t.Errorf("pod cpu.cfs_quota_us = %s, want 75000", got)
	}
	if got := readCgroup(t, "cpu", pcg+"/"+httpd.ID, "cpu.shares"); got != "512" {
		t.Errorf("httpd cpu.shares = %s, want 512", got)
	}
	if got := readCgroup(t, "pids", pcg+"/"+httpd.ID, "pids.max"); got != "4096" {
		t.Errorf("httpd pids.max = %s, want 4096", got)
	}

	// One shim serves the whole pod; runc keeps its state under the data dir.
	if shims := shimsOf(t, e.d.Address()); shims != 1 {
		t.Errorf("%d shims for the pod's daemon, want 1 (io.containerd.runc.v2.group)", shims)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "runc", e.cfg.Namespace, httpd.ID)); err != nil {
		t.Errorf("runc state not under the data dir: %v", err)
	}

	stats, err := rt.Stats(ctx(t, 10*time.Second), uid)
	if err != nil || len(stats) != 2 {
		t.Fatalf("Stats: %v %+v", err, stats)
	}
	for _, s := range stats {
		if s.MemoryUsage == 0 || s.CPUUsageNanos == 0 {
			t.Errorf("stats of %s look empty: %+v", s.Name, s)
		}
	}

	// Agent restart: a new runtime on the same daemon sees the same pod.
	rt2 := e.newRuntime(t, e.d)
	assertSamePod(t, rt2, st)

	// containerd SIGKILLed and started again: the containers keep running.
	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	d2, err := containerd.Open(ctx(t, 30*time.Second), containerd.DefaultConfig(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	t.Logf("containerd restarted after SIGKILL in %v (adopted=%v)", time.Since(start).Round(time.Millisecond), d2.Adopted())
	rt3 := e.newRuntime(t, d2)
	assertSamePod(t, rt3, st)
	// The first runtime's client reconnects to the new daemon by itself.
	nodetest.Poll(t, 20*time.Second, "old client serves again", func() (bool, error) {
		return e.d.Client().IsServing(context.Background())
	})
	assertSamePod(t, rt, st)
	if out, code := exec(t, rt3, uid, "client", "echo", "alive"); code != 0 || strings.TrimSpace(out) != "alive" {
		t.Errorf("exec after containerd restart: %d %q", code, out)
	}
	// The shim's logger outlived the daemon: the log keeps growing.
	if fi, err := os.Stat(client.LogPath); err == nil {
		size := fi.Size()
		nodetest.Poll(t, 10*time.Second, "client log grows after the containerd restart", func() (bool, error) {
			fi, err := os.Stat(client.LogPath)
			return err == nil && fi.Size() > size, err
		})
	}

	// Stop: httpd (PID 1 ignores SIGTERM) takes the whole grace, then SIGKILL.
	start = time.Now()
	if err := rt3.StopContainer(ctx(t, 30*time.Second), uid, "httpd", time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < time.Second || took > 15*time.Second {
		t.Errorf("stop with 1s grace took %v", took)
	}
	// The first runtime re-subscribed after the daemon restart: it sees the exit.
	func() {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-rt.Events():
				if ev.PodUID == uid && ev.Container == "httpd" && ev.Kind == runtime.EventExited {
					if ev.ExitCode != 137 {
						t.Errorf("exit event %+v, want code 137", ev)
					}
					return
				}
			case <-deadline:
				t.Error("no exit event for httpd on the runtime that lived through the containerd restart")
				return
			}
		}
	}()
	ps, err := rt3.PodStatus(ctx(t, 10*time.Second), uid)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := ps.Container("httpd"); c.State != runtime.StateExited || c.ExitCode != 137 || c.OOMKilled || c.Reason != "Error" {
		t.Errorf("httpd after stop: %+v, want Exited 137 Error", c)
	}

	// Remove leaves nothing behind (the setup cleanup also checks the host).
	if err := rt3.RemovePod(ctx(t, 60*time.Second), uid, time.Second); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	if _, err := rt3.PodStatus(ctx(t, 10*time.Second), uid); !errors.Is(err, runtime.ErrPodNotFound) {
		t.Errorf("PodStatus after remove: %v, want ErrPodNotFound", err)
	}
	for _, p := range []string{st.NetnsPath, filepath.Join(e.dir, "pods", uid), filepath.Join("/sys/fs/cgroup/memory", pcg),
		filepath.Join("/sys/fs/cgroup/unified", pcg), filepath.Join("/sys/fs/cgroup/systemd", pcg)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still exists after RemovePod", p)
		}
	}
}

// shimsOf counts the runc shims serving the daemon at address.
func shimsOf(t *testing.T, address string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(b), address) {
			n++
		}
	}
	return n
}

func assertSamePod(t *testing.T, rt *runtime.Runtime, want *runtime.PodStatus) {
	t.Helper()
	pods, err := rt.ListPods(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 {
		t.Fatalf("ListPods: %d pods, want 1: %+v", len(pods), pods)
	}
	got := pods[0]
	if got.UID != want.UID || got.IP != want.IP || got.Name != want.Name || got.SandboxState != runtime.StateRunning {
		t.Fatalf("rebuilt pod %+v, want %+v", got, want)
	}
	for _, w := range want.Containers {
		g, ok := got.Container(w.Name)
		if !ok || g.ID != w.ID || g.Pid != w.Pid || g.State != runtime.StateRunning || g.RestartCount != 0 {
			t.Errorf("container %s rebuilt as %+v, want the same running instance %+v", w.Name, g, w)
		}
	}
}

// TestOOMKilledAndRestart allocates past the memory limit, expects
// OOMKilled from the OOM event, then restarts the container keeping the
// previous log and termination.
func TestOOMKilledAndRestart(t *testing.T) {
	e := setup(t)
	rt := e.rt
	pod := newPod("hog", corev1.Container{
		Name: "hog", Image: "busybox", Resources: limits("", "32Mi"),
		Command: []string{"sh", "-c", `echo allocating; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived ${#x}`},
	})
	uid := string(pod.UID)
	if _, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	var ev runtime.Event
	var sawOOM bool
	deadline := time.After(90 * time.Second)
	for ev.Kind != runtime.EventExited {
		select {
		case ev = <-rt.Events():
			if ev.PodUID != uid {
				continue
			}
			t.Logf("event %+v", ev)
			sawOOM = sawOOM || ev.Kind == runtime.EventOOM
		case <-deadline:
			t.Fatal("no exit event within 90s")
		}
	}
	if !sawOOM {
		t.Error("no OOM event before the exit")
	}
	ps, err := rt.PodStatus(ctx(t, 10*time.Second), uid)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ps.Container("hog")
	if c.State != runtime.StateExited || !c.OOMKilled || c.Reason != "OOMKilled" {
		t.Fatalf("after allocation past the limit: %+v, want Exited OOMKilled", c)
	}
	// A runtime that saw no event (agent restarted) reads the cgroup's counter.
	ps2, err := e.newRuntime(t, e.d).PodStatus(ctx(t, 10*time.Second), uid)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := ps2.Container("hog"); !c.OOMKilled {
		t.Errorf("fresh runtime: %+v, want OOMKilled from memory.oom_control", c)
	}
	// Restart: count goes up, last termination and previous log are kept.
	// (The log may also hold the shell's "Killed" when the kernel picked a
	// pipeline child before the shell itself.)
	c2, err := rt.StartContainer(ctx(t, 30*time.Second), runtime.PodInput{Pod: pod}, "hog")
	if err != nil {
		t.Fatal(err)
	}
	if c2.RestartCount != 1 || c2.LastTermination == nil || c2.LastTermination.Reason != "OOMKilled" {
		t.Errorf("restarted container: %+v (last %+v)", c2, c2.LastTermination)
	}
	prev, err := os.ReadFile(rt.LogPath(uid, "hog", 0))
	if err != nil || !bytes.Contains(prev, []byte("stdout F allocating")) {
		t.Errorf("previous log: %v %q", err, prev)
	}
	var out bytes.Buffer
	if err := rt.Logs(ctx(t, 10*time.Second), uid, "hog", true, crilog.ReadOptions{Tail: -1}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "allocating\n") {
		t.Errorf("Logs --previous: %v %q", err, out.String())
	}
}

// TestCPULimitThrottles runs a busy loop under 100m and waits for CFS
// throttling to show in cpu.stat.
func TestCPULimitThrottles(t *testing.T) {
	e := setup(t)
	rt := e.rt
	pod := newPod("spin", corev1.Container{
		Name: "spin", Image: "busybox", Resources: limits("100m", ""),
		Command: []string{"sh", "-c", "while :; do :; done"},
	})
	st, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := st.Container("spin")
	cg := st.CgroupPath + "/" + c.ID
	if got := readCgroup(t, "cpu", cg, "cpu.cfs_quota_us"); got != "10000" {
		t.Errorf("cpu.cfs_quota_us = %s, want 10000", got)
	}
	if st.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QoS = %s, want Burstable", st.QOSClass)
	}
	nodetest.Poll(t, 10*time.Second, "cpu.stat nr_throttled > 0", func() (bool, error) {
		s := readCgroup(t, "cpu", cg, "cpu.stat")
		for _, l := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(l, "nr_throttled "); ok {
				return v != "0", fmt.Errorf("cpu.stat: %s", strings.ReplaceAll(s, "\n", ", "))
			}
		}
		return false, fmt.Errorf("no nr_throttled in %q", s)
	})
	if err := rt.StopContainer(ctx(t, 30*time.Second), string(pod.UID), "spin", time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestStopHonoursSIGTERM: a container that traps SIGTERM exits at once
// with its own code instead of waiting out the grace period. It also runs
// with a CRI logger process per container (LoggerBinary, as agents before
// the log copies did; their containers keep those loggers).
func TestStopHonoursSIGTERM(t *testing.T) {
	e := setup(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.LoggerBinary = exe
	rt := e.newRuntime(t, e.d)
	pod := newPod("polite", corev1.Container{
		Name: "polite", Image: "busybox",
		Command: []string{"sh", "-c", `trap 'echo bye; exit 3' TERM; echo ready; while true; do sleep 0.1; done`},
	})
	uid := string(pod.UID)
	st, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod})
	if err != nil {
		t.Fatal(err)
	}
	if st.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("QoS = %s, want BestEffort", st.QOSClass)
	}
	c, _ := st.Container("polite")
	nodetest.Poll(t, 10*time.Second, "container ready", func() (bool, error) {
		b, err := os.ReadFile(c.LogPath)
		return bytes.Contains(b, []byte("ready")), err
	})
	start := time.Now()
	if err := rt.StopContainer(ctx(t, 30*time.Second), uid, "polite", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stop of a SIGTERM-handling container took %v", took)
	}
	ps, _ := rt.PodStatus(ctx(t, 10*time.Second), uid)
	if c, _ := ps.Container("polite"); c.ExitCode != 3 || c.Reason != "Error" {
		t.Errorf("after SIGTERM: %+v, want exit 3", c)
	}
	var out bytes.Buffer
	if err := rt.Logs(ctx(t, 10*time.Second), uid, "polite", false, crilog.ReadOptions{Tail: -1}, &out, &out); err != nil || out.String() != "ready\nbye\n" {
		t.Errorf("log written by the logger process, read back: %v %q", err, out.String())
	}
}

// TestSandboxPinsNamespaces: a sandbox runs no process. Its containers
// share the UTS and IPC namespaces pinned under the pod dir (not the
// host's), its containerd container has no task, and once a pinned
// namespace is gone (as after a reboot) the sandbox is not Running, so the
// pod worker recreates the pod.
func TestSandboxPinsNamespaces(t *testing.T) {
	e := setup(t)
	rt := e.rt
	sleep := func(name string) corev1.Container {
		return corev1.Container{Name: name, Image: "busybox", Command: []string{"sleep", "3600"}}
	}
	pod := newPod("pinned", sleep("a"), sleep("b"))
	st, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(pod.UID)
	cctx := namespaces.WithNamespace(ctx(t, 10*time.Second), e.cfg.Namespace)
	sb, err := e.d.Client().LoadContainer(cctx, st.SandboxID)
	if err != nil {
		t.Fatalf("sandbox container: %v", err)
	}
	if _, err := sb.Task(cctx, nil); !errdefs.IsNotFound(err) {
		t.Errorf("sandbox task: err %v, want not found (no pause process)", err)
	}
	for _, ns := range []string{"uts", "ipc"} {
		pinned := filepath.Join(e.dir, "pods", uid, "ns", ns)
		var fi unix.Stat_t
		if err := unix.Stat(pinned, &fi); err != nil {
			t.Fatalf("pinned %s namespace: %v", ns, err)
		}
		want := fmt.Sprintf("%s:[%d]", ns, fi.Ino)
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		for _, c := range []string{"a", "b"} {
			out, code := exec(t, rt, uid, c, "readlink", "/proc/self/ns/"+ns)
			if got := strings.TrimSpace(out); code != 0 || got != want || got == host {
				t.Errorf("container %s: %s namespace %q (code %d), want the pinned %s (host's is %s)", c, ns, got, code, want, host)
			}
		}
	}
	if err := unix.Unmount(filepath.Join(e.dir, "pods", uid, "ns", "uts"), unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	st, err = rt.PodStatus(ctx(t, 10*time.Second), uid)
	if err != nil || st.SandboxState == runtime.StateRunning {
		t.Errorf("sandbox with its UTS namespace gone: state %v (err %v), want not running", st.SandboxState, err)
	}
	if err := rt.RemovePod(ctx(t, 30*time.Second), uid, 0); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "pods", uid)); !os.IsNotExist(err) {
		t.Errorf("pod dir after removal: %v, want gone", err)
	}
}

// TestLogsAcrossRuntimeRestart: the agent copies logs itself, and a
// container's output while no runtime runs (the agent restarting) waits in
// its FIFOs: the next runtime picks the copy up, and the log holds every
// line of both streams once, in order. A second runtime on the same data
// dir in the same process shares the copy instead of splitting the output.
func TestLogsAcrossRuntimeRestart(t *testing.T) {
	e := setup(t)
	const n = 300
	pod := newPod("chatty", corev1.Container{
		Name: "chatty", Image: "busybox",
		Command: []string{"sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.01; done; echo done`, n)},
	})
	uid := string(pod.UID)
	st, err := e.rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := st.Container("chatty")
	nodetest.Poll(t, 20*time.Second, "first lines in the log", func() (bool, error) {
		b, err := os.ReadFile(c.LogPath)
		return bytes.Contains(b, []byte("out 20\n")), err
	})
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(c.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	// The downtime being simulated: the container keeps writing meanwhile.
	time.Sleep(time.Second)
	if after, _ := os.ReadFile(c.LogPath); !bytes.Equal(after, before) {
		t.Fatalf("log grew with no runtime running (%d -> %d bytes): who copies it?", len(before), len(after))
	}
	rt2 := e.newRuntime(t, e.d)
	_ = e.newRuntime(t, e.d) // shares rt2's copies
	nodetest.Poll(t, 60*time.Second, "the container's last line", func() (bool, error) {
		b, err := os.ReadFile(c.LogPath)
		return bytes.Contains(b, []byte("stdout F done\n")), err
	})
	var stdout, stderr bytes.Buffer
	if err := rt2.Logs(ctx(t, 10*time.Second), uid, "chatty", false, crilog.ReadOptions{Tail: -1}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var wantOut, wantErr strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		fmt.Fprintf(&wantErr, "err %d\n", i)
	}
	wantOut.WriteString("done\n")
	if stdout.String() != wantOut.String() {
		t.Errorf("stdout across the restart: %d bytes, want %d; first difference at byte %d", stdout.Len(), wantOut.Len(), firstDiff(stdout.String(), wantOut.String()))
	}
	if stderr.String() != wantErr.String() {
		t.Errorf("stderr across the restart: %d bytes, want %d; first difference at byte %d", stderr.Len(), wantErr.Len(), firstDiff(stderr.String(), wantErr.String()))
	}
	if err := rt2.RemovePod(ctx(t, 30*time.Second), uid, 0); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "fifo", "logs", "*")); len(left) > 0 {
		t.Errorf("log FIFOs left after the pod was removed: %v", left)
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

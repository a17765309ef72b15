package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// The tests here run the port-forward and top commands against an API
// server on Skiff's store and one agent with a private containerd: the
// whole path CLI → API server → agent → pod. They need root and the
// Debian packages (make deps); elsewhere they skip.

// nodeEnv is an API server and one agent named n1.
type nodeEnv struct {
	srv *apiservertest.Server
	c   *client.Client
}

func requireNode(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates containers, netns, cgroups)")
	}
	if err := containerd.CheckHost("/usr/bin/containerd", "/usr/lib/cni"); err != nil {
		t.Skipf("host cannot run pods: %v", err)
	}
	if _, err := os.Stat(images.DefaultBusybox); err != nil {
		t.Skip("needs /bin/busybox: apt-get install -y busybox-static")
	}
}

// freePodCIDR picks a /24 in 10.250.0.0/16 that no host interface uses.
func freePodCIDR(t *testing.T) string {
	addrs, _ := net.InterfaceAddrs()
	for range 50 {
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

func newNodeEnv(t *testing.T) *nodeEnv {
	t.Helper()
	requireNode(t)
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	c := srv.Client()

	// Short data dir: containerd's socket paths must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "skc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		// Stop whichever daemon serves the data dir now (the agent adopts it).
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if cur, err := containerd.Open(cctx, containerd.DefaultConfig(dir)); err == nil {
			_ = cur.Stop(cctx)
		}
	})
	shell, httpd, err := images.TestImages(images.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []images.Image{shell, httpd} {
		var buf bytes.Buffer
		if err := images.WriteLayout(&buf, img); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ImportImage(ctx, &buf); err != nil {
			t.Fatalf("import %v: %v", img.Names, err)
		}
	}
	_ = d.Close()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	marker := "skc" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// Registered before the teardown, so it runs after it.
		if _, err := net.InterfaceByName(marker); err == nil {
			t.Errorf("bridge %s left behind", marker)
		}
		if _, err := os.Stat("/sys/fs/cgroup/memory/" + marker); err == nil {
			t.Errorf("cgroup %s left behind", marker)
		}
		if ns, _ := os.ReadDir("/var/run/netns"); len(ns) > 0 {
			for _, n := range ns {
				if strings.Contains(n.Name(), marker) {
					t.Errorf("netns %s left behind", n.Name())
				}
			}
		}
	})
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer ccancel()
		if err := node.Teardown(cctx, dir, nil); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})

	cfg := node.DefaultConfig("n1", dir, c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = marker, marker, freePodCIDR(t)
	cfg.ClusterCIDR = "10.250.0.0/16"
	cfg.HeartbeatInterval, cfg.Resync = time.Second, time.Second
	cfg.StreamListen = ":0"
	cfg.ClusterCA = srv.CACertPEM()
	// Host-global networking extras are not what these tests are about.
	cfg.Proxy, cfg.DNS, cfg.Ingress = false, false, false
	a, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return &nodeEnv{srv: srv, c: c}
}

// poll calls cond every 50 ms until it holds or timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v (last: %v)", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *nodeEnv) waitReady(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	poll(t, 60*time.Second, "pod "+name+" Running and Ready", func() (bool, error) {
		if err := e.c.Get(context.Background(), "default", name, p); err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodRunning && podReady(p), fmt.Errorf("phase %s, conditions %v", p.Status.Phase, p.Status.Conditions)
	})
	return p
}

// streamCLI runs a command tree with port-forward and top until ctx ends.
func streamCLI(ctx context.Context, cfg string, out, errOut io.Writer, args ...string) error {
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newPortForwardCmd(), newTopCmd(), newLogsCmd(), newExecCmd())
	root.SetOut(out)
	root.SetErr(errOut)
	// The flag goes right after the command name: exec's args end with
	// "-- COMMAND...".
	root.SetArgs(append([]string{args[0], "--kubeconfig", cfg}, args[1:]...))
	return root.ExecuteContext(ctx)
}

var forwardingLine = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)`)

// startForward runs `skiff port-forward args` in the background and
// returns the local port of each "Forwarding from" line with its remote.
func (e *nodeEnv) startForward(t *testing.T, want int, args ...string) [][2]int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- streamCLI(ctx, e.srv.ConfigPath, &out, &errOut, append([]string{"port-forward"}, args...)...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("port-forward %v: %v", args, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("port-forward %v did not stop within 10s of its context", args)
		}
		if s := errOut.String(); s != "" {
			t.Logf("port-forward %v stderr:\n%s", args, s)
		}
	})
	var ports [][2]int
	poll(t, 20*time.Second, fmt.Sprintf("port-forward %v listening", args), func() (bool, error) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("port-forward %v ended early: %v\n%s%s", args, err, out.String(), errOut.String())
		default:
		}
		ports = nil
		for _, m := range forwardingLine.FindAllStringSubmatch(out.String(), -1) {
			l, _ := strconv.Atoi(m[1])
			r, _ := strconv.Atoi(m[2])
			ports = append(ports, [2]int{l, r})
		}
		return len(ports) == want, fmt.Errorf("output %q", out.String())
	})
	return ports
}

// get fetches url on a fresh connection.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// TestPortForwardE2E: port-forward to the HTTP test image serves GETs on
// the local port, many at once; svc/NAME maps a Service port to its named
// targetPort; deploy/NAME picks the Deployment's ready pod; bad targets
// fail with errors that say what is wrong.
func TestPortForwardE2E(t *testing.T) {
	e := newNodeEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labels := map[string]string{"app": "web"}
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "httpd", Image: "skiff.local/httpd:latest",
				Env:   []corev1.EnvVar{{Name: "MESSAGE", Value: "forwarded"}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1}}},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "front", Port: 8080, TargetPort: intstr.FromString("http")}}},
	}
	empty := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "none"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	one := int32(1)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec}},
	}
	// Bound to a node that has no agent: it stays Pending. It carries the
	// app label too, so TYPE/NAME targets have a pod to pass over.
	pending := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "default", Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "nowhere", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, obj := range []runtime.Object{pod, svc, empty, deploy, pending} {
		if err := e.c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
	e.waitReady(t, "web")

	// logs and exec take TYPE/NAME as kubectl does: a Ready pod the
	// selector matches, named on stderr when there are several.
	var out, errOut syncBuffer
	if err := streamCLI(ctx, e.srv.ConfigPath, &out, &errOut, "exec", "deploy/web", "--", "cat", "/etc/hostname"); err != nil || strings.TrimSpace(out.String()) != "web" {
		t.Errorf("exec deploy/web: %v, out %q (stderr %q), want the hostname of pod web", err, out.String(), errOut.String())
	}
	var matching corev1.PodList
	if err := e.c.List(ctx, "default", &matching, client.ListOptions{LabelSelector: "app=web"}); err != nil {
		t.Fatal(err)
	}
	wantNote := "" // one pod: nothing to say
	if n := len(matching.Items); n > 1 {
		wantNote = fmt.Sprintf("Found %d pods, using pod/web\n", n)
	}
	if errOut.String() != wantNote {
		t.Errorf("exec deploy/web stderr %q, want %q", errOut.String(), wantNote)
	}
	for _, tc := range []struct{ arg, want string }{
		{"svc/web", ""},
		{"job/nothing", `"nothing" not found`},
		{"cm/web", "there are no pods behind a cm"},
		{"svc/empty", "no ready pod behind service/empty"},
	} {
		var lo, le syncBuffer
		err := streamCLI(ctx, e.srv.ConfigPath, &lo, &le, "logs", tc.arg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("logs %s: %v", tc.arg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("logs %s: error %v, want one saying %q", tc.arg, err, tc.want)
		}
	}

	// pod/NAME with a free local port; several connections at once.
	ports := e.startForward(t, 1, "pod/web", ":80")
	if ports[0][1] != 80 || ports[0][0] == 0 || ports[0][0] == 80 {
		t.Fatalf("forwarding %v, want a free local port -> 80", ports)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", ports[0][0])
	const parallel = 8
	var wg sync.WaitGroup
	errs := make(chan error, parallel*3)
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				body, err := get(url)
				if err == nil && !strings.Contains(body, "hostname: web") {
					err = fmt.Errorf("body %q lacks the pod's hostname", body)
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d.%d: %w", i, j, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A raw HTTP/1.0 exchange that half-closes: the request's end reaches
	// the pod, and the pod's close ends the local read.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0][0]))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /healthz HTTP/1.0\r\n\r\n")
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	raw, err := io.ReadAll(bufio.NewReader(conn))
	conn.Close()
	if err != nil || !strings.HasPrefix(string(raw), "HTTP/1.") || !strings.HasSuffix(string(raw), "ok\n") {
		t.Errorf("HTTP/1.0 with half-close through the forward: err %v, got %q", err, raw)
	}

	// svc/NAME: the Service port 8080, by name, maps to targetPort "http"
	// (80 on the pod).
	sp := e.startForward(t, 1, "svc/web", "0:front")
	if sp[0][1] != 80 {
		t.Errorf("svc/web 0:front forwards to %d, want the pod's port 80 (targetPort http)", sp[0][1])
	}
	if body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", sp[0][0])); err != nil || !strings.Contains(body, "forwarded") {
		t.Errorf("GET through svc/web: %v %q", err, body)
	}
	// By the service port's number, twice (two listeners); then deploy/NAME
	// with a container port's name.
	sp = e.startForward(t, 2, "svc/web", ":8080", ":8080")
	for _, p := range sp {
		if body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", p[0])); err != nil || p[1] != 80 || !strings.Contains(body, "hostname: web") {
			t.Errorf("svc/web :8080 on %v: %v %q", p, err, body)
		}
	}
	dp := e.startForward(t, 1, "deploy/web", ":http")
	if body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", dp[0][0])); err != nil || dp[0][1] != 80 || !strings.Contains(body, "hostname: web") {
		t.Errorf("deploy/web :http on %v: %v %q", dp, err, body)
	}

	// Errors say what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pod/stuck", ":80"}, "pod default/stuck is not running (phase Pending)"},
		{[]string{"pod/web", ":nope"}, `port name "nope" is not a container port of pod default/web (named ports: http=80)`},
		{[]string{"svc/empty", ":80"}, "no ready pod behind service/empty in namespace default"},
		{[]string{"svc/web", ":80"}, "service web has no port 80 (its ports: 8080/front)"},
		{[]string{"pod/absent", ":80"}, `pods "absent" not found`},
		{[]string{"cm/web", ":80"}, "there are no pods behind a cm"},
		{[]string{"pod/web", "80:"}, "the remote port is missing"},
	} {
		var out, errOut syncBuffer
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		err := streamCLI(cctx, e.srv.ConfigPath, &out, &errOut, append([]string{"port-forward"}, tc.args...)...)
		ccancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("port-forward %v: error %v, want one containing %q (out %q)", tc.args, err, tc.want, out.String())
		}
	}

	// A connection to a port nothing listens on is refused on its own;
	// the forward goes on serving.
	bad := e.startForward(t, 1, "pod/web", ":81")
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", bad[0][0]))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("read from a forward to a closed pod port: %d bytes, err %v; want the connection closed", n, err)
	}
	c.Close()

	// The pod goes away: the next connection ends the session with an
	// error, as kubectl's "lost connection to pod".
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	var lout, lerr syncBuffer
	done := make(chan error, 1)
	go func() { done <- streamCLI(lctx, e.srv.ConfigPath, &lout, &lerr, "port-forward", "web", ":80") }()
	poll(t, 20*time.Second, "port-forward web :80 listening", func() (bool, error) {
		return forwardingLine.MatchString(lout.String()), fmt.Errorf("output %q", lout.String())
	})
	lport := forwardingLine.FindStringSubmatch(lout.String())[1]
	if _, err := e.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}, nil); err != nil {
		t.Fatal(err)
	}
	poll(t, 60*time.Second, "port-forward ends once pod web is gone", func() (bool, error) {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "lost connection to pod default/web") {
				t.Fatalf("port-forward after the pod was deleted ended with %v, want lost connection to pod default/web", err)
			}
			return true, nil
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+lport, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
		return false, fmt.Errorf("still running; stderr %q", lerr.String())
	})
}

// TestTopE2E: top pods shows a busy-looping container using CPU and a
// container holding memory with at least what it allocated; top nodes
// shows the node with its share of allocatable.
func TestTopE2E(t *testing.T) {
	e := newNodeEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	grace := int64(1)
	const held = 64 << 20
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "load", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{
				{Name: "spin", Image: "busybox", Command: []string{"sh", "-c", "while :; do :; done"},
					// The machine is shared: a bounded loop is enough to see.
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}}},
				{Name: "hold", Image: "busybox", Command: []string{"sh", "-c",
					fmt.Sprintf(`x=$(head -c %d /dev/zero | tr '\0' a); echo held; sleep 3600; echo ${#x}`, held)},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}},
			},
		},
	}
	if err := e.c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.waitReady(t, "load")
	t.Logf("pod load Ready after %v", time.Since(start).Round(time.Millisecond))

	row := regexp.MustCompile(`(?m)^load\s+(\S+)\s+(\d+)m\s+(\d+)Mi\s*$`)
	var out string
	poll(t, 60*time.Second, "top pods --containers: spin busy, hold at its allocation", func() (bool, error) {
		var o, errOut syncBuffer
		if err := streamCLI(ctx, e.srv.ConfigPath, &o, &errOut, "top", "pods", "--containers"); err != nil {
			return false, fmt.Errorf("%v: %s", err, errOut.String())
		}
		out = o.String()
		got := map[string][2]int64{}
		for _, m := range row.FindAllStringSubmatch(out, -1) {
			cpu, _ := strconv.ParseInt(m[2], 10, 64)
			mem, _ := strconv.ParseInt(m[3], 10, 64)
			got[m[1]] = [2]int64{cpu, mem}
		}
		spin, okS := got["spin"]
		hold, okH := got["hold"]
		return okS && okH && spin[0] > 0 && hold[1] >= held>>20, fmt.Errorf("output:\n%s", out)
	})
	t.Logf("top pods --containers (%v after the pod was Ready):\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.HasPrefix(out, "POD") || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "CPU(cores)") {
		t.Errorf("top pods --containers header: %q", out)
	}

	// Per pod, across namespaces.
	var o, errOut syncBuffer
	if err := streamCLI(ctx, e.srv.ConfigPath, &o, &errOut, "top", "pods", "-A"); err != nil {
		t.Fatalf("top pods -A: %v %s", err, errOut.String())
	}
	t.Logf("top pods -A:\n%s", o.String())
	if !strings.HasPrefix(o.String(), "NAMESPACE") ||
		!regexp.MustCompile(`(?m)^default\s+load\s+[1-9]\d*m\s+\d+Mi$`).MatchString(o.String()) {
		t.Errorf("top pods -A: want a header and a row for default/load with CPU > 0:\n%s", o.String())
	}

	// Nodes.
	var no, nerr syncBuffer
	if err := streamCLI(ctx, e.srv.ConfigPath, &no, &nerr, "top", "nodes"); err != nil {
		t.Fatalf("top nodes: %v %s", err, nerr.String())
	}
	t.Logf("top nodes:\n%s", no.String())
	m := regexp.MustCompile(`(?m)^n1\s+(\d+)m\s+(\d+)%\s+(\d+)Mi\s+(\d+)%\s*$`).FindStringSubmatch(no.String())
	if m == nil {
		t.Fatalf("top nodes has no row for n1 with figures:\n%s", no.String())
	}
	if cpu, _ := strconv.Atoi(m[1]); cpu <= 0 {
		t.Errorf("node CPU %dm with a busy loop running", cpu)
	}
	if mem, _ := strconv.Atoi(m[3]); mem < held>>20 {
		t.Errorf("node memory %dMi, less than the %dMi one container holds", mem, held>>20)
	}
}

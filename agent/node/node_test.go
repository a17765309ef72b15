package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/agent/crilog"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controlplane"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// TestMain lets the test binary serve as the CRI logger the shims run.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == crilog.Arg {
		crilog.Main(os.Args[2])
		return
	}
	os.Exit(m.Run())
}

// env is an API server on an in-process store and a private containerd
// with the test images, ready for agents.
type env struct {
	t       *testing.T
	srv     *apiservertest.Server
	c       *client.Client
	dir     string
	marker  string
	podCIDR string
	network bool // agents run the service proxy and cluster DNS
}

func newEnv(t *testing.T) *env {
	t.Helper()
	nodetest.RequireNode(t)
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	e := &env{t: t, srv: srv, c: srv.Client()}
	e.startNode()
	return e
}

// newControlPlaneEnv is newEnv with Skiff's whole control plane (store, API
// server, controllers, scheduler) instead of a bare API server.
func newControlPlaneEnv(t *testing.T) *env {
	t.Helper()
	return newControlPlaneEnvWith(t, nil)
}

// newControlPlaneEnvWith is newControlPlaneEnv with tweak applied to the
// control plane's config first (when not nil).
func newControlPlaneEnvWith(t *testing.T, tweak func(*controlplane.Config)) *env {
	t.Helper()
	nodetest.RequireNode(t)
	cfg := controlplane.DefaultConfig()
	cfg.Store.Name = "cp"
	cfg.Store.ListenClient, cfg.Store.ListenPeer, cfg.ListenAPI = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "cp")
	cfg.Logger = slog.New(slog.DiscardHandler)
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() { cp.Close() })
	admin, err := cp.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Config: admin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{t: t, c: c}
	e.startNode()
	return e
}

// startNode starts a private containerd with the test images and
// registers the teardown and leftover checks of the host.
func (e *env) startNode() {
	t := e.t
	d, dir := nodetest.StartDaemon(t)
	nodetest.ImportTestImages(t, d)
	_ = d.Close()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e.dir, e.marker, e.podCIDR = dir, "skn"+hex.EncodeToString(b), nodetest.FreeCIDR(t)
	t.Cleanup(func() {
		if left := nodetest.HostLeftovers(e.marker); len(left) > 0 {
			t.Errorf("left behind on the host:\n%s", strings.Join(left, "\n"))
		}
	})
	t.Cleanup(func() {
		// Teardown bounds itself by the number of pods (60 s + 2 s a pod,
		// then a sweep); the cap here only guards against a hang.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if err := node.Teardown(ctx, e.dir, nil); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
}

// startAgent runs an agent named name until Close or the end of the test.
func (e *env) startAgent(name string) *node.Agent {
	e.t.Helper()
	cfg := node.DefaultConfig(name, e.dir, e.c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = e.marker, e.marker, e.podCIDR
	cfg.HeartbeatInterval, cfg.Resync = time.Second, time.Second
	cfg.StreamListen = ":0"
	// The proxy's chains are global to the host and DNS needs a port on
	// the bridge: only the tests about them turn them on (startAgentNet).
	cfg.Proxy, cfg.DNS = e.network, e.network
	cfg.ClusterCIDR = "10.250.0.0/16" // nodetest.FreeCIDR's range
	if e.srv != nil {
		cfg.ClusterCA = e.srv.CACertPEM()
	}
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	a, err := node.Start(ctx, cfg)
	if err != nil {
		e.t.Fatalf("agent start: %v", err)
	}
	e.t.Logf("agent %s started in %v", name, time.Since(start).Round(time.Millisecond))
	e.t.Cleanup(func() { a.Close() })
	return a
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// waitPod polls the pod until cond holds.
func (e *env) waitPod(ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	var p *corev1.Pod
	nodetest.Poll(e.t, timeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func() (bool, error) {
		p = &corev1.Pod{}
		if err := e.c.Get(context.Background(), ns, name, p); err != nil {
			return false, err
		}
		if cond(p) {
			return true, nil
		}
		return false, fmt.Errorf("phase %s, conditions %v, containers %+v", p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	})
	return p
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func execOut(t *testing.T, rt *runtime.Runtime, uid, ctr string, cmd ...string) string {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := rt.Exec(ctx, uid, ctr, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		t.Fatalf("exec %v: code %d, err %v, output %q", cmd, code, err, out.String())
	}
	return out.String()
}

func boolPtr(b bool) *bool { return &b }

func int64Ptr(i int64) *int64 { return &i }

// TestNodeAndConfigMapPod: the Node is registered as a scheduler needs it,
// and a pod with env and envFrom from a configMap that does not exist yet
// waits with CreateContainerConfigError, then runs once it is created,
// with its environment visible inside the container and status Running
// with a pod IP.
func TestNodeAndConfigMapPod(t *testing.T) {
	e := newEnv(t)
	a := e.startAgent("n1")
	ctx := e.ctx()

	n := &corev1.Node{}
	if err := e.c.Get(ctx, "", "n1", n); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{node.LabelHostname, node.LabelOS, node.LabelArch} {
		if n.Labels[k] == "" {
			t.Errorf("node label %s missing: %v", k, n.Labels)
		}
	}
	if n.Spec.PodCIDR != e.podCIDR {
		t.Errorf("node podCIDR = %q, want %q", n.Spec.PodCIDR, e.podCIDR)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
		if q, ok := n.Status.Allocatable[r]; !ok || q.IsZero() {
			t.Errorf("node allocatable %s = %v", r, n.Status.Allocatable)
		}
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready || len(n.Status.Addresses) == 0 {
		t.Errorf("node not Ready with addresses: %+v", n.Status)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "envpod", Namespace: "default", Labels: map[string]string{"app": "env"}},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			TerminationGracePeriodSeconds: int64Ptr(1),
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
				Env: []corev1.EnvVar{
					{Name: "PLAIN", Value: "plain"},
					{Name: "FROM_KEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "color"}}},
					{Name: "MY_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				EnvFrom: []corev1.EnvFromSource{
					{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: boolPtr(true)}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}},
			}},
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "files"}}}}},
		},
	}
	files := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "files", Namespace: "default"},
		Data: map[string]string{"size": "XL"}}
	if err := e.c.Create(ctx, files); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if err := e.c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.waitPod("default", "envpod", 20*time.Second, "waits for its configMap", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "CreateContainerConfigError" &&
			strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Message, `configmap "settings" not found`)
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"},
		Data: map[string]string{"color": "blue", "size": "XL"}}
	if err := e.c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("default", "envpod", 30*time.Second, "Running and Ready with an IP", running)
	t.Logf("pod Running after %v (config map created meanwhile), IP %s, QoS %s", time.Since(created).Round(time.Millisecond),
		p.Status.PodIP, p.Status.QOSClass)
	if p.Status.QOSClass != corev1.PodQOSBurstable || p.Status.HostIP == "" || p.Status.StartTime == nil {
		t.Errorf("status: qos %s hostIP %q startTime %v", p.Status.QOSClass, p.Status.HostIP, p.Status.StartTime)
	}
	out := execOut(t, a.Runtime(), string(p.UID), "main", "env")
	for _, want := range []string{"PLAIN=plain", "FROM_KEY=blue", "MY_POD=envpod", "CFG_color=blue", "CFG_size=XL"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("env in the container lacks %s:\n%s", want, out)
		}
	}
	if got := execOut(t, a.Runtime(), string(p.UID), "main", "cat", "/etc/cfg/size"); got != "XL" {
		t.Errorf("configMap volume file size = %q, want XL", got)
	}

	// A status someone else writes (as the node lifecycle controller does
	// for an unreachable node) is put right at the next resync.
	err := client.RetryOnConflict(ctx, 10, func() error {
		bogus := &corev1.Pod{}
		if err := e.c.Get(ctx, "default", "envpod", bogus); err != nil {
			return err
		}
		bogus.Status.Phase = corev1.PodUnknown
		bogus.Status.Conditions = nil
		return e.c.UpdateStatus(ctx, bogus)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPod("default", "envpod", 10*time.Second, "status reasserted by the agent", running)

	// Events were recorded about the pod.
	nodetest.Poll(t, 10*time.Second, "Started event", func() (bool, error) {
		var evs corev1.EventList
		if err := e.c.List(context.Background(), "default", &evs, client.ListOptions{}); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == "envpod" && ev.Reason == "Started" && ev.Source.Host == "n1" {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none Started", len(evs.Items))
	})
}

// TestRestartAndDelete: an agent restart adopts running pods without
// restarting them; logs and exec reach the pod through the API server; a
// pod deleted through the API is stopped, its cgroup
// and netns removed, and the pod object deleted for good.
func TestRestartAndDelete(t *testing.T) {
	e := newEnv(t)
	a := e.startAgent("n1")
	ctx := e.ctx()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			TerminationGracePeriodSeconds: int64Ptr(1),
			Containers: []corev1.Container{{Name: "httpd", Image: "skiff.local/httpd:latest",
				Env: []corev1.EnvVar{{Name: "MESSAGE", Value: "hello from web"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstrFromInt(80)}}, PeriodSeconds: 1}}},
		},
	}
	if err := e.c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("default", "web", 30*time.Second, "Running and Ready", running)
	body := httpGet(t, "http://"+p.Status.PodIP+"/")
	if !strings.Contains(body, "hello from web") {
		t.Errorf("pod answers %q", body)
	}
	before, err := a.Runtime().PodStatus(ctx, string(p.UID))
	if err != nil {
		t.Fatal(err)
	}

	a.Close()
	a = e.startAgent("n1")
	// Give the new agent's workers a few passes, then compare.
	nodetest.Poll(t, 10*time.Second, "status rewritten by the new agent", func() (bool, error) {
		q := &corev1.Pod{}
		if err := e.c.Get(context.Background(), "default", "web", q); err != nil {
			return false, err
		}
		return running(q), nil
	})
	after, err := a.Runtime().PodStatus(ctx, string(p.UID))
	if err != nil {
		t.Fatal(err)
	}
	if after.SandboxID != before.SandboxID || len(after.Containers) != 1 ||
		after.Containers[0].ID != before.Containers[0].ID || after.Containers[0].Pid != before.Containers[0].Pid ||
		after.Containers[0].RestartCount != 0 {
		t.Errorf("agent restart touched the pod:\nbefore %+v\nafter  %+v", before, after)
	}
	q := &corev1.Pod{}
	if err := e.c.Get(ctx, "default", "web", q); err != nil {
		t.Fatal(err)
	}
	if rc := q.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Errorf("restartCount after agent restart = %d, want 0", rc)
	}

	// Logs and exec through the API server to the agent (the new one).
	logs, err := e.c.PodStreams().Logs(ctx, &skiffv1.LogsRequest{Namespace: "default", Pod: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var logText strings.Builder
	for {
		m, err := logs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		logText.Write(m.Data)
	}
	if !strings.Contains(logText.String(), "skiff httpd: hostname=web") {
		t.Errorf("logs through the API server = %q", logText.String())
	}
	ex, err := e.c.PodStreams().Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Send(&skiffv1.ExecRequest{Start: &skiffv1.ExecStart{Namespace: "default", Pod: "web", Stdin: true,
		Command: []string{"sh", "-c", "read x; echo got $x; echo oops >&2; exit 7"}}}); err != nil {
		t.Fatal(err)
	}
	_ = ex.Send(&skiffv1.ExecRequest{Stdin: []byte("ping\n")})
	_ = ex.Send(&skiffv1.ExecRequest{StdinClosed: true})
	var stdout, stderr strings.Builder
	code := int32(-1)
	for {
		m, err := ex.Recv()
		if err != nil {
			t.Fatalf("exec: %v (stdout %q)", err, stdout.String())
		}
		if m.Exited {
			code = m.ExitCode
			break
		}
		if m.Stream == 2 {
			stderr.Write(m.Data)
		} else {
			stdout.Write(m.Data)
		}
	}
	if stdout.String() != "got ping\n" || stderr.String() != "oops\n" || code != 7 {
		t.Errorf("exec through the API server: stdout %q stderr %q code %d; want \"got ping\\n\", \"oops\\n\", 7",
			stdout.String(), stderr.String(), code)
	}

	cgroup := "/sys/fs/cgroup/memory/" + after.CgroupPath
	if _, err := os.Stat(cgroup); err != nil {
		t.Fatalf("pod cgroup %s: %v", cgroup, err)
	}
	if _, err := os.Stat(after.NetnsPath); err != nil {
		t.Fatalf("pod netns %s: %v", after.NetnsPath, err)
	}
	start := time.Now()
	pending, err := e.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}, nil)
	if err != nil || !pending {
		t.Fatalf("delete: pending %v, err %v (a bound pod waits for its agent)", pending, err)
	}
	nodetest.Poll(t, 30*time.Second, "pod object deleted by the agent", func() (bool, error) {
		err := e.c.Get(context.Background(), "default", "web", &corev1.Pod{})
		return client.IsNotFound(err), err
	})
	t.Logf("pod gone from the API %v after delete (grace 1s)", time.Since(start).Round(time.Millisecond))
	for _, path := range []string{cgroup, after.NetnsPath} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s still exists after the pod was deleted (err %v)", path, err)
		}
	}
	if _, err := a.Runtime().PodStatus(ctx, string(p.UID)); err == nil {
		t.Errorf("runtime still has the pod")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	nodetest.Poll(t, 10*time.Second, "GET "+url, func() (bool, error) {
		// A new connection each time: a kept-alive one made before the
		// proxy's rules were in place would go on to the wrong peer.
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %s, body %q", resp.Status, body)
		}
		return err == nil, err
	})
	return body
}

func intstrFromInt(i int) intstr.IntOrString { return intstr.FromInt32(int32(i)) }

// TestDeployment: through Skiff's control plane (controllers, scheduler),
// a Deployment of 3 replicas of the HTTP image, with requests and limits,
// gets 3 pods Running on the agent, each answering on its pod IP; deleting
// the Deployment removes them.
func TestDeployment(t *testing.T) {
	e := newControlPlaneEnv(t)
	e.startAgent("n1")
	ctx := e.ctx()

	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: int64Ptr(1),
					Containers: []corev1.Container{{Name: "httpd", Image: "skiff.local/httpd:latest",
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstrFromInt(80)}}, PeriodSeconds: 1}}},
				},
			},
		},
	}
	start := time.Now()
	if err := e.c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	nodetest.Poll(t, 60*time.Second, "3 pods Running and Ready", func() (bool, error) {
		pods = corev1.PodList{}
		if err := e.c.List(context.Background(), "default", &pods, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			return false, err
		}
		n := 0
		for i := range pods.Items {
			if running(&pods.Items[i]) {
				n++
			}
		}
		return n == 3 && len(pods.Items) == 3, fmt.Errorf("%d of %d pods running", n, len(pods.Items))
	})
	t.Logf("3 replicas Running and Ready %v after the Deployment was created", time.Since(start).Round(time.Millisecond))
	for _, p := range pods.Items {
		if body := httpGet(t, "http://"+p.Status.PodIP+"/"); !strings.Contains(body, p.Name) {
			t.Errorf("pod %s at %s answers %q, want its hostname", p.Name, p.Status.PodIP, body)
		}
	}
	nodetest.Poll(t, 30*time.Second, "deployment available", func() (bool, error) {
		cur := &appsv1.Deployment{}
		if err := e.c.Get(context.Background(), "default", "web", cur); err != nil {
			return false, err
		}
		return cur.Status.AvailableReplicas == 3, fmt.Errorf("status %+v", cur.Status)
	})
	// Deleting the Deployment removes its pods from the node.
	if _, err := e.c.Delete(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "pods gone", func() (bool, error) {
		var left corev1.PodList
		if err := e.c.List(context.Background(), "default", &left, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			return false, err
		}
		return len(left.Items) == 0, fmt.Errorf("%d pods left", len(left.Items))
	})
}

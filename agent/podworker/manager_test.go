package podworker_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/agent/crilog"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/podstate"
	"github.com/skiffhq/skiff/agent/podworker"
	"github.com/skiffhq/skiff/agent/runtime"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == crilog.Arg {
		crilog.Main(os.Args[2])
		return
	}
	os.Exit(m.Run())
}

// statuses records what the manager reports.
type statuses struct {
	mu   sync.Mutex
	last map[types.UID]corev1.PodStatus
	seen map[string]bool // waiting reasons ever reported
}

func (s *statuses) on(pod *corev1.Pod, st corev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[pod.UID] = st
	for _, c := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		if c.State.Waiting != nil {
			s.seen[c.State.Waiting.Reason] = true
		}
	}
}

func (s *statuses) get(uid types.UID) corev1.PodStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.last[uid]
	return *st.DeepCopy()
}

func (s *statuses) saw(reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[reason]
}

func setup(t *testing.T) (*podworker.Manager, *runtime.Runtime, *statuses) {
	rt, _ := nodetest.Runtime(t, false)
	st := &statuses{last: map[types.UID]corev1.PodStatus{}, seen: map[string]bool{}}
	m := podworker.New(rt, podworker.Config{
		NodeIP: "192.0.2.10",
		Resync: 200 * time.Millisecond,
		// Long enough that a pass sees the window even on a loaded machine
		// (3s was missed twice in a row at load 13: a pass that comes after
		// the window restarts at once, as the kubelet does, and reports no
		// CrashLoopBackOff).
		Backoff:  podstate.NewBackoff(6*time.Second, 6*time.Second, time.Minute),
		OnStatus: st.on,
	})
	t.Cleanup(m.Close)
	return m, rt, st
}

func newPod(name string, policy corev1.RestartPolicy, cs ...corev1.Container) *corev1.Pod {
	one := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name + "-" + time.Now().Format("150405.000"))},
		Spec:       corev1.PodSpec{RestartPolicy: policy, Containers: cs, TerminationGracePeriodSeconds: &one},
	}
}

func execProbe(cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 10}
}

func container(st corev1.PodStatus, name string) corev1.ContainerStatus {
	for _, c := range st.ContainerStatuses {
		if c.Name == name {
			return c
		}
	}
	return corev1.ContainerStatus{}
}

// TestCrashLoopAndCompletion: Always restarts a failing container with
// back-off (CrashLoopBackOff shown, restartCount and lastState kept);
// OnFailure lets a successful container complete the pod.
func TestCrashLoopAndCompletion(t *testing.T) {
	m, _, st := setup(t)
	crash := newPod("crash", corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo boom; exit 3"}})
	done := newPod("done", corev1.RestartPolicyOnFailure, corev1.Container{Name: "c", Image: "busybox", Command: []string{"true"}})
	done.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"true"}}}
	ctx := context.Background()
	if err := m.Sync(ctx, []*corev1.Pod{crash, done}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "crash loop reaches restartCount 2 with lastState exit 3", func() (bool, error) {
		c := container(st.get(crash.UID), "c")
		lt := c.LastTerminationState.Terminated
		return c.RestartCount >= 2 && lt != nil && lt.ExitCode == 3 && st.get(crash.UID).Phase == corev1.PodRunning, nil
	})
	if !st.saw("CrashLoopBackOff") {
		t.Error("CrashLoopBackOff was never reported")
	}
	nodetest.Poll(t, 30*time.Second, "OnFailure pod with exit 0 Succeeded", func() (bool, error) {
		s := st.get(done.UID)
		return s.Phase == corev1.PodSucceeded && len(s.InitContainerStatuses) == 1 && s.PodIP != "", nil
	})
	// Deleting both from the desired set removes them.
	if err := m.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestProbes: readiness flips Ready, liveness failure restarts.
func TestProbes(t *testing.T) {
	m, rt, st := setup(t)
	pod := newPod("probed", corev1.RestartPolicyAlways, corev1.Container{
		Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
		LivenessProbe:  execProbe("sh", "-c", "test ! -f /tmp/dead"),
		ReadinessProbe: execProbe("test", "-f", "/tmp/ready"),
	})
	ctx := context.Background()
	if err := m.Sync(ctx, []*corev1.Pod{pod}); err != nil {
		t.Fatal(err)
	}
	ready := func(want bool) func() (bool, error) {
		return func() (bool, error) {
			s := st.get(pod.UID)
			c := container(s, "app")
			var podReady bool
			for _, cond := range s.Conditions {
				if cond.Type == corev1.PodReady {
					podReady = cond.Status == corev1.ConditionTrue
				}
			}
			return c.State.Running != nil && c.Ready == want && podReady == want, nil
		}
	}
	nodetest.Poll(t, 30*time.Second, "running, not ready", ready(false))
	uid := string(pod.UID)
	if _, err := rt.Exec(ctx, uid, "app", runtime.ExecOptions{Cmd: []string{"touch", "/tmp/ready"}}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 30*time.Second, "ready after /tmp/ready appears", ready(true))
	if _, err := rt.Exec(ctx, uid, "app", runtime.ExecOptions{Cmd: []string{"touch", "/tmp/dead"}}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "liveness failure restarts the container (not ready again)", func() (bool, error) {
		c := container(st.get(pod.UID), "app")
		return c.RestartCount == 1 && c.State.Running != nil && !c.Ready, nil
	})
}

// TestOrphansRemoved: a pod the runtime runs but nobody asks for (left
// from before an agent restart) is removed by Sync.
func TestOrphansRemoved(t *testing.T) {
	m, rt, _ := setup(t)
	orphan := newPod("orphan", corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}})
	ctx := context.Background()
	if _, err := rt.RunPod(ctx, runtime.PodInput{Pod: orphan}); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pods, err := rt.ListPods(ctx)
	if err != nil || len(pods) != 0 {
		t.Fatalf("after Sync(nil): %v %+v", err, pods)
	}
}

// events records OnEvent calls.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) on(pod *corev1.Pod, typ, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, reason)
}

func (e *events) has(reason string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.got {
		if r == reason {
			return true
		}
	}
	return false
}

// TestOOMRestartAndAdoption: a container allocating past its limit shows
// lastState OOMKilled and restarts, with an OOMKilling event; a second
// manager on the same runtime (agent restart) adopts a healthy pod without
// restarting it.
func TestOOMRestartAndAdoption(t *testing.T) {
	rt, _ := nodetest.Runtime(t, false)
	st := &statuses{last: map[types.UID]corev1.PodStatus{}, seen: map[string]bool{}}
	ev := &events{}
	cfg := podworker.Config{Resync: 200 * time.Millisecond, Backoff: podstate.NewBackoff(time.Second, 2*time.Second, time.Minute),
		OnStatus: st.on, OnEvent: ev.on}
	m := podworker.New(rt, cfg)
	mem := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	hog := newPod("hog", corev1.RestartPolicyAlways, corev1.Container{Name: "hog", Image: "busybox", Resources: corev1.ResourceRequirements{Limits: mem},
		Command: []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); sleep 3600`}})
	calm := newPod("calm", corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: "nginx"})
	ctx := context.Background()
	if err := m.Sync(ctx, []*corev1.Pod{hog, calm}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "hog restarted after OOMKilled", func() (bool, error) {
		c := container(st.get(hog.UID), "hog")
		lt := c.LastTerminationState.Terminated
		return c.RestartCount >= 1 && lt != nil && lt.Reason == "OOMKilled", nil
	})
	if !ev.has("OOMKilling") || !ev.has("Started") {
		t.Errorf("events %v lack OOMKilling or Started", ev.got)
	}
	var before corev1.ContainerStatus
	nodetest.Poll(t, 30*time.Second, "calm pod running", func() (bool, error) {
		before = container(st.get(calm.UID), "c")
		return before.State.Running != nil, nil
	})
	m.Close()

	st2 := &statuses{last: map[types.UID]corev1.PodStatus{}, seen: map[string]bool{}}
	cfg.OnStatus = st2.on
	m2 := podworker.New(rt, cfg)
	defer m2.Close()
	if err := m2.Sync(ctx, []*corev1.Pod{calm}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 30*time.Second, "new manager reports the calm pod", func() (bool, error) {
		c := container(st2.get(calm.UID), "c")
		return c.State.Running != nil, nil
	})
	after := container(st2.get(calm.UID), "c")
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 {
		t.Errorf("adopted container %s (restarts %d), want the same %s untouched", after.ContainerID, after.RestartCount, before.ContainerID)
	}
	// The hog pod, no longer desired and without a worker, is removed.
	pods, err := rt.ListPods(ctx)
	if err != nil || len(pods) != 1 || pods[0].UID != string(calm.UID) {
		t.Errorf("pods after the second Sync: %v %+v", err, pods)
	}
}

// TestImagePullBackOff: an image the node does not have shows ErrImagePull,
// then ImagePullBackOff while the back-off lasts (not a retry every pass).
func TestImagePullBackOff(t *testing.T) {
	m, _, st := setup(t)
	p := newPod("nopull", corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: "skiff.local/absent:1"})
	ctx := context.Background()
	if err := m.Sync(ctx, []*corev1.Pod{p}); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 30*time.Second, "ErrImagePull then ImagePullBackOff", func() (bool, error) {
		return st.saw("ErrImagePull") && st.saw("ImagePullBackOff"), nil
	})
	c := container(st.get(p.UID), "c")
	if w := c.State.Waiting; w == nil || (w.Reason != "ImagePullBackOff" && w.Reason != "ErrImagePull") {
		t.Errorf("container state = %+v, want waiting on the image", c.State)
	}
	if err := m.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

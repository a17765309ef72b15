package podworker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/podstate"
	"github.com/skiffhq/skiff/agent/probe"
	"github.com/skiffhq/skiff/agent/runtime"
)

// worker owns one pod. Only its goroutine touches the pod's containers.
type worker struct {
	m     *Manager
	wake  chan struct{}
	mu    sync.Mutex
	pod   *corev1.Pod
	stop  bool
	stat  corev1.PodStatus
	valid bool

	probes map[string]*probeState // by container name
	// waiting holds the reason a container is not running, for the status.
	waiting map[string]*corev1.ContainerStateWaiting
	// oomReported: container instances whose OOM kill was told as an event.
	oomReported map[string]bool
	// mountFailed: a FailedMount event was told for the current wait.
	mountFailed bool
	// holdsSlot: this pass holds a start slot (worker goroutine only).
	holdsSlot bool
}

// probeState tracks the probes of one container instance.
type probeState struct {
	id                        string // container instance the state belongs to
	startup, liveness, ready  *probe.Tracker
	startupDone               bool
	lastStartup, lastLiveness time.Time
	lastReadiness             time.Time
}

func newWorker(m *Manager, p *corev1.Pod) *worker {
	return &worker{m: m, pod: p, wake: make(chan struct{}, 1), probes: map[string]*probeState{},
		waiting: map[string]*corev1.ContainerStateWaiting{}, oomReported: map[string]bool{}}
}

func (w *worker) event(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	if w.m.cfg.OnEvent != nil {
		w.m.cfg.OnEvent(pod, eventType, reason, fmt.Sprintf(format, args...))
	}
}

func (w *worker) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// update hands the worker the latest pod; only a change the worker acts on
// (spec, deletion, labels and annotations for the downward API) wakes it,
// not a new status — every status write of every pod comes back here.
func (w *worker) update(p *corev1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p
	w.mu.Unlock()
	if old != nil && old.UID == p.UID && equality.Semantic.DeepEqual(old.Spec, p.Spec) &&
		equality.Semantic.DeepEqual(old.DeletionTimestamp, p.DeletionTimestamp) &&
		equality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, p.DeletionGracePeriodSeconds) &&
		equality.Semantic.DeepEqual(old.Labels, p.Labels) && equality.Semantic.DeepEqual(old.Annotations, p.Annotations) {
		return
	}
	w.kick()
}

func (w *worker) terminate() {
	w.mu.Lock()
	w.stop = true
	w.mu.Unlock()
	w.kick()
}

func (w *worker) lastStatus() (corev1.PodStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return *w.stat.DeepCopy(), w.valid
}

func (w *worker) run(ctx context.Context) {
	t := time.NewTimer(w.m.cfg.Resync)
	defer t.Stop()
	for {
		w.mu.Lock()
		pod, stop := w.pod, w.stop
		w.mu.Unlock()
		if stop {
			removed := w.remove(pod)
			w.m.mu.Lock()
			delete(w.m.terminating, pod.UID)
			w.m.mu.Unlock()
			if removed && w.m.cfg.OnRemoved != nil {
				w.m.cfg.OnRemoved(pod)
			}
			return
		}
		w.pass(ctx, pod)
		t.Reset(w.interval(pod))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// interval is the time to the next pass when nothing wakes the worker:
// Resync while the pod is getting somewhere (starting, waiting, backing
// off, terminating containers); once every container runs (or the pod is
// done), the shortest probe period, at most IdleResync. Exits, OOMs and
// changes from the API wake the worker anyway, so a steady pod costs
// containerd little (100 idle pods at Resync each are hundreds of calls a
// second).
func (w *worker) interval(pod *corev1.Pod) time.Duration {
	base, idle := w.m.cfg.Resync, w.m.cfg.IdleResync
	if idle <= base {
		return base
	}
	w.mu.Lock()
	st, valid := w.stat, w.valid
	w.mu.Unlock()
	if !valid {
		return base
	}
	switch st.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return idle
	case corev1.PodRunning:
	default:
		return base
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil {
			return base
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if p == nil {
				continue
			}
			period := 10 * time.Second
			if p.PeriodSeconds > 0 {
				period = time.Duration(p.PeriodSeconds) * time.Second
			}
			idle = min(idle, max(period, base))
		}
	}
	return idle
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

func (w *worker) remove(pod *corev1.Pod) bool {
	grace := gracePeriod(pod)
	ctx, cancel := context.WithTimeout(context.Background(), grace+time.Minute)
	defer cancel()
	log := w.m.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name)
	w.event(pod, corev1.EventTypeNormal, "Killing", "Stopping pod (grace period %v)", grace)
	if err := w.m.rt.RemovePod(ctx, string(pod.UID), grace); err != nil {
		log.Error("remove pod", "err", err)
		return false
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		w.m.cfg.Backoff.Forget(string(pod.UID) + "/" + c.Name)
		w.m.cfg.Backoff.Forget(pullKey(string(pod.UID) + "/" + c.Name))
	}
	log.Info("pod removed")
	return true
}

// pass is one level-triggered step: read the pod from the runtime, start
// or restart what is due, probe, report.
func (w *worker) pass(ctx context.Context, pod *corev1.Pod) {
	log := w.m.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name)
	rt := w.m.rt
	uid := string(pod.UID)
	in := runtime.PodInput{Pod: pod}
	var configErr error
	if w.m.cfg.Resolve != nil {
		in, configErr = w.m.cfg.Resolve(ctx, pod)
		in.Pod = pod
	}
	ps, err := rt.PodStatus(ctx, uid)
	if err == nil && ps.SandboxState != runtime.StateRunning {
		log.Info("sandbox is not running; recreating the pod", "state", ps.SandboxState)
		w.event(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		if err := rt.RemovePod(ctx, uid, 0); err != nil {
			log.Error("remove dead sandbox", "err", err)
			return
		}
		err = runtime.ErrPodNotFound
	}
	if errors.Is(err, runtime.ErrPodNotFound) {
		if errors.Is(configErr, ErrVolumesNotReady) {
			// As the kubelet: no sandbox until the volumes can be made; the
			// pod shows ContainerCreating and a FailedMount event.
			log.Info("waiting for volumes", "err", configErr)
			if !w.mountFailed {
				w.event(pod, corev1.EventTypeWarning, "FailedMount", "%v", configErr)
			}
			w.mountFailed = true
			w.report(pod, nil, "ContainerCreating", configErr)
			return
		}
		w.mountFailed = false
		// One start slot for the sandbox and this pass's container
		// starts: a pod, once begun, is finished before others begin.
		release := w.m.startSlot(ctx)
		w.holdsSlot = true
		defer func() { w.holdsSlot = false; release() }()
		ps, err = rt.RunSandbox(ctx, in)
		if err != nil {
			log.Error("create sandbox", "err", err)
			w.report(pod, nil, "CreatePodSandboxError", err)
			return
		}
		log.Info("sandbox created", "ip", ps.IP)
	} else if err != nil {
		log.Error("read pod from runtime", "err", err)
		return
	}

	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		done, _ := w.ensure(ctx, in, ps, c, true, configErr, log)
		if !done {
			initDone = false
			break
		}
	}
	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			_, _ = w.ensure(ctx, in, ps, c, false, configErr, log)
		}
	}
	ps, err = rt.PodStatus(ctx, uid)
	if err != nil {
		return
	}
	if initDone {
		w.runProbes(ctx, pod, ps, log)
	}
	w.report(pod, ps, "", nil)
}

// ensure brings one container where the restart policy wants it. For an
// init container, done says it completed successfully.
func (w *worker) ensure(ctx context.Context, in runtime.PodInput, ps *runtime.PodStatus, c *corev1.Container,
	isInit bool, configErr error, log interface {
		Info(string, ...any)
		Error(string, ...any)
	}) (done bool, err error) {
	pod := in.Pod
	key := string(pod.UID) + "/" + c.Name
	cur, exists := ps.Container(c.Name)
	if exists {
		switch cur.State {
		case runtime.StateRunning:
			delete(w.waiting, c.Name)
			return false, nil
		case runtime.StateExited:
			if cur.OOMKilled && !w.oomReported[cur.ID] {
				w.oomReported[cur.ID] = true
				w.event(pod, corev1.EventTypeWarning, "OOMKilling", "Container %s was OOM-killed (memory limit %s)",
					c.Name, c.Resources.Limits.Memory().String())
			}
			if isInit && cur.ExitCode == 0 {
				delete(w.waiting, c.Name)
				return true, nil
			}
			if !podstate.ShouldRestart(pod.Spec.RestartPolicy, cur.ExitCode, isInit) {
				delete(w.waiting, c.Name)
				return false, nil
			}
			if waiting, left := w.m.cfg.Backoff.Waiting(key, time.Now()); waiting {
				if w.waiting[c.Name] == nil || w.waiting[c.Name].Reason != "CrashLoopBackOff" {
					w.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s", c.Name)
				}
				w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: fmt.Sprintf("back-off %v restarting failed container=%s pod=%s_%s(%s)",
						left.Round(time.Second), c.Name, pod.Name, pod.Namespace, pod.UID)}
				return false, nil
			}
			w.m.cfg.Backoff.Next(key, time.Now())
		}
	}
	if configErr != nil {
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: configErr.Error()}
		return false, configErr
	}
	// An image that could not be had is tried again after the same
	// doubling back-off as a crash loop (the kubelet's ImagePullBackOff),
	// not on every pass of the worker.
	if waiting, _ := w.m.cfg.Backoff.Waiting(pullKey(key), time.Now()); waiting {
		// As the kubelet since 1.30, the message keeps the last pull's
		// error: it says what to do about it.
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		prev := w.waiting[c.Name]
		switch {
		case prev != nil && prev.Reason == "ErrImagePull":
			msg += ": ErrImagePull: " + prev.Message
		case prev != nil && prev.Reason == "ImagePullBackOff":
			msg = prev.Message
		}
		if prev == nil || prev.Reason != "ImagePullBackOff" {
			w.event(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
			w.event(pod, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		}
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}
		return false, nil
	}
	if err := w.ensureImage(ctx, pod, c, key, log); err != nil {
		return false, err
	}
	release := func() {}
	if !w.holdsSlot {
		release = w.m.startSlot(ctx)
	}
	st, err := w.m.rt.StartContainer(ctx, in, c.Name)
	release()
	if err == nil || !errors.Is(err, runtime.ErrImageNotFound) {
		w.m.cfg.Backoff.Forget(pullKey(key))
	}
	switch {
	case errors.Is(err, runtime.ErrImageNotFound):
		w.m.cfg.Backoff.Next(pullKey(key), time.Now())
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
	case errors.Is(err, runtime.ErrInvalidInput):
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
	case err != nil:
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
	default:
		delete(w.waiting, c.Name)
		delete(w.probes, c.Name)
		log.Info("container started", "container", c.Name, "restartCount", st.RestartCount)
		w.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
		w.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	}
	if err != nil {
		log.Error("start container", "container", c.Name, "err", err)
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: %s: %v", w.waiting[c.Name].Reason, err)
	}
	return false, err
}

// runProbes runs the probes that are due for each running app container.
// A liveness (or startup) failure stops the container; the next pass
// restarts it by the restart policy.
func (w *worker) runProbes(ctx context.Context, pod *corev1.Pod, ps *runtime.PodStatus, log interface {
	Info(string, ...any)
	Error(string, ...any)
}) {
	now := time.Now()
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur, ok := ps.Container(c.Name)
		if !ok || cur.State != runtime.StateRunning {
			continue
		}
		st := w.probes[c.Name]
		if st == nil || st.id != cur.ID {
			st = &probeState{id: cur.ID, startupDone: c.StartupProbe == nil}
			if c.StartupProbe != nil {
				st.startup = probe.NewTracker(c.StartupProbe, probe.Unknown)
			}
			if c.LivenessProbe != nil {
				st.liveness = probe.NewTracker(c.LivenessProbe, probe.Success)
			}
			if c.ReadinessProbe != nil {
				st.ready = probe.NewTracker(c.ReadinessProbe, probe.Failure)
			}
			w.probes[c.Name] = st
		}
		target := probe.Target{PodIP: ps.IP, Container: c, Exec: w.execer(pod, c.Name)}
		due := func(p *corev1.Probe, last time.Time) bool {
			if now.Sub(cur.StartedAt) < time.Duration(p.InitialDelaySeconds)*time.Second {
				return false
			}
			period := time.Duration(p.PeriodSeconds) * time.Second
			if period <= 0 {
				period = 10 * time.Second
			}
			return now.Sub(last) >= period
		}
		kill := func(why string) {
			log.Info("killing container", "container", c.Name, "reason", why)
			w.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s", why)
			w.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed its probe, will be restarted", c.Name)
			if err := w.m.rt.StopContainer(ctx, string(pod.UID), c.Name, gracePeriod(pod)); err != nil {
				log.Error("stop container", "container", c.Name, "err", err)
			}
			delete(w.probes, c.Name)
		}
		if !st.startupDone {
			if due(c.StartupProbe, st.lastStartup) {
				st.lastStartup = now
				res, msg := probe.Run(ctx, c.StartupProbe, target)
				if r, _ := st.startup.Observe(res); r == probe.Success {
					st.startupDone = true
				} else if r == probe.Failure {
					kill("startup probe failed: " + msg)
					continue
				}
			}
			continue // liveness and readiness wait for startup
		}
		if st.liveness != nil && due(c.LivenessProbe, st.lastLiveness) {
			st.lastLiveness = now
			res, msg := probe.Run(ctx, c.LivenessProbe, target)
			if r, changed := st.liveness.Observe(res); r == probe.Failure && changed {
				kill("liveness probe failed: " + msg)
				continue
			}
		}
		if st.ready != nil && due(c.ReadinessProbe, st.lastReadiness) {
			st.lastReadiness = now
			res, msg := probe.Run(ctx, c.ReadinessProbe, target)
			if r, changed := st.ready.Observe(res); changed {
				log.Info("readiness changed", "container", c.Name, "ready", r == probe.Success, "msg", msg)
				if r == probe.Failure {
					w.event(pod, corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: %s", msg)
				}
			}
		}
	}
}

func (w *worker) execer(pod *corev1.Pod, name string) probe.Execer {
	return func(ctx context.Context, cmd []string) (int, []byte, error) {
		var out lockedBuffer
		code, err := w.m.rt.Exec(ctx, string(pod.UID), name, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
		return code, out.Bytes(), err
	}
}

// ready says whether a running container counts as ready.
func (w *worker) ready(c *corev1.Container, cs runtime.ContainerStatus) bool {
	if cs.State != runtime.StateRunning {
		return false
	}
	st := w.probes[c.Name]
	if c.StartupProbe != nil && (st == nil || !st.startupDone) {
		return false
	}
	if c.ReadinessProbe == nil {
		return true
	}
	return st != nil && st.ready != nil && st.ready.Result() == probe.Success
}

// report builds the Kubernetes status and calls OnStatus when it changed.
func (w *worker) report(pod *corev1.Pod, ps *runtime.PodStatus, sandboxReason string, sandboxErr error) {
	var s corev1.PodStatus
	s.HostIP = w.m.cfg.NodeIP
	if s.HostIP != "" {
		s.HostIPs = []corev1.HostIP{{IP: s.HostIP}}
	}
	s.QOSClass = runtime.QOSClass(pod)
	if ps != nil {
		s.PodIP = ps.IP
		if ps.IP != "" {
			s.PodIPs = []corev1.PodIP{{IP: ps.IP}}
		}
		st := metav1.NewTime(ps.CreatedAt)
		s.StartTime = &st
	}
	render := func(c *corev1.Container) corev1.ContainerStatus {
		var ks corev1.ContainerStatus
		if ps != nil {
			if cs, ok := ps.Container(c.Name); ok {
				ks = cs.KubeStatus()
				ks.Ready = w.ready(c, cs)
			}
		}
		if ks.Name == "" {
			ks = corev1.ContainerStatus{Name: c.Name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
			if sandboxErr != nil {
				ks.State.Waiting = &corev1.ContainerStateWaiting{Reason: sandboxReason, Message: sandboxErr.Error()}
			}
		}
		if wt := w.waiting[c.Name]; wt != nil {
			if ks.State.Terminated != nil && wt.Reason == "CrashLoopBackOff" {
				ks.LastTerminationState = corev1.ContainerState{Terminated: ks.State.Terminated}
			}
			if ks.State.Running == nil {
				ks.State = corev1.ContainerState{Waiting: wt.DeepCopy()}
			}
		}
		ks.Image = c.Image
		return ks
	}
	initDone := true
	for i := range pod.Spec.InitContainers {
		ks := render(&pod.Spec.InitContainers[i])
		if ks.State.Terminated == nil || ks.State.Terminated.ExitCode != 0 {
			initDone = false
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, ks)
	}
	allReady := len(pod.Spec.Containers) > 0
	for i := range pod.Spec.Containers {
		ks := render(&pod.Spec.Containers[i])
		allReady = allReady && ks.Ready
		s.ContainerStatuses = append(s.ContainerStatuses, ks)
	}
	s.Phase = podstate.Phase(pod, s.InitContainerStatuses, s.ContainerStatuses)

	w.mu.Lock()
	prev := w.stat
	w.mu.Unlock()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		status := corev1.ConditionFalse
		if ok {
			status = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.Now()}
		for _, p := range prev.Conditions {
			if p.Type == t && p.Status == status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodScheduled, true),
		cond(corev1.PodInitialized, initDone),
		cond(corev1.ContainersReady, allReady),
		cond(corev1.PodReady, allReady),
	}
	if s.StartTime != nil && prev.StartTime != nil {
		s.StartTime = prev.StartTime
	}
	w.mu.Lock()
	changed := !w.valid || !equality.Semantic.DeepEqual(prev, s)
	w.stat, w.valid = s, true
	w.mu.Unlock()
	if changed && w.m.cfg.OnStatus != nil {
		w.m.cfg.OnStatus(pod, *s.DeepCopy())
	}
}

// pullKey is the back-off key of a container's image pulls, apart from its
// crash-loop key.
func pullKey(key string) string { return "pull/" + key }

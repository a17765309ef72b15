// Package podstate holds the pure rules the agent's pod workers apply on
// top of the runtime: whether a container should restart, the crash-loop
// back-off, and the pod phase derived from container statuses, all as the
// kubelet does them.
package podstate

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ShouldRestart says whether an exited container is to be started again
// under the pod's restartPolicy (Always; OnFailure when the exit code is
// not 0; Never). Init containers follow the same rule except that Always
// acts as OnFailure for them, since they must complete.
func ShouldRestart(policy corev1.RestartPolicy, exitCode int32, isInit bool) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default: // Always, or unset (the API default)
		return !isInit || exitCode != 0
	}
}

// Back-off bounds: the kubelet's 10 s initial delay, doubling to 5 min, and
// forgetting a container that ran cleanly for 10 min.
const (
	InitialBackoff = 10 * time.Second
	MaxBackoff     = 5 * time.Minute
	BackoffReset   = 10 * time.Minute
)

// Backoff is the crash-loop back-off per container key (e.g.
// "<pod uid>/<container>"). Safe for concurrent use.
type Backoff struct {
	mu      sync.Mutex
	entries map[string]*backoffEntry
	initial time.Duration
	max     time.Duration
	reset   time.Duration
}

type backoffEntry struct {
	delay time.Duration // the current delay
	last  time.Time     // when the current back-off started
}

// NewBackoff is a back-off with the kubelet's bounds (zero arguments mean
// the defaults).
func NewBackoff(initial, max, reset time.Duration) *Backoff {
	if initial <= 0 {
		initial = InitialBackoff
	}
	if max <= 0 {
		max = MaxBackoff
	}
	if reset <= 0 {
		reset = BackoffReset
	}
	return &Backoff{entries: map[string]*backoffEntry{}, initial: initial, max: max, reset: reset}
}

// Next records a restart of key at now (the container exited) and returns
// how long to wait before starting it again: initial, then doubled each
// time, capped at max; after reset without a restart it starts over.
func (b *Backoff) Next(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	switch {
	case !ok || now.Sub(e.last) > b.reset:
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	default:
		e.delay *= 2
		if e.delay > b.max {
			e.delay = b.max
		}
	}
	e.last = now
	return e.delay
}

// Waiting reports whether key is still inside its back-off window at now
// (a worker that sees true reports the container as waiting with reason
// CrashLoopBackOff) and how long is left.
func (b *Backoff) Waiting(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return false, 0
	}
	left := e.last.Add(e.delay).Sub(now)
	return left > 0, max(left, 0)
}

// Forget drops key (its pod is gone).
func (b *Backoff) Forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// Phase derives the pod phase from its container statuses as the kubelet
// does: Pending until the init containers have completed and while app
// containers wait to start for the first time; Running while any runs (or
// will be restarted); Succeeded when all terminated with 0; Failed when all
// terminated, some not with 0, and none will be restarted.
func Phase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus) corev1.PodPhase {
	policy := pod.Spec.RestartPolicy
	byName := func(list []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
		for _, s := range list {
			if s.Name == name {
				return s, true
			}
		}
		return corev1.ContainerStatus{}, false
	}
	for _, c := range pod.Spec.InitContainers {
		s, ok := byName(initStatuses, c.Name)
		if !ok || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			if ok && s.State.Terminated != nil && !ShouldRestart(policy, s.State.Terminated.ExitCode, true) {
				return corev1.PodFailed
			}
			return corev1.PodPending
		}
	}
	var running, waiting, succeeded, failed, restarting int
	for _, c := range pod.Spec.Containers {
		s, ok := byName(statuses, c.Name)
		switch {
		case !ok:
			waiting++
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			code := s.State.Terminated.ExitCode
			if ShouldRestart(policy, code, false) {
				restarting++
			} else if code == 0 {
				succeeded++
			} else {
				failed++
			}
		case s.LastTerminationState.Terminated != nil:
			restarting++ // waiting to be restarted (back-off)
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0 || restarting > 0:
		return corev1.PodRunning
	case failed > 0:
		return corev1.PodFailed
	case succeeded > 0:
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

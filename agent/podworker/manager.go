// Package podworker converges the runtime to the pods bound to this node:
// one worker goroutine per pod creates the sandbox, runs init containers in
// order, starts and restarts containers by the restart policy with the
// crash-loop back-off, runs startup, liveness and readiness probes, and
// reports a Kubernetes PodStatus whenever it changes.
//
// It is level-triggered: every pass reads the truth from the runtime
// (which reads it from containerd), so an agent restart or a containerd
// restart needs nothing special; events from the runtime only wake the
// worker early. It knows nothing of the API server: Sync takes the desired
// pods, OnStatus gives statuses back.
package podworker

import (
	"context"
	"errors"
	"log/slog"
	goruntime "runtime"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/agent/podstate"
	"github.com/skiffhq/skiff/agent/runtime"
)

// ErrVolumesNotReady, wrapped in Resolve's error, says a volume's files
// could not be made (a configMap or secret is missing): the pod's sandbox is
// not created until they can be, and the pod shows ContainerCreating with a
// FailedMount event. Any other Resolve error is a container's
// CreateContainerConfigError.
var ErrVolumesNotReady = errors.New("volumes not ready")

// Config of a Manager.
type Config struct {
	// NodeIP is reported as status.hostIP.
	NodeIP string
	// Resync is the period of a worker's pass when nothing wakes it, while
	// its pod is not steady (starting, backing off, stopping).
	Resync time.Duration
	// MaxConcurrentStarts bounds sandbox creations and container starts in
	// flight at once (default 2 per CPU): a hundred at once on a small node
	// all finish late, a few at a time finish early, and in total sooner.
	MaxConcurrentStarts int
	// IdleResync is the period once every container runs (shortened to the
	// pods' probe periods). Zero or not above Resync: always Resync.
	IdleResync time.Duration
	// Backoff is the crash-loop back-off (the kubelet's bounds when nil).
	Backoff *podstate.Backoff
	// Resolve builds the runtime input for a pod: env from configMaps and
	// secrets, configMap/secret/downwardAPI volume files. An error is shown
	// as CreateContainerConfigError and retried on the next pass. Nil: the
	// pod needs no cluster lookups.
	Resolve func(ctx context.Context, pod *corev1.Pod) (runtime.PodInput, error)
	// Images, when set, gets each container's image onto the node by its
	// imagePullPolicy before the container starts (see images.go). Nil:
	// nothing is pulled; an image the node lacks is ErrImagePull.
	Images ImageService
	// PullSecrets, when set, fetches a pod's imagePullSecrets (in the pod's
	// namespace) for its pulls: those it found, and an error naming those it
	// could not get. Such an error is a Warning event and the pull goes on
	// with the others, as with the kubelet. Called from worker goroutines.
	PullSecrets func(ctx context.Context, pod *corev1.Pod) ([]*corev1.Secret, error)
	// OnStatus is called, from the pod's worker goroutine, each time a pod's
	// status changes. It must not block for long.
	OnStatus func(pod *corev1.Pod, status corev1.PodStatus)
	// OnEvent, if set, is told what the kubelet would record as events:
	// eventType Normal or Warning, reasons Scheduled-free set: Created,
	// Started, Killing, BackOff, Unhealthy, Failed, OOMKilling, SandboxChanged,
	// Pulling, Pulled, ErrImageNeverPull.
	// Called from the pod's worker goroutine; must not block for long.
	OnEvent func(pod *corev1.Pod, eventType, reason, message string)
	// OnRemoved, if set, is called from the worker's goroutine once a pod
	// that stopped being desired has been stopped and removed from the
	// runtime (the agent then ends a graceful API deletion).
	OnRemoved func(pod *corev1.Pod)
	// Log receives one line per action and failure, with the pod's ns/name.
	Log *slog.Logger
}

// Manager runs one worker per desired pod.
type Manager struct {
	rt  *runtime.Runtime
	cfg Config

	starts chan struct{} // slots of MaxConcurrentStarts

	mu          sync.Mutex
	workers     map[types.UID]*worker
	terminating map[types.UID]bool // workers removing their pod
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// New starts a manager on rt. Close stops its workers; pods keep running.
func New(rt *runtime.Runtime, cfg Config) *Manager {
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.MaxConcurrentStarts <= 0 {
		cfg.MaxConcurrentStarts = 2 * goruntime.NumCPU()
	}
	if cfg.Backoff == nil {
		cfg.Backoff = podstate.NewBackoff(0, 0, 0)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{rt: rt, cfg: cfg, starts: make(chan struct{}, cfg.MaxConcurrentStarts), workers: map[types.UID]*worker{}, terminating: map[types.UID]bool{}, ctx: ctx, cancel: cancel}
	m.wg.Add(1)
	go m.forwardEvents()
	return m
}

// startSlot waits for a start slot and returns its release.
func (m *Manager) startSlot(ctx context.Context) func() {
	select {
	case m.starts <- struct{}{}:
		return func() { <-m.starts }
	case <-ctx.Done():
		return func() {}
	}
}

// forwardEvents wakes the worker of the pod an exit or OOM is about.
func (m *Manager) forwardEvents() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case ev := <-m.rt.Events():
			m.mu.Lock()
			w := m.workers[types.UID(ev.PodUID)]
			m.mu.Unlock()
			if w != nil {
				w.kick()
			}
		}
	}
}

// Sync makes the desired pods (all pods bound to this node, as the API
// has them) the ones the node runs: new pods get a worker, changed pods
// are handed to theirs, pods gone or being deleted are stopped with their
// grace period and removed, and pods the runtime has that nobody wants
// (left from before an agent restart) are removed.
func (m *Manager) Sync(ctx context.Context, desired []*corev1.Pod) error {
	m.Update(desired)
	return m.RemoveOrphans(ctx, desired)
}

// Update is Sync without the scan of the runtime for pods nobody asks for:
// cheap (no containerd call), for every change the API reports; Sync (or
// RemoveOrphans) then runs at a slower period.
func (m *Manager) Update(desired []*corev1.Pod) {
	want := map[types.UID]*corev1.Pod{}
	deleting := map[types.UID]*corev1.Pod{}
	for _, p := range desired {
		if p.DeletionTimestamp == nil {
			want[p.UID] = p
		} else {
			deleting[p.UID] = p
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, w := range m.workers {
		if _, ok := want[uid]; !ok {
			if p, ok := deleting[uid]; ok {
				w.update(p) // its deletion grace period applies
			}
			delete(m.workers, uid)
			m.terminating[uid] = true
			w.terminate()
		}
	}
	for uid, p := range want {
		if w, ok := m.workers[uid]; ok {
			w.update(p)
			continue
		}
		w := newWorker(m, p)
		m.workers[uid] = w
		m.wg.Add(1)
		go func() { defer m.wg.Done(); w.run(m.ctx) }()
	}
}

// RemoveOrphans removes the pods the runtime has that are not in desired
// (or are being deleted) and that no worker owns.
func (m *Manager) RemoveOrphans(ctx context.Context, desired []*corev1.Pod) error {
	want := map[types.UID]bool{}
	for _, p := range desired {
		if p.DeletionTimestamp == nil {
			want[p.UID] = true
		}
	}
	pods, err := m.rt.ListPods(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods {
		if want[types.UID(p.UID)] {
			continue
		}
		m.mu.Lock()
		_, running := m.workers[types.UID(p.UID)]
		terminating := m.terminating[types.UID(p.UID)]
		m.mu.Unlock()
		if running || terminating {
			continue
		}
		m.cfg.Log.Info("removing pod nobody asks for", "pod", p.Namespace+"/"+p.Name, "uid", p.UID)
		if err := m.rt.RemovePod(ctx, p.UID, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Status is the last status reported for a pod.
func (m *Manager) Status(uid types.UID) (corev1.PodStatus, bool) {
	m.mu.Lock()
	w := m.workers[uid]
	m.mu.Unlock()
	if w == nil {
		return corev1.PodStatus{}, false
	}
	return w.lastStatus()
}

// Active says whether a worker runs or is still removing the pod: the pod
// is not yet gone from the node.
func (m *Manager) Active(uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers[uid] != nil || m.terminating[uid]
}

// Close stops every worker (pods keep running; a new manager adopts them).
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

package sched

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// The names a pod's spec.schedulerName may have for this scheduler to
// place it: Kubernetes' default (what the API server defaults an empty name
// to) and Skiff's own.
const (
	DefaultSchedulerName = corev1.DefaultSchedulerName
	SkiffSchedulerName   = "skiff"
)

// Event reasons and the condition reason written on pods, as
// kube-scheduler writes them.
const (
	EventScheduled         = "Scheduled"
	EventFailedScheduling  = "FailedScheduling"
	ConditionUnschedulable = corev1.PodReasonUnschedulable
	ConditionGated         = corev1.PodReasonSchedulingGated
)

// RunnerOptions tune a Runner. Zero values take the defaults.
type RunnerOptions struct {
	// Config is the scheduling algorithm's (DefaultConfig()).
	Config *Config
	// BatchSize bounds the pods placed per cycle of the loop (default 512):
	// under load the queue holds many pods, which are placed in one batch
	// (each assumed before the next) and their bindings written together.
	BatchSize int
	// Binders is how many Bind calls are in flight at once (default 4).
	// Each binder takes the placements waiting for it, up to BindBatch, and
	// writes them with one Bind call (client.Bind): under load the
	// placements decided while the previous calls were in flight go
	// together, so the batch grows with the load and a lone pod is bound at
	// once. Against an API server without Bind, each binder writes its
	// batch with one Update per pod instead, all at once.
	Binders int
	// BindBatch bounds the bindings of one Bind call (default 256).
	BindBatch int
	// RetryUnschedulable is how often every pod that fit nowhere is tried
	// again whatever happened (default 60s): a safety net under the
	// event-driven requeue (FitError.MayFitAfter).
	RetryUnschedulable time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
}

// Runner is the scheduling loop: it watches Pods, Nodes, Namespaces and
// volumes into a Snapshot, places the unbound pods that name this scheduler,
// binds them (spec.nodeName, a compare-and-swap on the pod's
// resourceVersion: two overlapping schedulers cannot both bind a pod), and
// reports pods that fit nowhere with a PodScheduled=False condition and a
// FailedScheduling event, retrying them when a change may help.
//
// A Runner runs once: create one per leadership term.
type Runner struct {
	c    *client.Client
	opts RunnerOptions
	log  *slog.Logger
	snap *Snapshot
	algo *Scheduler
	rec  *client.EventRecorder

	pods, nodes *client.Informer
	queue       *client.Queue[string]

	// mu orders the snapshot changes that race: an informer handler adding
	// a bound pod and a failed binding forgetting its assumption.
	mu            sync.Mutex
	inflight      map[string]bool                // bindings written, bound pod not seen yet
	unschedulable map[string]*unschedulablePod   // waiting for a change that may help
	pendingEvents atomic.Uint32                  // bitset of ClusterEvents since the last requeue pass
	wake          chan struct{}                  // a pending event was set
	bindCh        chan binding                   // to the binders
	eventCh       chan func(ctx context.Context) // best-effort event writes

	scheduled, failed, bindErrors, droppedEvents atomic.Int64
	bindCalls                                    atomic.Int64
	// noBind: the API server has no Bind call; bind with Update.
	noBind atomic.Bool
	// bindCall is c.Bind (a seam for tests of the fallback).
	bindCall func(context.Context, []client.PodBinding) ([]error, error)
}

// unschedulablePod is a pod that fit nowhere and why.
type unschedulablePod struct {
	err       error // a *FitError, ErrNoNodesAvailable, or a pod problem
	message   string
	lastEvent time.Time
}

type binding struct {
	pod  *corev1.Pod // the cached pod (read only)
	node string
}

// NewRunner returns a scheduling loop over c.
func NewRunner(c *client.Client, opts RunnerOptions) (*Runner, error) {
	if opts.Config == nil {
		cfg := DefaultConfig()
		opts.Config = &cfg
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.Binders <= 0 {
		opts.Binders = 4
	}
	if opts.BindBatch <= 0 {
		opts.BindBatch = 256
	}
	if opts.RetryUnschedulable <= 0 {
		opts.RetryUnschedulable = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	snap := NewSnapshot()
	algo, err := New(snap, *opts.Config)
	if err != nil {
		return nil, err
	}
	return &Runner{
		c: c, opts: opts, log: opts.Logger, snap: snap, algo: algo,
		rec:           client.NewEventRecorder(c, DefaultSchedulerName, ""),
		queue:         client.NewQueue[string](10*time.Millisecond, 10*time.Second),
		inflight:      map[string]bool{},
		unschedulable: map[string]*unschedulablePod{},
		wake:          make(chan struct{}, 1),
		bindCh:        make(chan binding, opts.BatchSize),
		eventCh:       make(chan func(context.Context), 1024),
		bindCall:      c.Bind,
	}, nil
}

// RunnerStats are counters since the Runner started.
type RunnerStats struct {
	// Scheduled pods were bound; Failed attempts found no node; BindErrors
	// are bindings the API refused (conflicts included, retried);
	// DroppedEvents were not written because the event queue was full;
	// BindCalls are the Bind calls (batches) that wrote them.
	Scheduled, Failed, BindErrors, DroppedEvents, BindCalls int64
}

// Stats returns the counters.
func (r *Runner) Stats() RunnerStats {
	return RunnerStats{r.scheduled.Load(), r.failed.Load(), r.bindErrors.Load(), r.droppedEvents.Load(), r.bindCalls.Load()}
}

// responsible reports whether the loop should place p.
func responsible(p *corev1.Pod) bool {
	switch p.Spec.SchedulerName {
	case "", DefaultSchedulerName, SkiffSchedulerName:
	default:
		return false
	}
	return p.Spec.NodeName == "" && p.DeletionTimestamp == nil &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// Run schedules until ctx ends, then waits for its goroutines and returns
// ctx's error (or an error if the caches could not be built).
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var infs []*client.Informer
	var infErr error
	inf := func(example runtime.Object, h client.Handler) *client.Informer {
		i, err := client.NewInformer(r.c, metav1.NamespaceAll, example, client.ListOptions{}, 0)
		if err != nil {
			infErr = errors.Join(infErr, err)
			return nil
		}
		i.AddHandler(h)
		infs = append(infs, i)
		return i
	}
	r.nodes = inf(&corev1.Node{}, client.Handler{OnAdd: r.nodeAdded, OnUpdate: r.nodeUpdated, OnDelete: r.nodeDeleted})
	r.pods = inf(&corev1.Pod{}, client.Handler{OnAdd: func(o runtime.Object) { r.podChanged(nil, o) }, OnUpdate: r.podChanged, OnDelete: r.podDeleted})
	inf(&corev1.Namespace{}, client.Handler{
		OnAdd:    func(o runtime.Object) { r.snap.SetNamespace(o.(*corev1.Namespace)); r.clusterEvent(PodAdded) },
		OnUpdate: func(_, o runtime.Object) { r.snap.SetNamespace(o.(*corev1.Namespace)); r.clusterEvent(PodAdded) },
		OnDelete: func(o runtime.Object) { r.snap.RemoveNamespace(o.(*corev1.Namespace).Name) },
	})
	inf(&corev1.PersistentVolume{}, client.Handler{
		OnAdd: func(o runtime.Object) {
			r.snap.SetPersistentVolume(o.(*corev1.PersistentVolume))
			r.clusterEvent(VolumeUpdated)
		},
		OnUpdate: func(_, o runtime.Object) {
			r.snap.SetPersistentVolume(o.(*corev1.PersistentVolume))
			r.clusterEvent(VolumeUpdated)
		},
		OnDelete: func(o runtime.Object) { r.snap.RemovePersistentVolume(o.(*corev1.PersistentVolume).Name) },
	})
	inf(&corev1.PersistentVolumeClaim{}, client.Handler{
		OnAdd: func(o runtime.Object) {
			r.snap.SetPersistentVolumeClaim(o.(*corev1.PersistentVolumeClaim))
			r.clusterEvent(VolumeUpdated)
		},
		OnUpdate: func(_, o runtime.Object) {
			r.snap.SetPersistentVolumeClaim(o.(*corev1.PersistentVolumeClaim))
			r.clusterEvent(VolumeUpdated)
		},
		OnDelete: func(o runtime.Object) {
			pvc := o.(*corev1.PersistentVolumeClaim)
			r.snap.RemovePersistentVolumeClaim(pvc.Namespace, pvc.Name)
		},
	})
	if infErr != nil {
		return fmt.Errorf("scheduler informers: %w", infErr)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer r.queue.ShutDown()
	defer cancel() // before the Wait: stop everything on an early return
	for _, i := range infs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
	}
	for _, i := range infs {
		if !i.WaitForSync(ctx) {
			return fmt.Errorf("scheduler caches did not sync: %w", ctx.Err())
		}
	}
	for range r.opts.Binders {
		wg.Add(1)
		go func() { defer wg.Done(); r.binder(ctx) }()
	}
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); r.eventWriter(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.requeueLoop(ctx) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	r.log.Info("scheduler started", "nodes", len(r.nodes.List(nil)), "pending", r.queue.Len())
	for r.scheduleBatch(ctx) {
	}
	return ctx.Err()
}

// scheduleBatch takes the queued pods (at least one, waiting for it), places
// them and hands the placements to the binders. False when shut down.
func (r *Runner) scheduleBatch(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	keys := []string{key}
	for len(keys) < r.opts.BatchSize && r.queue.Len() > 0 {
		k, shutdown := r.queue.Get()
		if shutdown {
			break
		}
		keys = append(keys, k)
	}
	pods := make([]*corev1.Pod, 0, len(keys))
	r.mu.Lock()
	for _, k := range keys {
		obj, ok := r.pods.Get(k)
		if !ok || r.inflight[k] {
			continue
		}
		p := obj.(*corev1.Pod)
		if !responsible(p) {
			continue
		}
		// Assumed by ScheduleBatch below; in flight until the informer
		// shows the pod bound or the binding fails.
		r.inflight[k] = true
		pods = append(pods, p)
	}
	r.mu.Unlock()
	for _, k := range keys {
		r.queue.Done(k)
	}
	for _, pl := range r.algo.ScheduleBatch(pods) {
		if pl.Err != nil {
			r.unschedulablePod(ctx, pl.Pod, pl.Err)
			continue
		}
		select {
		case r.bindCh <- binding{pod: pl.Pod, node: pl.Node}:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// binder writes bindings until ctx ends: what is waiting, up to BindBatch,
// in one call.
func (r *Runner) binder(ctx context.Context) {
	batch := make([]binding, 0, r.opts.BindBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-r.bindCh:
			batch = append(batch[:0], b)
		}
	more:
		for len(batch) < r.opts.BindBatch {
			select {
			case b := <-r.bindCh:
				batch = append(batch, b)
			default:
				break more
			}
		}
		r.bindBatch(ctx, batch)
	}
}

// bindBatch writes the bindings of batch, each a compare-and-swap on the
// pod's uid and the resourceVersion the decision saw, and settles each.
func (r *Runner) bindBatch(ctx context.Context, batch []binding) {
	r.bindCalls.Add(1)
	if !r.noBind.Load() {
		req := make([]client.PodBinding, len(batch))
		for i, b := range batch {
			req[i] = client.PodBinding{Namespace: b.pod.Namespace, Name: b.pod.Name, UID: b.pod.UID,
				ResourceVersion: b.pod.ResourceVersion, NodeName: b.node}
		}
		errs, err := r.bindCall(ctx, req)
		if !client.BindUnsupported(err) {
			for i, b := range batch {
				if err != nil {
					// The outcome is unknown: settled as failed, the pod
					// is decided again, and a binding that was written
					// after all shows up in the cache (or makes the next
					// binding a Conflict).
					r.bindDone(ctx, b, err)
				} else {
					r.bindDone(ctx, b, errs[i])
				}
			}
			return
		}
		r.log.Info("the API server has no Bind call; binding with one Update per pod")
		r.noBind.Store(true)
	}
	var wg sync.WaitGroup
	for _, b := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bound := b.pod.DeepCopy()
			bound.Spec.NodeName = b.node
			r.bindDone(ctx, b, r.c.Update(ctx, bound))
		}()
	}
	wg.Wait()
}

// bindDone settles a binding: counted and reported when err is nil;
// otherwise the assumption is forgotten and the pod queued again.
func (r *Runner) bindDone(ctx context.Context, b binding, err error) {
	key := podKey(b.pod)
	if err == nil {
		r.scheduled.Add(1)
		r.log.Debug("bound", "pod", key, "node", b.node)
		r.event(b.pod, corev1.EventTypeNormal, EventScheduled,
			fmt.Sprintf("Successfully assigned %s to %s", key, b.node))
		return
	}
	r.bindErrors.Add(1)
	r.mu.Lock()
	delete(r.inflight, key)
	// Forget the assumption — unless the cache already holds the pod bound
	// (by another scheduler overlapping a leadership change, say): then the
	// snapshot must keep that.
	if obj, ok := r.pods.Get(key); ok && obj.(*corev1.Pod).Spec.NodeName != "" {
		_ = r.snap.AddPod(obj.(*corev1.Pod))
	} else {
		r.snap.RemovePod(b.pod)
	}
	r.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	switch {
	case client.IsNotFound(err):
		// Deleted meanwhile: nothing to do.
	case client.IsConflict(err):
		// The pod changed since the decision (or is bound already, or
		// being deleted): decide again on the new one, if any.
		r.queue.Add(key)
	default:
		r.log.Warn("binding failed; will retry", "pod", key, "node", b.node, "err", err)
		r.queue.AddRateLimited(key)
	}
}

// unschedulablePod records that p fits nowhere for err, and reports it on
// the pod (condition) and as an event, unless that was already said.
func (r *Runner) unschedulablePod(ctx context.Context, p *corev1.Pod, err error) {
	key := podKey(p)
	reason, msg, eventType := ConditionUnschedulable, err.Error(), corev1.EventTypeWarning
	switch {
	case errors.Is(err, ErrPodAlreadyBound):
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
		return
	case errors.Is(err, ErrSchedulingGated):
		reason, msg, eventType = ConditionGated, "Scheduling is blocked due to non-empty scheduling gates", ""
	}
	r.failed.Add(1)
	now := time.Now()
	r.mu.Lock()
	delete(r.inflight, key)
	prev := r.unschedulable[key]
	u := &unschedulablePod{err: err, message: msg}
	if prev != nil {
		u.lastEvent = prev.lastEvent
	}
	// An event when the reason is new, and again at most once per retry
	// period while it stays.
	sendEvent := eventType != "" && (prev == nil || prev.message != msg || now.Sub(prev.lastEvent) >= r.opts.RetryUnschedulable)
	if sendEvent {
		u.lastEvent = now
	}
	r.unschedulable[key] = u
	r.mu.Unlock()
	r.log.Debug("unschedulable", "pod", key, "reason", msg)

	if cond := podScheduledCondition(p); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != reason || cond.Message != msg {
		r.async(func(ctx context.Context) { r.writeCondition(ctx, p, reason, msg) })
	}
	if sendEvent {
		r.event(p, eventType, EventFailedScheduling, msg)
	}
}

func podScheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// writeCondition sets PodScheduled=False on the pod's status.
func (r *Runner) writeCondition(ctx context.Context, p *corev1.Pod, reason, msg string) {
	err := client.RetryOnConflict(ctx, 5, func() error {
		cur := &corev1.Pod{}
		if err := r.c.Get(ctx, p.Namespace, p.Name, cur); err != nil {
			return err
		}
		if cur.UID != p.UID || cur.Spec.NodeName != "" {
			return nil // replaced or bound meanwhile
		}
		now := metav1.Now()
		cond := podScheduledCondition(cur)
		if cond == nil {
			cur.Status.Conditions = append(cur.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled})
			cond = &cur.Status.Conditions[len(cur.Status.Conditions)-1]
		}
		if cond.Status != corev1.ConditionFalse {
			cond.LastTransitionTime = now
		}
		cond.Status, cond.Reason, cond.Message, cond.LastProbeTime = corev1.ConditionFalse, reason, msg, now
		return r.c.UpdateStatus(ctx, cur)
	})
	if err != nil && !client.IsNotFound(err) && ctx.Err() == nil {
		r.log.Warn("writing the PodScheduled condition failed", "pod", podKey(p), "err", err)
	}
}

// event records an event without blocking the loop: under load events are
// dropped (and counted) rather than slowing the bindings down.
func (r *Runner) event(p *corev1.Pod, eventType, reason, msg string) {
	r.async(func(ctx context.Context) {
		if err := r.rec.Event(ctx, p, eventType, reason, msg); err != nil && ctx.Err() == nil {
			r.log.Debug("event not written", "pod", podKey(p), "reason", reason, "err", err)
		}
	})
}

func (r *Runner) async(f func(ctx context.Context)) {
	select {
	case r.eventCh <- f:
	default:
		r.droppedEvents.Add(1)
	}
}

func (r *Runner) eventWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-r.eventCh:
			f(ctx)
		}
	}
}

// clusterEvent notes a change that may let unschedulable pods fit; the
// requeue loop acts on it (coalescing a burst of changes into one pass).
func (r *Runner) clusterEvent(ev ClusterEvent) {
	bit := uint32(1) << ev
	if r.pendingEvents.Load()&bit != 0 {
		return
	}
	r.pendingEvents.Or(bit)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// requeueLoop moves unschedulable pods back to the queue when a change may
// help them, at most every 100ms, and all of them every
// RetryUnschedulable.
func (r *Runner) requeueLoop(ctx context.Context) {
	all := time.NewTicker(r.opts.RetryUnschedulable)
	defer all.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-all.C:
			r.requeue(func(*unschedulablePod) bool { return true })
		case <-r.wake:
			evs := r.pendingEvents.Swap(0)
			r.requeue(func(u *unschedulablePod) bool {
				for ev := NodeAdded; ev <= VolumeUpdated; ev++ {
					if evs&(1<<ev) != 0 && mayFitAfter(u.err, ev) {
						return true
					}
				}
				return false
			})
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// mayFitAfter is FitError.MayFitAfter for every error the loop records: no
// nodes at all waits for a node; a pod's own problem for the pod to change.
func mayFitAfter(err error, ev ClusterEvent) bool {
	var fe *FitError
	switch {
	case errors.As(err, &fe):
		return fe.MayFitAfter(ev)
	case errors.Is(err, ErrNoNodesAvailable):
		return ev == NodeAdded || ev == NodeUpdated
	}
	return false
}

func (r *Runner) requeue(helped func(*unschedulablePod) bool) {
	r.mu.Lock()
	var keys []string
	for k, u := range r.unschedulable {
		if helped(u) {
			keys = append(keys, k)
		}
	}
	r.mu.Unlock()
	// Queued but kept in the map, so the next failure compares its message
	// with the last one reported.
	for _, k := range keys {
		r.queue.Add(k)
	}
}

func (r *Runner) nodeAdded(o runtime.Object) {
	r.snap.AddNode(o.(*corev1.Node))
	r.clusterEvent(NodeAdded)
}

func (r *Runner) nodeUpdated(old, o runtime.Object) {
	n := o.(*corev1.Node)
	r.snap.UpdateNode(n)
	// Heartbeats change a node's status all the time; only what filters
	// read can help a pending pod.
	if nodeSchedulingChanged(old.(*corev1.Node), n) {
		r.clusterEvent(NodeUpdated)
	}
}

func (r *Runner) nodeDeleted(o runtime.Object) { r.snap.RemoveNode(o.(*corev1.Node).Name) }

func nodeSchedulingChanged(a, b *corev1.Node) bool {
	return a.Spec.Unschedulable != b.Spec.Unschedulable ||
		!maps.Equal(a.Labels, b.Labels) ||
		!equality.Semantic.DeepEqual(a.Spec.Taints, b.Spec.Taints) ||
		!equality.Semantic.DeepEqual(a.Status.Allocatable, b.Status.Allocatable) ||
		nodeReady(a) != nodeReady(b)
}

// podChanged feeds the snapshot with bound pods and the queue with
// unbound ones. old is nil for an add.
func (r *Runner) podChanged(old, o runtime.Object) {
	p := o.(*corev1.Pod)
	key := podKey(p)
	if p.Spec.NodeName != "" {
		r.mu.Lock()
		delete(r.inflight, key)
		delete(r.unschedulable, key)
		if err := r.snap.AddPod(p); err != nil {
			r.log.Warn("pod not added to the scheduler's snapshot", "pod", key, "node", p.Spec.NodeName, "err", err)
		}
		r.mu.Unlock()
		var was *corev1.Pod
		if old != nil {
			was = old.(*corev1.Pod)
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			if was == nil || was.Status.Phase != p.Status.Phase {
				r.clusterEvent(PodRemoved)
			}
		case was == nil || was.Spec.NodeName == "" || !maps.Equal(was.Labels, p.Labels):
			r.clusterEvent(PodAdded)
		}
		return
	}
	if !responsible(p) {
		return
	}
	if old != nil {
		was := old.(*corev1.Pod)
		r.mu.Lock()
		_, waiting := r.unschedulable[key]
		r.mu.Unlock()
		// A pending pod whose status we just wrote (the condition) must not
		// be retried for it: only a change to what it asks for can help.
		if waiting && maps.Equal(was.Labels, p.Labels) && equality.Semantic.DeepEqual(was.Spec, p.Spec) {
			return
		}
	}
	r.queue.Add(key)
}

func (r *Runner) podDeleted(o runtime.Object) {
	p := o.(*corev1.Pod)
	key := podKey(p)
	r.mu.Lock()
	delete(r.unschedulable, key)
	delete(r.inflight, key)
	r.snap.RemovePod(p)
	r.mu.Unlock()
	if p.Spec.NodeName != "" {
		r.clusterEvent(PodRemoved)
	}
}

// Unschedulable returns the keys (namespace/name) of the pods waiting for a
// change that may let them fit, sorted.
func (r *Runner) Unschedulable() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.unschedulable))
}

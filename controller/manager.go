package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Result tells a worker what to do with a key reconciled without error.
type Result struct {
	// RequeueAfter > 0 reconciles the key again after that long (a pod
	// becoming available, a progress deadline), even with no event.
	RequeueAfter time.Duration
}

// Reconciler is one controller's logic. Reconcile is called from the
// controller's workers, never twice at once for one key; it reads caches,
// writes through the API, and must be idempotent. An error requeues the key
// with backoff; a key whose object is gone must return nil.
type Reconciler interface {
	Name() string
	Reconcile(ctx context.Context, key string) (Result, error)
}

// Options tune a Manager.
type Options struct {
	// Workers per controller (default 2).
	Workers int
	// Resync replays every cached object to the controllers this often, a
	// safety net for level-triggered loops (default 30s; <0 disables).
	Resync time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
	// NodeMonitorGracePeriod: a node whose heartbeat is older gets
	// Ready=Unknown and the unreachable taint (default 40s).
	NodeMonitorGracePeriod time.Duration
	// PodEvictionTimeout: how long pods with no toleration of the
	// unreachable/not-ready taints stay on such a node (default 300s).
	PodEvictionTimeout time.Duration
	// NodeHealth, optional: a fast node liveness signal (gossip.Pool);
	// NodeHealthPingTimeout: how long a node it suspects has to answer a
	// ping through its Lease (default 1.5s); NodeHealthConfirmAge: how
	// overdue a heartbeat must be to confirm its verdict without a ping
	// (default 12s; see NodeLifecycleOptions).
	NodeHealth            NodeHealth
	NodeHealthConfirmAge  time.Duration
	NodeHealthPingTimeout time.Duration
	// JobBackoff: the delay before a failed Job pod is replaced, doubled
	// per failure (default 10s).
	JobBackoff time.Duration
	// NodeIPAM: the range Node pod CIDRs are assigned from (zero: 10.244.0.0/16, /24 each).
	NodeIPAM NodeIPAMOptions
}

// Manager runs Skiff's controllers: it shares one informer per kind among
// them and gives each its own rate-limited queue and workers.
type Manager struct {
	c    *client.Client
	opts Options
}

// NewManager returns a manager of the controllers over c.
func NewManager(c *client.Client, opts Options) *Manager {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Resync == 0 {
		opts.Resync = 30 * time.Second
	} else if opts.Resync < 0 {
		opts.Resync = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{c: c, opts: opts}
}

// Run runs the ReplicaSet, ReplicationController, Deployment, Endpoints,
// ServiceLB and garbage collector controllers (and those of workloads)
// until ctx ends (`skiff server` calls it on the leader and cancels ctx
// when leadership is lost), then waits for its goroutines. It returns
// ctx's error, or an error if the caches could not be created.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The manager owns its informers (rather than a shared factory) so that
	// Run returns only once every goroutine it started has ended: a server
	// losing leadership gets no stray watchers.
	var infs []*client.Informer
	var infErr error
	inf := func(example runtime.Object) *client.Informer {
		i, err := client.NewInformer(m.c, metav1.NamespaceAll, example, client.ListOptions{}, m.opts.Resync)
		if err != nil && infErr == nil {
			infErr = err
		}
		infs = append(infs, i)
		return i
	}
	pods, rss, rcs, deps := inf(&corev1.Pod{}), inf(&appsv1.ReplicaSet{}), inf(&corev1.ReplicationController{}), inf(&appsv1.Deployment{})
	if infErr != nil {
		return fmt.Errorf("controller informers: %w", infErr)
	}
	log := m.opts.Logger

	rsc := NewReplicaSetController(rss, pods, m.c, nil, log.With("controller", "replicaset"))
	rcc := NewReplicationControllerController(rcs, pods, m.c, nil, log.With("controller", "replicationcontroller"))
	dc := NewDeploymentController(deps, rss, pods, m.c, log.With("controller", "deployment"))
	gc := NewGarbageCollector(m.c, log.With("controller", "garbagecollector"))
	gc.Watch(&corev1.Pod{}, pods, true, false)
	gc.Watch(&appsv1.ReplicaSet{}, rss, true, true)
	gc.Watch(&corev1.ReplicationController{}, rcs, false, true)
	gc.Watch(&appsv1.Deployment{}, deps, false, true)

	rec := NewRecorder(m.c, "skiff-controller-manager", log)
	rsc.events, rcc.events, dc.events = rec, rec, rec
	wl := m.workloads(inf, pods, gc, rec, log) // job, cronjob, statefulset, daemonset, nodelifecycle
	svcLoops := m.serviceLoops(inf, pods, log) // endpoints, servicelb

	svcLoops = append(svcLoops, m.resourceQuotaLoops(inf, pods, log)...) // resourcequota
	svcLoops = append(svcLoops, m.nodeIPAMLoops(inf, rec, log)...)       // nodeipam
	if infErr != nil {
		return fmt.Errorf("controller informers: %w", infErr)
	}

	loops := []*loop{newLoop(rsc, log), newLoop(rcc, log), newLoop(dc, log), newLoop(gc, log)}
	rsc.register(loops[0].queue, rss, pods)
	rcc.register(loops[1].queue, rcs, pods)
	dc.register(loops[2].queue, deps, rss, pods)
	gc.register(loops[3].queue)
	loops = append(loops, svcLoops...)
	loops = append(loops, wl.loops...)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the Wait: stop everything on an early return
	for _, i := range infs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	for _, i := range infs {
		if !i.WaitForSync(ctx) {
			return fmt.Errorf("controller caches did not sync: %w", ctx.Err())
		}
	}
	log.Info("controllers started", "workers", m.opts.Workers)
	for _, l := range loops {
		l.start(ctx, m.opts.Workers, &wg)
	}
	wl.start(ctx, &wg)
	<-ctx.Done()
	for _, l := range loops {
		l.queue.ShutDown()
	}
	return ctx.Err()
}

// loop is one controller's queue and workers.
type loop struct {
	r     Reconciler
	queue *client.Queue[string]
	log   *slog.Logger
}

func newLoop(r Reconciler, log *slog.Logger) *loop {
	return &loop{r: r, queue: client.NewQueue[string](5*time.Millisecond, 5*time.Minute), log: log.With("controller", r.Name())}
}

func (l *loop) start(ctx context.Context, workers int, wg *sync.WaitGroup) {
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
}

// next reconciles one key; false once the queue is shut down.
func (l *loop) next(ctx context.Context) bool {
	key, shutdown := l.queue.Get()
	if shutdown {
		return false
	}
	defer l.queue.Done(key)
	res, err := l.r.Reconcile(ctx, key)
	if err != nil {
		if ctx.Err() == nil {
			level := slog.LevelWarn
			if client.IsConflict(err) { // a stale cache: routine, the retry reads afresh
				level = slog.LevelDebug
			}
			l.log.Log(ctx, level, "reconcile failed, retrying", "key", key, "retries", l.queue.NumRequeues(key), "err", err)
			l.queue.AddRateLimited(key)
		}
		return true
	}
	l.queue.Forget(key)
	if res.RequeueAfter > 0 {
		l.queue.AddAfter(key, res.RequeueAfter)
	}
	return true
}

// keyHandler enqueues the keys keys(obj) names, for every change.
func keyHandler(q *client.Queue[string], keys func(obj runtime.Object) []string) client.Handler {
	add := func(obj runtime.Object) {
		for _, k := range keys(obj) {
			q.Add(k)
		}
	}
	return client.Handler{
		OnAdd:    add,
		OnUpdate: func(old, obj runtime.Object) { add(old); add(obj) },
		OnDelete: add,
	}
}

func selfKey(obj runtime.Object) []string { return []string{client.KeyOf(obj)} }

func (c *ReplicaSetController) register(q *client.Queue[string], owners, pods *client.Informer) {
	owners.AddHandler(keyHandler(q, selfKey))
	pods.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		if p, ok := obj.(*corev1.Pod); ok {
			return c.ownersOfPod(p)
		}
		return nil
	}))
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

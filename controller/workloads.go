package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// Kinds of the workload controllers.
var (
	kindStatefulSet = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	kindDaemonSet   = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}
	kindJob         = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
	kindCronJob     = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
)

// Defaults of the Options the workload and node controllers read.
const (
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	DefaultPodEvictionTimeout     = 300 * time.Second
	DefaultJobBackoff             = 10 * time.Second
	DefaultNodeHealthConfirmAge   = 12 * time.Second
)

// workloadSet is what Manager.Run adds for the Job, CronJob, StatefulSet,
// DaemonSet and node lifecycle controllers: their loops, and goroutines to
// start once the caches have synced.
type workloadSet struct {
	loops   []*loop
	runners []func(ctx context.Context)
}

// start runs the extra goroutines until ctx ends.
func (w *workloadSet) start(ctx context.Context, wg *sync.WaitGroup) {
	for _, r := range w.runners {
		wg.Add(1)
		go func() { defer wg.Done(); r(ctx) }()
	}
}

// workloads builds the Job, CronJob, StatefulSet, DaemonSet and node
// lifecycle controllers over informers made by inf, sharing pods with the
// other controllers, and tells the garbage collector about their kinds
// (so deleting a Job deletes its pods). Call it before gc.register.
func (m *Manager) workloads(inf func(runtime.Object) *client.Informer, pods *client.Informer, gc *GarbageCollector, rec EventRecorder, log *slog.Logger) *workloadSet {
	jobs, cjs, sss, dss, nodes := inf(&batchv1.Job{}), inf(&batchv1.CronJob{}), inf(&appsv1.StatefulSet{}), inf(&appsv1.DaemonSet{}), inf(&corev1.Node{})
	ws := &workloadSet{}
	if jobs == nil || cjs == nil || sss == nil || dss == nil || nodes == nil {
		return ws // Run reports the informer error
	}
	gc.Watch(&batchv1.Job{}, jobs, true, true)
	gc.Watch(&batchv1.CronJob{}, cjs, false, true)
	gc.Watch(&appsv1.StatefulSet{}, sss, false, true)
	gc.Watch(&appsv1.DaemonSet{}, dss, false, true)

	jc := NewJobController(jobs, pods, m.c, m.opts.JobBackoff, log.With("controller", "job"))
	cjc := NewCronJobController(cjs, jobs, m.c, log.With("controller", "cronjob"))
	ssc := NewStatefulSetController(sss, pods, m.c, log.With("controller", "statefulset"))
	dsc := NewDaemonSetController(dss, pods, nodes, m.c, log.With("controller", "daemonset"))
	nlc := NewNodeLifecycleController(nodes, pods, m.c, NodeLifecycleOptions{
		GracePeriod: m.opts.NodeMonitorGracePeriod, PodEvictionTimeout: m.opts.PodEvictionTimeout,
		Health: m.opts.NodeHealth, HealthConfirmAge: m.opts.NodeHealthConfirmAge, HealthPingTimeout: m.opts.NodeHealthPingTimeout,
		Leases: inf(&coordinationv1.Lease{}),
	}, log.With("controller", "nodelifecycle"))
	jc.events, cjc.events, ssc.events, dsc.events, nlc.events = rec, rec, rec, rec, rec

	add := func(r Reconciler) *client.Queue[string] {
		l := newLoop(r, log)
		ws.loops = append(ws.loops, l)
		return l.queue
	}
	jc.register(add(jc), jobs, pods)
	cjc.register(add(cjc), cjs, jobs)
	ssc.register(add(ssc), sss, pods)
	dsc.register(add(dsc), dss, pods, nodes)
	nq := add(nlc)
	nlc.register(nq, nodes, pods)
	if nlc.health != nil {
		ws.runners = append(ws.runners, func(ctx context.Context) {
			stop := nlc.health.OnChange(func(node string) { nq.Add(node) })
			<-ctx.Done()
			stop()
		})
	}
	return ws
}

// ownedPods lists the pods in ns controlled by the object with uid.
func ownedPods(pods Cache, ns string, uid types.UID) []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range inNamespace(pods, ns, nil) {
		if p := o.(*corev1.Pod); isControlledBy(p, uid) {
			out = append(out, p)
		}
	}
	return out
}

// controllerKeyOf returns a key function naming the controller of an
// object when that controller is of kind.
func controllerKeyOf(kind string) func(obj runtime.Object) []string {
	return func(obj runtime.Object) []string {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil
		}
		ref := controllerOf(m)
		if ref == nil || ref.Kind != kind {
			return nil
		}
		return []string{m.GetNamespace() + "/" + ref.Name}
	}
}

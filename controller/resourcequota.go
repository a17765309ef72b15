package controller

// The ResourceQuota controller keeps each quota's status: status.hard is
// spec.hard, status.used the sum of api.QuotaUsage over the namespace's
// objects the quota selects (zero for resources nothing uses).
//
// The API server's quota admission charges creates in status.used, in the
// create's own transaction; this controller is what gives usage back when
// objects go (deleted, or pods finished) and what corrects any drift. To
// never undo a charge it has not seen, it reads the quota uncached, then
// lists the objects uncached, then writes status with the quota's
// resourceVersion as precondition: a create charged after the read changes
// that version (so the write is a Conflict and the key is retried), and a
// create committed before the read is in the lists, which are read after.
//
// Events: quotas themselves, and pods of a namespace with quotas (pods come
// and go often and hold cpu/memory). Other kinds are counted again every
// Recheck (10s by default) for quotas that limit them, and on the informer
// resync.

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// NamespaceLister lists, uncached, every object of one kind in a
// namespace. The ResourceQuota controller calls it from its workers;
// *client.Client is adapted by ClientLister.
type NamespaceLister interface {
	ListNamespace(ctx context.Context, info api.KindInfo, namespace string) ([]runtime.Object, error)
}

// ClientLister lists through the cluster API, page by page.
type ClientLister struct{ C *client.Client }

var _ NamespaceLister = ClientLister{}

// ListNamespace implements NamespaceLister.
func (l ClientLister) ListNamespace(ctx context.Context, info api.KindInfo, namespace string) ([]runtime.Object, error) {
	return l.C.ListAll(ctx, info.GVK, namespace, info.New)
}

// quotaStatusWriter is what the controller needs of the cluster: an
// uncached Get of the quota and UpdateStatus.
type quotaStatusWriter interface {
	Get(ctx context.Context, namespace, name string, obj runtime.Object) error
	UpdateStatus(ctx context.Context, obj runtime.Object) error
}

// ResourceQuotaController reconciles ResourceQuota status.
type ResourceQuotaController struct {
	quotas  Cache
	c       quotaStatusWriter
	objects NamespaceLister
	log     *slog.Logger
	now     func() time.Time
	// Recheck: how often a quota limiting kinds other than pods is counted
	// again without an event.
	Recheck time.Duration
}

// NewResourceQuotaController returns the controller over a quota cache.
func NewResourceQuotaController(quotas Cache, c quotaStatusWriter, objects NamespaceLister, log *slog.Logger) *ResourceQuotaController {
	if log == nil {
		log = discardLogger()
	}
	return &ResourceQuotaController{quotas: quotas, c: c, objects: objects, log: log, now: time.Now, Recheck: 10 * time.Second}
}

// Name implements Reconciler.
func (rc *ResourceQuotaController) Name() string { return "resourcequota" }

// Reconcile implements Reconciler: key is a quota's namespace/name.
func (rc *ResourceQuotaController) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name := client.SplitKey(key)
	q := &corev1.ResourceQuota{}
	if err := rc.c.Get(ctx, ns, name, q); err != nil {
		if client.IsNotFound(err) {
			return Result{}, nil
		}
		return Result{}, err
	}
	used, otherKinds, err := rc.usage(ctx, q)
	if err != nil {
		return Result{}, err
	}
	res := Result{}
	if otherKinds {
		res.RequeueAfter = rc.Recheck
	}
	if sameResources(q.Status.Hard, q.Spec.Hard) && sameResources(q.Status.Used, used) {
		return res, nil
	}
	q.Status.Hard = q.Spec.Hard.DeepCopy()
	q.Status.Used = used
	if err := rc.c.UpdateStatus(ctx, q); err != nil {
		return Result{}, err
	}
	rc.log.Debug("quota status", "quota", key, "used", used)
	return res, nil
}

// usage counts what q's namespace uses of q's hard resources; otherKinds
// reports a kind other than pods was counted.
func (rc *ResourceQuotaController) usage(ctx context.Context, q *corev1.ResourceQuota) (corev1.ResourceList, bool, error) {
	used := corev1.ResourceList{}
	for rn := range q.Spec.Hard {
		used[rn] = resource.Quantity{}
	}
	otherKinds := false
	now := rc.now()
	for _, info := range api.Kinds() {
		if !info.Namespaced || !limitsKind(q, info) {
			continue
		}
		if info.Resource != "pods" || info.GVK.Group != "" {
			otherKinds = true
		}
		objs, err := rc.objects.ListNamespace(ctx, info, q.Namespace)
		if err != nil {
			return nil, false, err
		}
		for _, o := range objs {
			if !api.QuotaMatches(q, o) {
				continue
			}
			for rn, u := range api.QuotaUsage(info, o, now) {
				if sum, ok := used[rn]; ok {
					sum.Add(u)
					used[rn] = sum
				}
			}
		}
	}
	return used, otherKinds, nil
}

func limitsKind(q *corev1.ResourceQuota, info api.KindInfo) bool {
	for rn := range q.Spec.Hard {
		if api.QuotaResourceOf(info, rn) {
			return true
		}
	}
	return false
}

// sameResources compares quantities by value (1000m == 1).
func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		if o, ok := b[n]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

// register wires the quota and pod informers to the queue.
func (rc *ResourceQuotaController) register(q *client.Queue[string], quotas, pods *client.Informer) {
	quotas.AddHandler(keyHandler(q, selfKey))
	pods.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		m, ok := obj.(interface{ GetNamespace() string })
		if !ok {
			return nil
		}
		var keys []string
		for _, o := range inNamespace(rc.quotas, m.GetNamespace(), labels.Everything()) {
			keys = append(keys, client.KeyOf(o))
		}
		return keys
	}))
}

// resourceQuotaLoops makes the ResourceQuota controller's loop (Manager.Run).
func (m *Manager) resourceQuotaLoops(inf func(runtime.Object) *client.Informer, pods *client.Informer, log *slog.Logger) []*loop {
	quotas := inf(&corev1.ResourceQuota{})
	if quotas == nil || pods == nil {
		return nil // Run reports the informer error
	}
	rc := NewResourceQuotaController(quotas, m.c, ClientLister{C: m.c}, log.With("controller", "resourcequota"))
	l := newLoop(rc, log)
	rc.register(l.queue, quotas, pods)
	return []*loop{l}
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// Finalizers of the Orphan and Foreground propagation policies (the API
// server adds them on delete; the collector removes them when done).
const (
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
)

// GarbageCollector deletes objects whose every owner is gone (background
// propagation), removes owner references to an owner deleted with the
// Orphan policy, and deletes the dependents of an owner deleted with the
// Foreground policy before letting it go. It knows the kinds given to
// Watch; references to other kinds are left alone.
//
// Queue keys are Kind/namespace/name.
type GarbageCollector struct {
	r     Reader
	w     Writer
	kinds map[string]*gcKind // by Kind
	order []string
	log   *slog.Logger
}

type gcKind struct {
	kind       string
	apiVersion string
	example    runtime.Object
	cache      Cache
	dependent  bool // may have owners
	owner      bool // may own others
}

// NewGarbageCollector returns a collector that confirms owners through r
// (uncached) and writes through w.
func NewGarbageCollector(rw interface {
	Reader
	Writer
}, log *slog.Logger) *GarbageCollector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GarbageCollector{r: rw, w: rw, kinds: map[string]*gcKind{}, log: log}
}

// Name is the controller's name.
func (g *GarbageCollector) Name() string { return "garbagecollector" }

// Watch adds a kind (example: a typed object such as &corev1.Pod{}) whose
// objects are in cache; dependent: its objects may have owners; owner: its
// objects may own others.
func (g *GarbageCollector) Watch(example runtime.Object, cache Cache, dependent, owner bool) {
	gvk, err := client.KindOf(example)
	if err != nil {
		panic(err)
	}
	g.kinds[gvk.Kind] = &gcKind{kind: gvk.Kind, apiVersion: gvk.GroupVersion().String(), example: example, cache: cache, dependent: dependent, owner: owner}
	g.order = append(g.order, gvk.Kind)
}

func gcKey(kind string, obj runtime.Object) string { return kind + "/" + client.KeyOf(obj) }

// Reconcile handles the object with key Kind/namespace/name.
func (g *GarbageCollector) Reconcile(ctx context.Context, key string) (Result, error) {
	kind, nsName, ok := strings.Cut(key, "/")
	k := g.kinds[kind]
	if !ok || k == nil {
		return Result{}, nil
	}
	obj, ok := k.cache.Get(nsName)
	if !ok {
		return Result{}, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Result{}, err
	}
	if k.owner && m.GetDeletionTimestamp() != nil {
		fin := m.GetFinalizers()
		if slices.Contains(fin, FinalizerOrphan) {
			return Result{}, g.orphan(ctx, k, obj, m)
		}
		if slices.Contains(fin, FinalizerForeground) {
			return g.foreground(ctx, k, obj, m)
		}
	}
	if !k.dependent || len(m.GetOwnerReferences()) == 0 {
		return Result{}, nil
	}
	var dangling []types.UID
	known := 0
	for _, ref := range m.GetOwnerReferences() {
		ok, err := g.ownerExists(ctx, m.GetNamespace(), ref)
		if err != nil {
			return Result{}, err
		}
		if !ok {
			dangling = append(dangling, ref.UID)
		}
		known++
	}
	switch {
	case len(dangling) == 0:
		return Result{}, nil
	case len(dangling) == known && m.GetDeletionTimestamp() == nil:
		_, err := g.w.Delete(ctx, obj.DeepCopyObject(), &client.DeleteOptions{PreconditionUID: string(m.GetUID())})
		if err != nil && !client.IsNotFound(err) {
			return Result{}, fmt.Errorf("collecting %s %s: %w", kind, nsName, err)
		}
		g.log.Info("deleted object whose owners are gone", "kind", kind, "object", nsName)
		return Result{}, nil
	case len(dangling) < known:
		cp := obj.DeepCopyObject()
		cm, _ := meta.Accessor(cp)
		refs := cm.GetOwnerReferences()
		for _, uid := range dangling {
			refs = withoutOwner(refs, uid)
		}
		cm.SetOwnerReferences(refs)
		if err := g.w.Update(ctx, cp); err != nil && !client.IsNotFound(err) {
			return Result{}, fmt.Errorf("dropping dangling owners of %s %s: %w", kind, nsName, err)
		}
	}
	return Result{}, nil
}

// ownerExists: the owner ref names an object that exists with that UID.
// Unknown kinds count as existing (the collector leaves them alone). The
// cache answers yes; a no is confirmed by an uncached read, since the owner
// may be newer than the cache.
func (g *GarbageCollector) ownerExists(ctx context.Context, ns string, ref metav1.OwnerReference) (bool, error) {
	k := g.kinds[ref.Kind]
	if k == nil || !k.owner || k.apiVersion != ref.APIVersion {
		return true, nil
	}
	if o, ok := k.cache.Get(ns + "/" + ref.Name); ok {
		if m, err := meta.Accessor(o); err == nil && m.GetUID() == ref.UID {
			return true, nil
		}
	}
	live := k.example.DeepCopyObject()
	if err := g.r.Get(ctx, ns, ref.Name, live); err != nil {
		if client.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	m, err := meta.Accessor(live)
	if err != nil {
		return false, err
	}
	return m.GetUID() == ref.UID, nil
}

// dependents lists cached objects of every dependent kind that reference uid.
func (g *GarbageCollector) dependents(ns string, uid types.UID) []runtime.Object {
	var out []runtime.Object
	for _, name := range g.order {
		k := g.kinds[name]
		if !k.dependent {
			continue
		}
		for _, o := range inNamespace(k.cache, ns, nil) {
			m, err := meta.Accessor(o)
			if err != nil {
				continue
			}
			for _, r := range m.GetOwnerReferences() {
				if r.UID == uid {
					out = append(out, o)
					break
				}
			}
		}
	}
	return out
}

// orphan removes references to owner from its dependents, then the
// owner's orphan finalizer, which lets the API server remove it.
func (g *GarbageCollector) orphan(ctx context.Context, k *gcKind, owner runtime.Object, m metav1.Object) error {
	var errs []error
	for _, d := range g.dependents(m.GetNamespace(), m.GetUID()) {
		cp := d.DeepCopyObject()
		dm, _ := meta.Accessor(cp)
		dm.SetOwnerReferences(withoutOwner(dm.GetOwnerReferences(), m.GetUID()))
		if err := g.w.Update(ctx, cp); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("orphaning %s: %w", client.KeyOf(d), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return g.dropFinalizer(ctx, k, owner, FinalizerOrphan)
}

// foreground deletes owner's dependents and, once none is left, drops the
// owner's foregroundDeletion finalizer.
func (g *GarbageCollector) foreground(ctx context.Context, k *gcKind, owner runtime.Object, m metav1.Object) (Result, error) {
	deps := g.dependents(m.GetNamespace(), m.GetUID())
	if len(deps) == 0 {
		return Result{}, g.dropFinalizer(ctx, k, owner, FinalizerForeground)
	}
	var errs []error
	for _, d := range deps {
		dm, _ := meta.Accessor(d)
		if dm.GetDeletionTimestamp() != nil {
			continue
		}
		// Dependents that own others are deleted in the foreground too;
		// the rest (pods) have nothing to wait for.
		opts := &client.DeleteOptions{PreconditionUID: string(dm.GetUID())}
		if dk := g.kinds[kindOfCached(g, d)]; dk != nil && dk.owner {
			opts.Propagation = "Foreground"
		}
		if _, err := g.w.Delete(ctx, d.DeepCopyObject(), opts); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting dependent %s: %w", client.KeyOf(d), err))
		}
	}
	// Dependents' deletions requeue the owner; the timer is a safety net.
	return Result{RequeueAfter: 5 * time.Second}, errors.Join(errs...)
}

func (g *GarbageCollector) dropFinalizer(ctx context.Context, k *gcKind, owner runtime.Object, f string) error {
	cp := owner.DeepCopyObject()
	m, _ := meta.Accessor(cp)
	m.SetFinalizers(slices.DeleteFunc(slices.Clone(m.GetFinalizers()), func(s string) bool { return s == f }))
	if err := g.w.Update(ctx, cp); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s of %s %s: %w", f, k.kind, client.KeyOf(owner), err)
	}
	return nil
}

// register wires the collector's informers to q. Dependents are queued on
// every change (their owners may have gone while the watch was down) and,
// once deleted, their owners (a foreground deletion may be waiting);
// owners are queued when marked for deletion, and their dependents when
// they are deleted.
func (g *GarbageCollector) register(q *client.Queue[string]) {
	for _, name := range g.order {
		k := g.kinds[name]
		inf, ok := k.cache.(*client.Informer)
		if !ok {
			continue
		}
		inf.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
			m, err := meta.Accessor(obj)
			if err != nil {
				return nil
			}
			var keys []string
			if k.dependent && len(m.GetOwnerReferences()) > 0 {
				keys = append(keys, gcKey(k.kind, obj))
				for _, r := range m.GetOwnerReferences() {
					keys = append(keys, r.Kind+"/"+m.GetNamespace()+"/"+r.Name)
				}
			}
			if k.owner {
				if m.GetDeletionTimestamp() != nil {
					keys = append(keys, gcKey(k.kind, obj))
				}
				if _, still := k.cache.Get(client.KeyOf(obj)); !still {
					for _, d := range g.dependents(m.GetNamespace(), m.GetUID()) {
						keys = append(keys, gcKey(kindOfCached(g, d), d))
					}
				}
			}
			return keys
		}))
	}
}

// kindOfCached finds which watched kind obj is.
func kindOfCached(g *GarbageCollector, obj runtime.Object) string {
	gvk, err := client.KindOf(obj)
	if err == nil {
		return gvk.Kind
	}
	return ""
}

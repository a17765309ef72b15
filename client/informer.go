package client

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Handler receives an informer's notifications. The calls come one at a
// time from the informer's Run goroutine, in the order of the changes: keep
// them short (enqueue a key in a Queue) and never modify the objects, which
// are the cache's own. Nil funcs are skipped.
type Handler struct {
	OnAdd    func(obj runtime.Object)
	OnUpdate func(old, obj runtime.Object)
	OnDelete func(obj runtime.Object)
}

// Informer keeps a local cache of one kind's objects (in a namespace or
// all), from a list and then a watch that resumes from the last
// resourceVersion seen, across broken streams and API server restarts. When
// that version is too old for the store (Expired), it lists again and tells
// handlers the difference, deletions included. Reads of the cache never
// touch the server.
type Informer struct {
	c         *Client
	namespace string
	gvk       schema.GroupVersionKind
	opts      ListOptions
	resync    time.Duration

	mu       sync.RWMutex
	items    map[string]runtime.Object
	rv       string
	synced   bool
	handlers []Handler
	syncedCh chan struct{}
}

// NewInformer returns an informer of the kind of example (&corev1.Pod{}) in
// namespace ("" for all), filtered by the selectors of opts. resync > 0
// replays every cached object to OnUpdate at that period, as a safety net for
// level-triggered controllers.
func NewInformer(c *Client, namespace string, example runtime.Object, opts ListOptions, resync time.Duration) (*Informer, error) {
	gvk, err := KindOf(example)
	if err != nil {
		return nil, err
	}
	return &Informer{c: c, namespace: namespace, gvk: gvk, opts: opts, resync: resync,
		items: map[string]runtime.Object{}, syncedCh: make(chan struct{})}, nil
}

// AddHandler registers h. Handlers added after the first sync get an OnAdd
// for every cached object first.
func (i *Informer) AddHandler(h Handler) {
	i.mu.Lock()
	i.handlers = append(i.handlers, h)
	var replay []runtime.Object
	if i.synced {
		replay = i.listLocked(nil)
	}
	i.mu.Unlock()
	if h.OnAdd != nil {
		for _, o := range replay {
			h.OnAdd(o)
		}
	}
}

// KeyOf is the cache key of an object: "namespace/name", or "name" for
// cluster-scoped objects.
func KeyOf(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	if m.GetNamespace() == "" {
		return m.GetName()
	}
	return m.GetNamespace() + "/" + m.GetName()
}

// SplitKey is the inverse of KeyOf.
func SplitKey(key string) (namespace, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// Get returns the cached object with key; do not modify it (DeepCopy
// first).
func (i *Informer) Get(key string) (runtime.Object, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	o, ok := i.items[key]
	return o, ok
}

// List returns the cached objects matching sel (nil: all), sorted by key.
func (i *Informer) List(sel labels.Selector) []runtime.Object {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.listLocked(sel)
}

func (i *Informer) listLocked(sel labels.Selector) []runtime.Object {
	keys := make([]string, 0, len(i.items))
	for k, o := range i.items {
		if sel != nil {
			m, err := meta.Accessor(o)
			if err != nil || !sel.Matches(labels.Set(m.GetLabels())) {
				continue
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]runtime.Object, len(keys))
	for n, k := range keys {
		out[n] = i.items[k]
	}
	return out
}

// HasSynced reports whether the first list has been loaded.
func (i *Informer) HasSynced() bool {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.synced
}

// WaitForSync blocks until the first list is loaded or ctx ends.
func (i *Informer) WaitForSync(ctx context.Context) bool {
	select {
	case <-i.syncedCh:
		return true
	case <-ctx.Done():
		return false
	}
}

// LastResourceVersion is the version the cache is at.
func (i *Informer) LastResourceVersion() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.rv
}

// Run lists and watches until ctx ends. Failures are retried with a
// capped, jittered backoff; it returns only ctx's error.
func (i *Informer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	var resyncC <-chan time.Time
	if i.resync > 0 {
		t := time.NewTicker(i.resync)
		defer t.Stop()
		resyncC = t.C
	}
	for ctx.Err() == nil {
		i.mu.RLock()
		rv := i.rv
		i.mu.RUnlock()
		var err error
		if rv == "" {
			err = i.relist(ctx)
		} else {
			err = i.watch(ctx, rv, resyncC)
		}
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if IsExpired(err) {
			i.mu.Lock()
			i.rv = "" // too old: list again
			i.mu.Unlock()
			continue
		}
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
		backoff = min(2*backoff, 10*time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return ctx.Err()
}

func (i *Informer) ref(ctx context.Context) (*skiffv1.ResourceRef, error) {
	r, err := i.c.ResourceFor(ctx, i.gvk)
	if err != nil {
		return nil, err
	}
	return Ref(r, i.namespace, ""), nil
}

func (i *Informer) decode(data []byte) (runtime.Object, error) {
	obj, err := Scheme.New(i.gvk)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", i.gvk.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(i.gvk)
	return obj, nil
}

// relist replaces the cache with a fresh list and notifies the difference.
func (i *Informer) relist(ctx context.Context) error {
	ref, err := i.ref(ctx)
	if err != nil {
		return err
	}
	fresh := map[string]runtime.Object{}
	var rv string
	err = i.c.listPages(ctx, &skiffv1.ListRequest{Ref: ref, LabelSelector: i.opts.LabelSelector,
		FieldSelector: i.opts.FieldSelector}, func(resp *skiffv1.ListResponse) error {
		for _, it := range resp.Items {
			obj, err := i.decode(it)
			if err != nil {
				return err
			}
			fresh[KeyOf(obj)] = obj
		}
		if rv == "" {
			rv = resp.ResourceVersion
		}
		return nil
	})
	if err != nil {
		return err
	}
	i.mu.Lock()
	old := i.items
	i.items, i.rv = fresh, rv
	first := !i.synced
	i.synced = true
	handlers := append([]Handler(nil), i.handlers...)
	i.mu.Unlock()
	if first {
		close(i.syncedCh)
	}
	for _, k := range sortedObjKeys(fresh) {
		o := fresh[k]
		prev, had := old[k]
		for _, h := range handlers {
			switch {
			case !had && h.OnAdd != nil:
				h.OnAdd(o)
			case had && h.OnUpdate != nil && ResourceVersionOf(prev) != ResourceVersionOf(o):
				h.OnUpdate(prev, o)
			}
		}
	}
	for _, k := range sortedObjKeys(old) {
		if _, still := fresh[k]; !still {
			for _, h := range handlers {
				if h.OnDelete != nil {
					h.OnDelete(old[k])
				}
			}
		}
	}
	return nil
}

func sortedObjKeys(m map[string]runtime.Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// watch follows changes after rv until the stream ends.
func (i *Informer) watch(ctx context.Context, rv string, resyncC <-chan time.Time) error {
	ref, err := i.ref(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := i.c.svc.Watch(wctx, &skiffv1.WatchRequest{Ref: ref, ResourceVersion: rv,
		LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector, AllowBookmarks: true})
	if err != nil {
		return FromError(err)
	}
	type recv struct {
		ev  *skiffv1.WatchResponse
		err error
	}
	events := make(chan recv)
	go func() {
		for {
			ev, err := stream.Recv()
			select {
			case events <- recv{ev, err}:
			case <-wctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resyncC:
			i.mu.RLock()
			all := i.listLocked(nil)
			handlers := append([]Handler(nil), i.handlers...)
			i.mu.RUnlock()
			for _, o := range all {
				for _, h := range handlers {
					if h.OnUpdate != nil {
						h.OnUpdate(o, o)
					}
				}
			}
		case r := <-events:
			if r.err != nil {
				return FromError(r.err)
			}
			obj, err := i.decode(r.ev.Object)
			if err != nil {
				return err
			}
			i.apply(EventType(r.ev.Type), obj)
		}
	}
}

// apply updates the cache with one event and notifies handlers.
func (i *Informer) apply(typ EventType, obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	key := KeyOf(obj)
	i.mu.Lock()
	if m.GetResourceVersion() != "" {
		i.rv = m.GetResourceVersion()
	}
	if typ == Bookmark {
		i.mu.Unlock()
		return
	}
	prev, had := i.items[key]
	if typ == Deleted {
		delete(i.items, key)
	} else {
		i.items[key] = obj
	}
	handlers := append([]Handler(nil), i.handlers...)
	i.mu.Unlock()
	for _, h := range handlers {
		switch {
		case typ == Deleted:
			if h.OnDelete != nil {
				h.OnDelete(obj)
			}
		case had:
			if h.OnUpdate != nil {
				h.OnUpdate(prev, obj)
			}
		default:
			if h.OnAdd != nil {
				h.OnAdd(obj)
			}
		}
	}
}

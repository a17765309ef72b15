package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// InformerFactory shares one Informer per kind and namespace among the
// components of a process (the controllers of a controller manager), so each
// kind is listed and watched once.
type InformerFactory struct {
	c      *Client
	resync time.Duration

	mu        sync.Mutex
	informers map[factoryKey]*Informer
	started   map[factoryKey]bool
	ctx       context.Context
}

type factoryKey struct {
	gvk       schema.GroupVersionKind
	namespace string
}

// NewInformerFactory returns a factory whose informers resync at resync
// (0: never).
func NewInformerFactory(c *Client, resync time.Duration) *InformerFactory {
	return &InformerFactory{c: c, resync: resync, informers: map[factoryKey]*Informer{}, started: map[factoryKey]bool{}}
}

// For returns the shared informer of example's kind in namespace ("" for
// all), creating it on first use. Informers asked for after Start start at
// once.
func (f *InformerFactory) For(example runtime.Object, namespace string) (*Informer, error) {
	gvk, err := KindOf(example)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := factoryKey{gvk, namespace}
	if inf, ok := f.informers[key]; ok {
		return inf, nil
	}
	inf, err := NewInformer(f.c, namespace, example, ListOptions{}, f.resync)
	if err != nil {
		return nil, err
	}
	f.informers[key] = inf
	if f.ctx != nil {
		f.startLocked(key, inf)
	}
	return inf, nil
}

// Start runs every informer (and those created later) until ctx ends.
func (f *InformerFactory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = ctx
	for key, inf := range f.informers {
		f.startLocked(key, inf)
	}
}

func (f *InformerFactory) startLocked(key factoryKey, inf *Informer) {
	if f.started[key] {
		return
	}
	f.started[key] = true
	go func() { _ = inf.Run(f.ctx) }()
}

// WaitForSync waits until every informer created so far has synced.
func (f *InformerFactory) WaitForSync(ctx context.Context) error {
	f.mu.Lock()
	infs := make(map[factoryKey]*Informer, len(f.informers))
	for k, v := range f.informers {
		infs[k] = v
	}
	f.mu.Unlock()
	for key, inf := range infs {
		if !inf.WaitForSync(ctx) {
			return fmt.Errorf("informer of %s in %q did not sync: %w", key.gvk.Kind, key.namespace, ctx.Err())
		}
	}
	return nil
}

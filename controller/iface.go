package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Cache is the read side of a reconcile: one kind's objects, all
// namespaces. *client.Informer implements it. Returned objects are shared
// with other readers and must not be modified (DeepCopy first).
type Cache interface {
	Get(key string) (runtime.Object, bool)
	List(sel labels.Selector) []runtime.Object
}

// Writer is the write side of a reconcile. *client.Client implements it.
// Create fills the object's metadata from the stored version.
type Writer interface {
	Create(ctx context.Context, obj runtime.Object) error
	Update(ctx context.Context, obj runtime.Object) error
	UpdateStatus(ctx context.Context, obj runtime.Object) error
	Delete(ctx context.Context, obj runtime.Object, opts *client.DeleteOptions) (pending bool, err error)
}

// Reader reads one object from the cluster, uncached. *client.Client
// implements it; the garbage collector uses it to confirm an owner is gone.
type Reader interface {
	Get(ctx context.Context, namespace, name string, obj runtime.Object) error
}

var (
	_ Cache  = (*client.Informer)(nil)
	_ Writer = (*client.Client)(nil)
	_ Reader = (*client.Client)(nil)
)

// inNamespace lists the objects of c in namespace ns matching sel.
func inNamespace(c Cache, ns string, sel labels.Selector) []runtime.Object {
	var out []runtime.Object
	for _, o := range c.List(sel) {
		if m, ok := o.(interface{ GetNamespace() string }); ok && m.GetNamespace() == ns {
			out = append(out, o)
		}
	}
	return out
}

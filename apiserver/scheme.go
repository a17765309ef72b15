package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kind describes one resource the server stores.
type Kind struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Singular   string
	ShortNames []string
	// Categories group kinds for the CLI: "all" is what `get all` shows.
	Categories []string
	Namespaced bool
	// HasStatus: status is written through UpdateStatus only; Update keeps
	// the stored status (Kubernetes' status subresource).
	HasStatus bool
	// New returns an empty typed object of the kind.
	New func() runtime.Object
}

// GVK is the group/version/kind of the resource.
func (k Kind) GVK() schema.GroupVersionKind { return k.GVR.GroupVersion().WithKind(k.Kind) }

// GroupResource is the resource without its version.
func (k Kind) GroupResource() schema.GroupResource { return k.GVR.GroupResource() }

// Scheme is what the server needs to know about object kinds: which exist,
// how they are defaulted and validated. Package api provides the real one;
// APIScheme adapts it. Its methods are called concurrently
// from every request goroutine and must not keep the objects they are given.
type Scheme interface {
	// Kinds lists the served resources.
	Kinds() []Kind
	// Default fills in defaults, in place.
	Default(obj runtime.Object)
	// Validate checks a new object.
	Validate(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks obj replacing old (immutable fields).
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
}

// CreatePreparer is an optional Scheme method: what Kubernetes' API server
// does to a new object after it has its uid and defaults, before
// validation (clear the status a client may not set, generate selectors).
type CreatePreparer interface {
	PrepareForCreate(obj runtime.Object)
}

package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/api"
)

// APIScheme is the Scheme of package api: its kinds registry, defaults and
// validation.
type APIScheme struct{}

var _ Scheme = APIScheme{}

// Kinds implements Scheme.
func (APIScheme) Kinds() []Kind {
	infos := api.Kinds()
	out := make([]Kind, 0, len(infos))
	for _, info := range infos {
		k := Kind{
			GVR:        info.GVK.GroupVersion().WithResource(info.Resource),
			Kind:       info.GVK.Kind,
			Singular:   info.Singular,
			ShortNames: info.ShortNames,
			Categories: info.Categories,
			Namespaced: info.Namespaced,
			New:        info.New,
		}
		k.HasStatus = hasField(k, "status")
		out = append(out, k)
	}
	return out
}

// Default implements Scheme.
func (APIScheme) Default(obj runtime.Object) { api.Default(obj) }

// PrepareForCreate implements CreatePreparer: status cleared (a pod starts
// Pending with its QoS class), a Job's selector generated from its uid.
func (APIScheme) PrepareForCreate(obj runtime.Object) { api.PrepareForCreate(obj) }

// Validate implements Scheme.
func (APIScheme) Validate(obj runtime.Object) field.ErrorList { return api.Validate(obj) }

// ValidateUpdate implements Scheme.
func (APIScheme) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	return api.ValidateUpdate(obj, old)
}

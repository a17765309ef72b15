package client

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Scheme maps the Go types of k8s.io/api to their group/version/kind, so
// the typed helpers know what an object is without being told.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme,
		autoscalingv2.AddToScheme, rbacv1.AddToScheme, storagev1.AddToScheme,
		coordinationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // registration of k8s.io/api types cannot fail
		}
	}
	return s
}

// KindOf is the group/version/kind of a typed object: the one it carries,
// else the one its Go type is registered with.
func KindOf(obj runtime.Object) (schema.GroupVersionKind, error) {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" && gvk.Version != "" {
		return gvk, nil
	}
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	for _, g := range gvks {
		if g.Version != runtime.APIVersionInternal {
			return g, nil
		}
	}
	return schema.GroupVersionKind{}, fmt.Errorf("no kind for %T", obj)
}

// itemKind is the kind of a list's items: PodList -> Pod.
func itemKind(list runtime.Object) (schema.GroupVersionKind, error) {
	gvk, err := KindOf(list)
	if err != nil {
		return gvk, err
	}
	if !strings.HasSuffix(gvk.Kind, "List") {
		return gvk, fmt.Errorf("%T is not a list type", list)
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	return gvk, nil
}

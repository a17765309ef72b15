package api

import (
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateObjectUpdate reports what is wrong with replacing oldObj by
// newObj, as opposed to what is wrong with newObj itself, which
// ValidateObject reports: the object's identity (name, namespace, uid,
// creationTimestamp) changed, resourceVersion missing, generation going
// back, or a field Kubernetes makes immutable for the kind changed
// (workload selectors, a Service's cluster IP, most of a Pod's spec, a
// Job's template, the data of an immutable Secret or ConfigMap, a
// binding's roleRef, ...). An API server runs both on every update, as
// Kubernetes does, and their lists never overlap. Both objects must be of
// the same kind and defaulted.
func (v Validator) ValidateObjectUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	if reflect.TypeOf(newObj) != reflect.TypeOf(oldObj) {
		return field.ErrorList{field.Invalid(field.NewPath("kind"), fmt.Sprintf("%T", newObj),
			fmt.Sprintf("cannot update a %T with a %T", oldObj, newObj))}
	}
	nm, err1 := objectMeta(newObj)
	om, err2 := objectMeta(oldObj)
	if err1 != nil || err2 != nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("object without metadata: %T", newObj))}
	}
	var errs field.ErrorList
	for _, e := range apivalidation.ValidateObjectMetaUpdate(nm, om, field.NewPath("metadata")) {
		// The metadata update check also re-checks what ValidateObject
		// checks of any object; leave those to it.
		if !coveredByCreate(e) {
			errs = append(errs, e)
		}
	}
	return append(errs, validateImmutableFields(newObj, oldObj)...)
}

// coveredByCreate reports the metadata errors about content (not change)
// that ValidateObject reports as well.
func coveredByCreate(e *field.Error) bool {
	if e.Field == "metadata.generation" {
		return e.Type == field.ErrorTypeInvalid && strings.Contains(e.Detail, "greater than or equal to 0")
	}
	for _, p := range []string{"metadata.labels", "metadata.annotations", "metadata.ownerReferences", "metadata.managedFields"} {
		if e.Field == p || strings.HasPrefix(e.Field, p+"[") || strings.HasPrefix(e.Field, p+".") {
			return true
		}
	}
	return false
}

func validateImmutableFields(newObj, oldObj runtime.Object) field.ErrorList {
	spec := field.NewPath("spec")
	switch n := newObj.(type) {
	case *corev1.Pod:
		return validatePodUpdate(n, oldObj.(*corev1.Pod))
	case *corev1.Service:
		return validateServiceUpdate(n, oldObj.(*corev1.Service))
	case *corev1.ConfigMap:
		o := oldObj.(*corev1.ConfigMap)
		return validateImmutableData(n.Immutable, o.Immutable, n.Data, o.Data, n.BinaryData, o.BinaryData)
	case *corev1.Secret:
		o := oldObj.(*corev1.Secret)
		errs := immutable(n.Type, o.Type, field.NewPath("type"))
		return append(errs, validateImmutableData(n.Immutable, o.Immutable, n.Data, o.Data, nil, nil)...)
	case *corev1.Node:
		o := oldObj.(*corev1.Node)
		var errs field.ErrorList
		if o.Spec.PodCIDR != "" {
			errs = append(errs, immutable(n.Spec.PodCIDR, o.Spec.PodCIDR, spec.Child("podCIDR"))...)
		}
		if o.Spec.ProviderID != "" {
			errs = append(errs, immutable(n.Spec.ProviderID, o.Spec.ProviderID, spec.Child("providerID"))...)
		}
		return errs
	case *corev1.ReplicationController:
		return nil // an RC's selector may change (its pods are re-adopted)
	case *corev1.PersistentVolumeClaim:
		return validatePVCUpdate(n, oldObj.(*corev1.PersistentVolumeClaim))
	case *corev1.PersistentVolume:
		o := oldObj.(*corev1.PersistentVolume)
		if !apiequality.Semantic.DeepEqual(n.Spec.PersistentVolumeSource, o.Spec.PersistentVolumeSource) {
			return field.ErrorList{field.Forbidden(spec.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation")}
		}
	case *appsv1.Deployment:
		return immutable(n.Spec.Selector, oldObj.(*appsv1.Deployment).Spec.Selector, spec.Child("selector"))
	case *appsv1.ReplicaSet:
		return immutable(n.Spec.Selector, oldObj.(*appsv1.ReplicaSet).Spec.Selector, spec.Child("selector"))
	case *appsv1.DaemonSet:
		return immutable(n.Spec.Selector, oldObj.(*appsv1.DaemonSet).Spec.Selector, spec.Child("selector"))
	case *appsv1.StatefulSet:
		return validateStatefulSetUpdate(n, oldObj.(*appsv1.StatefulSet))
	case *appsv1.ControllerRevision:
		return immutable(n.Data, oldObj.(*appsv1.ControllerRevision).Data, field.NewPath("data"))
	case *batchv1.Job:
		return validateJobUpdate(n, oldObj.(*batchv1.Job))
	case *rbacv1.RoleBinding:
		if n.RoleRef != oldObj.(*rbacv1.RoleBinding).RoleRef {
			return field.ErrorList{field.Invalid(field.NewPath("roleRef"), n.RoleRef, "cannot change roleRef")}
		}
	case *rbacv1.ClusterRoleBinding:
		if n.RoleRef != oldObj.(*rbacv1.ClusterRoleBinding).RoleRef {
			return field.ErrorList{field.Invalid(field.NewPath("roleRef"), n.RoleRef, "cannot change roleRef")}
		}
	case *storagev1.StorageClass:
		o := oldObj.(*storagev1.StorageClass)
		var errs field.ErrorList
		if !apiequality.Semantic.DeepEqual(n.Parameters, o.Parameters) {
			errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
		}
		if n.Provisioner != o.Provisioner {
			errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
		}
		if !apiequality.Semantic.DeepEqual(n.ReclaimPolicy, o.ReclaimPolicy) {
			errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
		}
		if !apiequality.Semantic.DeepEqual(n.VolumeBindingMode, o.VolumeBindingMode) {
			errs = append(errs, field.Forbidden(field.NewPath("volumeBindingMode"), "field is immutable"))
		}
		return errs
	}
	return nil
}

package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// controllerOf is the controller reference of obj, or nil.
func controllerOf(obj metav1.Object) *metav1.OwnerReference {
	return metav1.GetControllerOf(obj)
}

// isControlledBy reports whether obj's controller reference names uid.
func isControlledBy(obj metav1.Object, uid types.UID) bool {
	ref := controllerOf(obj)
	return ref != nil && ref.UID == uid
}

// controllerRef is the ownerReference an owner of kind gvk puts on what it
// controls: controller and blockOwnerDeletion set, as Kubernetes does.
func controllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, gvk)
}

// withControllerRef returns refs with ref added (a stale controller
// reference of another UID is not there: callers adopt orphans only).
func withControllerRef(refs []metav1.OwnerReference, ref metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs)+1)
	for _, r := range refs {
		if r.UID == ref.UID {
			continue
		}
		out = append(out, r)
	}
	return append(out, ref)
}

// withoutOwner returns refs without the reference to uid.
func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}

// Kinds the controllers own and reference.
var (
	kindReplicaSet            = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	kindDeployment            = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	kindReplicationController = corev1.SchemeGroupVersion.WithKind("ReplicationController")
)

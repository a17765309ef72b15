package api

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Skiff's annotations between the node lifecycle controller and the agent.
// Both sides speak through the node's Lease in kube-node-lease and the
// pods; the names live here so that the two packages, which never import
// each other, cannot drift apart.
const (
	// FenceAnnotation, set to "true" on a pod, marks an identity that must
	// never run twice, as StatefulSet pods are: its agent stops it when it
	// cannot renew its Lease, and the controller deletes it for good only
	// once that must have happened.
	FenceAnnotation = "skiff.dev/fence"
	// LeaseRevokedAnnotation, on a node's Lease, revokes the fencing token:
	// the controller sets it (the time, RFC 3339) with a compare-and-swap on
	// a Lease it has read expired, right before it force-deletes the node's
	// fenced pods. The agent renews with a compare-and-swap too, so it
	// cannot renew past a revocation without reading it, and it never runs
	// the revoked pods again.
	LeaseRevokedAnnotation = "skiff.dev/revoked-at"
	// LeasePingAnnotation, on a node's Lease, is the controller's "are you
	// there?" (the time, RFC 3339), written when gossip suspects the node or
	// holds it dead. The agent watches its Lease and renews at once, which
	// clears it; a Lease not renewed within the controller's ping timeout
	// is the store's confirmation that the node is silent.
	LeasePingAnnotation = "skiff.dev/ping"
)

// Fenceable reports whether p is fenced with its node: a pod controlled
// by a StatefulSet, or one annotated FenceAnnotation=true.
func Fenceable(p *corev1.Pod) bool {
	if p.Annotations[FenceAnnotation] == "true" {
		return true
	}
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "StatefulSet" && strings.HasPrefix(ref.APIVersion, "apps/")
}

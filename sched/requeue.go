package sched

import "strings"

// ClusterEvent is a kind of change in the cluster after which a pod that
// fit nowhere may fit. The scheduler loop uses FitError.MayFitAfter to
// requeue only the pods a change can help, instead of all of them on every
// event (Kubernetes calls these queueing hints).
type ClusterEvent int

const (
	// NodeAdded: a node joined (or came back).
	NodeAdded ClusterEvent = iota
	// NodeUpdated: a node's labels, taints, readiness, cordon or allocatable
	// changed.
	NodeUpdated
	// PodAdded: a pod was bound (or its labels changed), which may satisfy
	// an affinity term or raise a spread domain's minimum.
	PodAdded
	// PodRemoved: a pod was deleted or finished, freeing resources and
	// ports and lifting anti-affinity.
	PodRemoved
	// VolumeUpdated: a PersistentVolume or claim changed.
	VolumeUpdated
)

// helps says which events can lift a rejection reason. Node events can lift
// any: a new or changed node may simply fit.
func helps(reason string, ev ClusterEvent) bool {
	if ev == NodeAdded || ev == NodeUpdated {
		return true
	}
	switch {
	case reason == ReasonTooManyPods, strings.HasPrefix(reason, "Insufficient "),
		reason == ReasonHostPorts, reason == ReasonPodAntiAffinity, reason == ReasonExistingAntiAffinity:
		return ev == PodRemoved
	case reason == ReasonPodAffinity:
		return ev == PodAdded
	case reason == ReasonSpreadConstraints:
		return ev == PodAdded || ev == PodRemoved
	case reason == ReasonVolumeNodeAffinity:
		return ev == VolumeUpdated
	}
	// Cordon, taints, readiness, node affinity, missing topology labels:
	// only the nodes themselves can change those.
	return false
}

// MayFitAfter reports whether an event of kind ev could make some node that
// rejected the pod accept it. False means retrying after such an event is
// pointless.
func (e *FitError) MayFitAfter(ev ClusterEvent) bool {
	for reason := range e.Reasons {
		if helps(reason, ev) {
			return true
		}
	}
	return false
}

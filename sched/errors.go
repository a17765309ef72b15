package sched

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is; the snapshot and the
// scheduler wrap them with the object they are about.
var (
	// ErrNoNodesAvailable is returned when the snapshot holds no schedulable
	// node at all. Its text is Kubernetes' own for the same situation.
	ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")
	// ErrPodNotBound is returned by Snapshot.AddPod for a pod without
	// spec.nodeName: only bound (or assumed) pods occupy a node.
	ErrPodNotBound = errors.New("pod is not bound to a node")
	// ErrPodAlreadyBound is returned by Schedule for a pod that already has
	// spec.nodeName: such a pod bypasses the scheduler, as in Kubernetes.
	ErrPodAlreadyBound = errors.New("pod is already bound to a node")
	// ErrSchedulingGated is returned by Schedule for a pod that still has
	// spec.schedulingGates: it must not be placed until they are removed.
	ErrSchedulingGated = errors.New("pod has scheduling gates")
	// ErrNodeNotFound is returned when an operation names a node the snapshot
	// does not know.
	ErrNodeNotFound = errors.New("node not found")
	// ErrInvalidPod is returned when a pod's scheduling constraints cannot be
	// compiled (a malformed label selector, say). Such a pod can never be
	// scheduled until it is fixed, so it is not a FitError.
	ErrInvalidPod = errors.New("invalid pod scheduling constraints")
	// ErrUnsupported is returned by Schedule for a pod that needs something
	// this scheduler does not do (dynamic resource claims), rather than
	// placing it as if the need were not there.
	ErrUnsupported = errors.New("unsupported by the scheduler")
	// ErrInvalidConfig is returned by Config.Validate.
	ErrInvalidConfig = errors.New("invalid scheduler config")
)

// Reasons a node is filtered out, worded as kube-scheduler words them so that
// users (and their tooling) read the same FailedScheduling messages.
const (
	ReasonNotReady             = "node(s) were not ready"
	ReasonUnschedulable        = "node(s) were unschedulable"
	ReasonNodeAffinity         = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts            = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods          = "Too many pods"
	ReasonVolumeNodeAffinity   = "node(s) had volume node affinity conflict"
	ReasonSpreadConstraints    = "node(s) didn't match pod topology spread constraints"
	ReasonSpreadMissingLabel   = ReasonSpreadConstraints + " (missing required label)"
	ReasonPodAffinity          = "node(s) didn't match pod affinity rules"
	ReasonPodAntiAffinity      = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
	// ReasonUntoleratedTaints is the generic taint reason, used when
	// Config.RedactTaints is set (as kube-scheduler ≥ 1.32 always does).
	ReasonUntoleratedTaints = "node(s) had untolerated taint(s)"
)

// ReasonInsufficient is the reason for a resource the node has too little of
// ("Insufficient cpu").
func ReasonInsufficient(resource string) string { return "Insufficient " + resource }

// ReasonUntoleratedTaint names the first taint of a node the pod does not
// tolerate, in the form the issue asks for and older kube-schedulers print:
// "node(s) had untolerated taint {key: value}".
func ReasonUntoleratedTaint(key, value string) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", key, value)
}

// FitError says why a pod fits on no node: for each reason, how many nodes
// were rejected for it. A node rejected by one filter step for several
// reasons (cpu and memory) counts once under each, as in Kubernetes.
type FitError struct {
	// Pod is namespace/name of the pod.
	Pod string
	// NumAllNodes is the number of nodes considered (all schedulable nodes of
	// the snapshot: a pod that fits nowhere has been tried everywhere).
	NumAllNodes int
	// Reasons maps a reason (see the Reason constants) to a node count.
	Reasons map[string]int
}

// Error renders the message kube-scheduler puts in the FailedScheduling event
// and the PodScheduled=False condition: "0/3 nodes are available: 1 node(s)
// were unschedulable, 2 Insufficient cpu." The histogram entries are
// "<count> <reason>" sorted as strings, which is what Kubernetes does
// (so "10 ..." sorts before "2 ...").
func (e *FitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available", e.NumAllNodes)
	entries := make([]string, 0, len(e.Reasons))
	for reason, n := range e.Reasons {
		entries = append(entries, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(entries)
	if len(entries) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(entries, ", "))
	}
	b.WriteString(".")
	return b.String()
}

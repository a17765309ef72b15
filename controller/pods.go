package controller

import (
	"crypto/rand"
	"math/big"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// isTerminal: the pod's containers will not run again; it counts for nothing.
func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// isActive: neither finished nor being deleted.
func isActive(p *corev1.Pod) bool {
	return !isTerminal(p) && p.DeletionTimestamp == nil
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func isReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// availableIn says whether p is available at now (ready for at least
// minReadySeconds) and, if it is ready but not yet available, how long
// until it is.
func availableIn(p *corev1.Pod, minReadySeconds int32, now time.Time) (bool, time.Duration) {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReadySeconds == 0 {
		return true, 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if !c.LastTransitionTime.IsZero() && !now.Before(at) {
		return true, 0
	}
	if c.LastTransitionTime.IsZero() {
		return false, time.Duration(minReadySeconds) * time.Second
	}
	return false, at.Sub(now)
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

var phaseRank = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// deleteFirst reports whether a should go before b when scaling down: the
// pod whose loss costs least goes first. In order: unscheduled before
// scheduled (it runs nowhere), earlier phase, unready before ready, ready
// for less time, more restarts, then newer before older.
func deleteFirst(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if pa, pb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; pa != pb {
		return pa < pb
	}
	if ra, rb := isReady(a), isReady(b); ra != rb {
		return !ra
	}
	if isReady(a) {
		ta, tb := readyCondition(a).LastTransitionTime, readyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return tb.Before(&ta)
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

// rankForDeletion sorts pods, the first to delete first.
func rankForDeletion(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return deleteFirst(pods[i], pods[j]) })
}

const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomSuffix is 5 random lowercase letters and digits, as generateName
// appends.
func randomSuffix() string {
	b := make([]byte, 5)
	max := big.NewInt(int64(len(nameAlphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = nameAlphabet[n.Int64()]
	}
	return string(b)
}

// podName is base-xxxxx, base cut so the name stays a valid label value
// length (63) as Kubernetes' generateName does.
func podName(base string) string {
	if len(base) > 57 {
		base = base[:57]
	}
	return base + "-" + randomSuffix()
}

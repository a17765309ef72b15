package api

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// AdmissionOptions configures Admit: what Kubernetes' default admission
// plugins add to new pods.
type AdmissionOptions struct {
	// NotReadyTolerationSeconds and UnreachableTolerationSeconds are how
	// long a pod stays bound to a node whose Ready condition is False or
	// Unknown before it is evicted (the DefaultTolerationSeconds plugin;
	// Kubernetes' default is 300s, which users often find slow).
	NotReadyTolerationSeconds    int64
	UnreachableTolerationSeconds int64
}

// DefaultAdmissionOptions are Kubernetes' defaults.
func DefaultAdmissionOptions() AdmissionOptions {
	return AdmissionOptions{NotReadyTolerationSeconds: 300, UnreachableTolerationSeconds: 300}
}

// Validate checks the options.
func (o AdmissionOptions) Validate() error {
	if o.NotReadyTolerationSeconds < 0 || o.UnreachableTolerationSeconds < 0 {
		return fmt.Errorf("toleration seconds must not be negative: not-ready %d, unreachable %d",
			o.NotReadyTolerationSeconds, o.UnreachableTolerationSeconds)
	}
	return nil
}

// Taint keys the node lifecycle controller puts on nodes that stop being
// Ready; pods tolerate them for a while (see AdmissionOptions).
const (
	TaintNodeNotReady    = corev1.TaintNodeNotReady
	TaintNodeUnreachable = corev1.TaintNodeUnreachable
)

// Admit applies, to a new object, the pure part of Kubernetes' default
// admission plugins, after Default and before Validate. For a Pod:
//   - ServiceAccount: runs as the namespace's "default" service account
//     unless it names one (the token volume is not added here);
//   - DefaultTolerationSeconds: tolerates the not-ready and unreachable
//     taints (NoExecute) for the configured time, unless it already
//     tolerates them;
//   - Priority: priority 0 and preemptionPolicy PreemptLowerPriority when
//     no priority class is named.
//
// Other kinds are unchanged.
func (o AdmissionOptions) Admit(obj runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s := &pod.Spec
	if s.ServiceAccountName == "" {
		s.ServiceAccountName = "default"
	}
	// Kubernetes still fills the deprecated alias, and kubectl shows it.
	s.DeprecatedServiceAccount = s.ServiceAccountName
	o.addToleration(s, TaintNodeNotReady, o.NotReadyTolerationSeconds)
	o.addToleration(s, TaintNodeUnreachable, o.UnreachableTolerationSeconds)
	if s.PriorityClassName == "" {
		if s.Priority == nil {
			s.Priority = ptr(int32(0))
		}
		if s.PreemptionPolicy == nil {
			s.PreemptionPolicy = ptr(corev1.PreemptLowerPriority)
		}
	}
}

func (o AdmissionOptions) addToleration(s *corev1.PodSpec, key string, seconds int64) {
	for _, t := range s.Tolerations {
		// A toleration of everything, or of this key for NoExecute (or
		// every effect), already covers it.
		if (t.Key == "" && t.Operator == corev1.TolerationOpExists) ||
			(t.Key == key && (t.Effect == "" || t.Effect == corev1.TaintEffectNoExecute)) {
			return
		}
	}
	s.Tolerations = append(s.Tolerations, corev1.Toleration{
		Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
		TolerationSeconds: ptr(seconds),
	})
}

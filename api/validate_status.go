package api

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Status is written by Skiff's own components (agents, controllers), not
// users; checking it catches their bugs where they happen rather than in
// whatever reads the status later (kubectl get printing -1 ready pods).

func validateStatus(obj runtime.Object) field.ErrorList {
	sp := field.NewPath("status")
	switch o := obj.(type) {
	case *corev1.Pod:
		return validatePodStatus(&o.Status, sp)
	case *corev1.Node:
		return validateNodeStatus(&o.Status, sp)
	case *corev1.Service:
		var errs field.ErrorList
		for i, ing := range o.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				errs = append(errs, validIP(ing.IP, sp.Child("loadBalancer", "ingress").Index(i).Child("ip"))...)
			}
		}
		return errs
	case *appsv1.Deployment:
		s := o.Status
		return counts(sp, map[string]int32{"replicas": s.Replicas, "updatedReplicas": s.UpdatedReplicas,
			"readyReplicas": s.ReadyReplicas, "availableReplicas": s.AvailableReplicas, "unavailableReplicas": s.UnavailableReplicas},
			[][2]string{{"availableReplicas", "replicas"}, {"readyReplicas", "replicas"}, {"availableReplicas", "readyReplicas"}})
	case *appsv1.ReplicaSet:
		s := o.Status
		return counts(sp, map[string]int32{"replicas": s.Replicas, "fullyLabeledReplicas": s.FullyLabeledReplicas,
			"readyReplicas": s.ReadyReplicas, "availableReplicas": s.AvailableReplicas},
			[][2]string{{"fullyLabeledReplicas", "replicas"}, {"readyReplicas", "replicas"}, {"availableReplicas", "readyReplicas"}})
	case *corev1.ReplicationController:
		s := o.Status
		return counts(sp, map[string]int32{"replicas": s.Replicas, "fullyLabeledReplicas": s.FullyLabeledReplicas,
			"readyReplicas": s.ReadyReplicas, "availableReplicas": s.AvailableReplicas},
			[][2]string{{"fullyLabeledReplicas", "replicas"}, {"readyReplicas", "replicas"}, {"availableReplicas", "readyReplicas"}})
	case *appsv1.StatefulSet:
		s := o.Status
		return counts(sp, map[string]int32{"replicas": s.Replicas, "readyReplicas": s.ReadyReplicas,
			"currentReplicas": s.CurrentReplicas, "updatedReplicas": s.UpdatedReplicas, "availableReplicas": s.AvailableReplicas},
			[][2]string{{"readyReplicas", "replicas"}, {"currentReplicas", "replicas"}, {"updatedReplicas", "replicas"}, {"availableReplicas", "readyReplicas"}})
	case *appsv1.DaemonSet:
		s := o.Status
		return counts(sp, map[string]int32{"currentNumberScheduled": s.CurrentNumberScheduled, "numberMisscheduled": s.NumberMisscheduled,
			"desiredNumberScheduled": s.DesiredNumberScheduled, "numberReady": s.NumberReady, "updatedNumberScheduled": s.UpdatedNumberScheduled,
			"numberAvailable": s.NumberAvailable, "numberUnavailable": s.NumberUnavailable}, nil)
	case *batchv1.Job:
		s := o.Status
		return counts(sp, map[string]int32{"active": s.Active, "succeeded": s.Succeeded, "failed": s.Failed}, nil)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s := o.Status
		return counts(sp, map[string]int32{"currentReplicas": s.CurrentReplicas, "desiredReplicas": s.DesiredReplicas}, nil)
	}
	return nil
}

// counts checks that status counters are non-negative and that each pair
// {a, b} has a <= b.
func counts(p *field.Path, values map[string]int32, atMost [][2]string) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(values) {
		errs = append(errs, nonNegative(int64(values[name]), p.Child(name))...)
	}
	for _, pair := range atMost {
		a, b := values[pair[0]], values[pair[1]]
		if a > b {
			errs = append(errs, field.Invalid(p.Child(pair[0]), a, fmt.Sprintf("cannot be greater than status.%s", pair[1])))
		}
	}
	return errs
}

func validatePodStatus(s *corev1.PodStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Phase != "" {
		errs = append(errs, supported(s.Phase, p.Child("phase"), corev1.PodPending, corev1.PodRunning,
			corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown)...)
	}
	if s.PodIP != "" {
		errs = append(errs, validIP(s.PodIP, p.Child("podIP"))...)
	}
	for i, ip := range s.PodIPs {
		ipp := p.Child("podIPs").Index(i).Child("ip")
		errs = append(errs, validIP(ip.IP, ipp)...)
		if i == 0 && s.PodIP != "" && ip.IP != s.PodIP {
			errs = append(errs, field.Invalid(ipp, ip.IP, "must match status.podIP"))
		}
	}
	if s.HostIP != "" {
		errs = append(errs, validIP(s.HostIP, p.Child("hostIP"))...)
	}
	for _, list := range []struct {
		name     string
		statuses []corev1.ContainerStatus
	}{{"containerStatuses", s.ContainerStatuses}, {"initContainerStatuses", s.InitContainerStatuses}} {
		for i, cs := range list.statuses {
			cp := p.Child(list.name).Index(i)
			if cs.Name == "" {
				errs = append(errs, field.Required(cp.Child("name"), ""))
			}
			errs = append(errs, nonNegative(int64(cs.RestartCount), cp.Child("restartCount"))...)
		}
	}
	return errs
}

func validateNodeStatus(s *corev1.NodeStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name string
		list corev1.ResourceList
	}{{"capacity", s.Capacity}, {"allocatable", s.Allocatable}} {
		for _, n := range sortedKeys(l.list) {
			errs = append(errs, nonNegativeQuantity(l.list[n], p.Child(l.name).Key(string(n)))...)
		}
	}
	for i, a := range s.Addresses {
		ap := p.Child("addresses").Index(i)
		errs = append(errs, supported(a.Type, ap.Child("type"), corev1.NodeHostName, corev1.NodeInternalIP,
			corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeExternalDNS)...)
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			errs = append(errs, validIP(a.Address, ap.Child("address"))...)
		}
	}
	return errs
}

package api

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// Quota usage: what one object counts against a ResourceQuota, as
// Kubernetes' quota evaluators count it. The API server's quota admission
// adds an object's usage to a quota's status.used; the ResourceQuota
// controller sums it over a namespace. Both must agree, so it lives here.

// storageClassQuotaSuffix qualifies per-class PVC quota resources
// (gold.storageclass.storage.k8s.io/requests.storage).
const storageClassQuotaSuffix = ".storageclass.storage.k8s.io/"

// QuotaCountName is the object-count resource of a kind: count/pods,
// count/deployments.apps.
func QuotaCountName(info KindInfo) corev1.ResourceName {
	return corev1.ResourceName("count/" + info.GroupResource())
}

// legacyCountNames are the core kinds quota also counts under their bare
// plural (hard: {pods: 10}).
var legacyCountNames = map[string]bool{
	"pods": true, "services": true, "replicationcontrollers": true, "resourcequotas": true,
	"secrets": true, "configmaps": true, "persistentvolumeclaims": true,
}

// QuotaUsage is what obj, of kind info, counts against quotas. A pod in a
// terminal phase, or past the end of its deletion grace period, counts
// nothing (it holds no resources), as in Kubernetes.
func QuotaUsage(info KindInfo, obj runtime.Object, now time.Time) corev1.ResourceList {
	out := corev1.ResourceList{}
	if pod, ok := obj.(*corev1.Pod); ok && !PodCountsForQuota(pod, now) {
		return out
	}
	out[QuotaCountName(info)] = resource.MustParse("1")
	if info.GVK.Group == "" && legacyCountNames[info.Resource] {
		out[corev1.ResourceName(info.Resource)] = resource.MustParse("1")
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		req, lim := PodRequestsAndLimits(&o.Spec)
		for name, q := range req {
			out[corev1.ResourceName("requests."+string(name))] = q
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage {
				out[name] = q
			}
		}
		for name, q := range lim {
			out[corev1.ResourceName("limits."+string(name))] = q
		}
	case *corev1.Service:
		switch o.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			out[corev1.ResourceServicesLoadBalancers] = resource.MustParse("1")
			out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(o.Spec.Ports)), resource.DecimalSI)
		case corev1.ServiceTypeNodePort:
			out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(o.Spec.Ports)), resource.DecimalSI)
		}
	case *corev1.PersistentVolumeClaim:
		storage, hasStorage := o.Spec.Resources.Requests[corev1.ResourceStorage]
		if hasStorage {
			out[corev1.ResourceRequestsStorage] = storage
		}
		if class := o.Spec.StorageClassName; class != nil && *class != "" {
			prefix := *class + storageClassQuotaSuffix
			out[corev1.ResourceName(prefix+"persistentvolumeclaims")] = resource.MustParse("1")
			if hasStorage {
				out[corev1.ResourceName(prefix+"requests.storage")] = storage
			}
		}
	}
	return out
}

// QuotaResourceOf reports whether objects of kind info can count towards
// the quota resource name; it tells the ResourceQuota controller and the
// admission which kinds to sum for a quota.
func QuotaResourceOf(info KindInfo, name corev1.ResourceName) bool {
	n := string(name)
	if n == string(QuotaCountName(info)) {
		return true
	}
	if info.GVK.Group == "" && legacyCountNames[info.Resource] && n == info.Resource {
		return true
	}
	switch {
	case info.GVK.Group != "":
		return false
	case info.Resource == "pods":
		return n == "cpu" || n == "memory" || n == "ephemeral-storage" ||
			strings.HasPrefix(n, "requests.") && n != "requests.storage" || strings.HasPrefix(n, "limits.")
	case info.Resource == "services":
		return n == string(corev1.ResourceServicesNodePorts) || n == string(corev1.ResourceServicesLoadBalancers)
	case info.Resource == "persistentvolumeclaims":
		return n == "requests.storage" || strings.Contains(n, storageClassQuotaSuffix)
	}
	return false
}

// PodCountsForQuota reports whether a pod holds quota: not once it has
// Succeeded or Failed, nor once its deletion grace period is over.
func PodCountsForQuota(pod *corev1.Pod, now time.Time) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	// deletionTimestamp is the end of the grace period (the API server sets
	// it to the time of the delete plus the grace period).
	if dt := pod.DeletionTimestamp; dt != nil && now.After(dt.Time) {
		return false
	}
	return true
}

// PodRequestsAndLimits are a pod's effective requests and limits, as the
// scheduler and quota see them: per resource, the larger of the sum over
// its containers and the largest init container, plus the pod overhead.
func PodRequestsAndLimits(spec *corev1.PodSpec) (requests, limits corev1.ResourceList) {
	requests, limits = corev1.ResourceList{}, corev1.ResourceList{}
	for _, c := range spec.Containers {
		for n, q := range c.Resources.Requests {
			addQuantity(requests, n, q)
		}
		for n, q := range c.Resources.Limits {
			addQuantity(limits, n, q)
		}
	}
	for _, c := range spec.InitContainers {
		for n, q := range c.Resources.Requests {
			if cur, ok := requests[n]; !ok || q.Cmp(cur) > 0 {
				requests[n] = q.DeepCopy()
			}
		}
		for n, q := range c.Resources.Limits {
			if cur, ok := limits[n]; !ok || q.Cmp(cur) > 0 {
				limits[n] = q.DeepCopy()
			}
		}
	}
	for n, q := range spec.Overhead {
		if _, ok := requests[n]; ok {
			addQuantity(requests, n, q)
		}
		if _, ok := limits[n]; ok {
			addQuantity(limits, n, q)
		}
	}
	return requests, limits
}

// QuotaMatches reports whether a quota's scopes select obj. A quota
// without scopes selects everything; one with scopes (or a scope selector)
// selects pods only, as in Kubernetes: Terminating pods have
// activeDeadlineSeconds, BestEffort pods no requests or limits, and
// PriorityClass matches spec.priorityClassName. CrossNamespacePodAffinity
// and VolumeAttributesClass select nothing here.
func QuotaMatches(q *corev1.ResourceQuota, obj runtime.Object) bool {
	var reqs []corev1.ScopedResourceSelectorRequirement
	for _, s := range q.Spec.Scopes {
		reqs = append(reqs, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		reqs = append(reqs, q.Spec.ScopeSelector.MatchExpressions...)
	}
	if len(reqs) == 0 {
		return true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	for _, r := range reqs {
		if !podMatchesScope(pod, r) {
			return false
		}
	}
	return true
}

func podMatchesScope(pod *corev1.Pod, r corev1.ScopedResourceSelectorRequirement) bool {
	var holds bool
	switch r.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		holds = pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		holds = pod.Spec.ActiveDeadlineSeconds == nil
	case corev1.ResourceQuotaScopeBestEffort:
		holds = PodQOSClass(&pod.Spec) == corev1.PodQOSBestEffort
	case corev1.ResourceQuotaScopeNotBestEffort:
		holds = PodQOSClass(&pod.Spec) != corev1.PodQOSBestEffort
	case corev1.ResourceQuotaScopePriorityClass:
		pc := pod.Spec.PriorityClassName
		switch r.Operator {
		case corev1.ScopeSelectorOpExists:
			return pc != ""
		case corev1.ScopeSelectorOpDoesNotExist:
			return pc == ""
		case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
			in := false
			for _, v := range r.Values {
				in = in || v == pc
			}
			return in == (r.Operator == corev1.ScopeSelectorOpIn)
		}
		return false
	default:
		return false
	}
	// Boolean scopes: Exists and In mean the scope holds; DoesNotExist and
	// NotIn that it does not.
	if r.Operator == corev1.ScopeSelectorOpDoesNotExist || r.Operator == corev1.ScopeSelectorOpNotIn {
		return !holds
	}
	return holds
}

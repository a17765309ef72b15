package runtime

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Kubernetes' CPU conversion constants (pkg/kubelet/cm/helpers_linux.go).
const (
	cfsPeriodUS   = 100000
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliPerCPU   = 1000
	minQuotaUS    = 1000
	defaultShares = minShares // BestEffort containers and pods
)

// containerResources is what one container's resources become in cgroups.
// Zero means "no limit" (and, for Shares, "the default").
type containerResources struct {
	MemoryLimit int64  // bytes
	CPUQuota    int64  // µs per CFSPeriod
	CPUPeriod   uint64 // µs
	CPUShares   uint64
}

// requestOrLimit is the request of name, or its limit when no request is
// given (API defaulting sets request = limit in that case).
func requestOrLimit(r corev1.ResourceRequirements, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := r.Requests[name]; ok {
		return q, true
	}
	q, ok := r.Limits[name]
	return q, ok
}

// sharesFromMilli is Kubernetes' MilliCPUToShares: milliCPU*1024/1000,
// clamped to [2, 262144].
func sharesFromMilli(milli int64) uint64 {
	if milli == 0 {
		return minShares
	}
	s := milli * sharesPerCPU / milliPerCPU
	if s < minShares {
		return minShares
	}
	if s > maxShares {
		return maxShares
	}
	return uint64(s)
}

// quotaFromMilli is Kubernetes' MilliCPUToQuota for the default period.
func quotaFromMilli(milli int64) int64 {
	if milli == 0 {
		return 0
	}
	q := milli * cfsPeriodUS / milliPerCPU
	if q < minQuotaUS {
		q = minQuotaUS
	}
	return q
}

func resourcesOf(c *corev1.Container) containerResources {
	var r containerResources
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimit = q.Value()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CPUQuota, r.CPUPeriod = quotaFromMilli(q.MilliValue()), cfsPeriodUS
	}
	r.CPUShares = defaultShares
	if q, ok := requestOrLimit(c.Resources, corev1.ResourceCPU); ok {
		r.CPUShares = sharesFromMilli(q.MilliValue())
	}
	return r
}

// podResources is the pod-level cgroup: the sums over app containers (or the
// largest init container, whichever is larger), set only when every
// container has that limit — one unlimited container makes the pod
// unlimited, as the kubelet does.
func podResources(pod *corev1.Pod) containerResources {
	var (
		mem, cpuMilli, reqMilli int64
		memAll, cpuAll          = true, true
	)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			mem += q.Value()
		} else {
			memAll = false
		}
		if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			cpuMilli += q.MilliValue()
		} else {
			cpuAll = false
		}
		if q, ok := requestOrLimit(c.Resources, corev1.ResourceCPU); ok {
			reqMilli += q.MilliValue()
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			mem = max(mem, q.Value())
		} else {
			memAll = false
		}
		if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			cpuMilli = max(cpuMilli, q.MilliValue())
		} else {
			cpuAll = false
		}
		if q, ok := requestOrLimit(c.Resources, corev1.ResourceCPU); ok {
			reqMilli = max(reqMilli, q.MilliValue())
		}
	}
	r := containerResources{CPUShares: sharesFromMilli(reqMilli)}
	if memAll && mem > 0 {
		r.MemoryLimit = mem
	}
	if cpuAll && cpuMilli > 0 {
		r.CPUQuota, r.CPUPeriod = quotaFromMilli(cpuMilli), cfsPeriodUS
	}
	return r
}

// QOSClass computes a pod's QoS class as Kubernetes does
// (pkg/apis/core/v1/helper/qos), on the pod as the API server stores it,
// where a missing request defaults to its limit: BestEffort when no
// container requests or limits cpu or memory; Guaranteed when every
// container limits both and each request equals its limit; else Burstable.
func QOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			lim, hasLim := c.Resources.Limits[name]
			req, hasReq := requestOrLimit(c.Resources, name)
			if (hasLim && !lim.IsZero()) || (hasReq && !req.IsZero()) {
				any = true
			}
			if !hasLim || lim.IsZero() || !hasReq || req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

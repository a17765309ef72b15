package sched

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults used for scoring only, for containers that request nothing, so
// that a node full of request-less pods does not look empty to the scores.
// Filters never use them. The values are Kubernetes' own.
const (
	defaultMilliCPURequest = 100               // 0.1 core
	defaultMemoryRequest   = 200 * 1024 * 1024 // 200 MiB
)

// resources is an amount of the resources the scheduler accounts for, as
// plain integers so that the hot path compares int64s, never Quantities.
type resources struct {
	milliCPU  int64
	memory    int64
	ephemeral int64
	// scalar holds extended resources and hugepages; nil when there are none.
	scalar map[corev1.ResourceName]int64
}

func (r *resources) add(o *resources) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	r.ephemeral += o.ephemeral
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = make(map[corev1.ResourceName]int64, len(o.scalar))
		}
		r.scalar[name] += v
	}
}

func (r *resources) sub(o *resources) {
	r.milliCPU -= o.milliCPU
	r.memory -= o.memory
	r.ephemeral -= o.ephemeral
	for name, v := range o.scalar {
		if r.scalar != nil {
			r.scalar[name] -= v
			if r.scalar[name] == 0 {
				delete(r.scalar, name)
			}
		}
	}
}

// setMax raises each resource of r to at least o's.
func (r *resources) setMax(o *resources) {
	r.milliCPU = max(r.milliCPU, o.milliCPU)
	r.memory = max(r.memory, o.memory)
	r.ephemeral = max(r.ephemeral, o.ephemeral)
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = make(map[corev1.ResourceName]int64, len(o.scalar))
		}
		r.scalar[name] = max(r.scalar[name], v)
	}
}

// isScalar reports whether the scheduler accounts for name as an opaque
// counted resource: extended resources (vendor.example/gpu) and hugepages.
func isScalar(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods:
		return false
	}
	return len(name) > 0
}

// resourcesFromList converts a ResourceList. pods is returned apart because
// it is a node property, never a pod request.
func resourcesFromList(list corev1.ResourceList) (r resources, pods int64) {
	for name, q := range list {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case corev1.ResourcePods:
			pods = q.Value()
		default:
			if isScalar(name) {
				if r.scalar == nil {
					r.scalar = make(map[corev1.ResourceName]int64)
				}
				r.scalar[name] = q.Value()
			}
		}
	}
	return r, pods
}

// containerRequests is what one container asks for. An unset request falls
// back to the limit, which is what the API server's defaulting would have
// written, so the scheduler is right whether or not defaulting ran.
func containerRequests(req corev1.ResourceRequirements) resources {
	if len(req.Limits) == 0 {
		r, _ := resourcesFromList(req.Requests)
		return r
	}
	merged := make(corev1.ResourceList, len(req.Limits)+len(req.Requests))
	for name, q := range req.Limits {
		merged[name] = q
	}
	for name, q := range req.Requests {
		merged[name] = q
	}
	r, _ := resourcesFromList(merged)
	return r
}

// withScoringDefaults replaces a zero cpu or memory request by the scoring
// defaults.
func withScoringDefaults(r resources) resources {
	if r.milliCPU == 0 {
		r.milliCPU = defaultMilliCPURequest
	}
	if r.memory == 0 {
		r.memory = defaultMemoryRequest
	}
	return r
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// podRequests computes what a pod occupies on a node, as Kubernetes does:
//
//   - app containers run together, so their requests add up;
//   - classic init containers run one at a time before them, so only the
//     largest matters, plus every sidecar (restartable init container)
//     started before it;
//   - sidecars keep running beside the app containers, so they add to them;
//   - pod-level resources (spec.resources), when set, replace the container
//     aggregate for cpu and memory;
//   - the runtime class overhead (spec.overhead) comes on top of it all.
//
// nonZero is the same aggregate with the scoring defaults applied per
// container; the scores use it, the filters never do.
func podRequests(spec *corev1.PodSpec) (req, nonZero resources) {
	for i := range spec.Containers {
		r := containerRequests(spec.Containers[i].Resources)
		req.add(&r)
		nz := withScoringDefaults(r)
		nonZero.add(&nz)
	}
	var sidecars, sidecarsNZ, initMax, initMaxNZ resources
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		r := containerRequests(c.Resources)
		nz := withScoringDefaults(r)
		if isSidecar(c) {
			sidecars.add(&r)
			sidecarsNZ.add(&nz)
			initMax.setMax(&sidecars)
			initMaxNZ.setMax(&sidecarsNZ)
			continue
		}
		r.add(&sidecars)
		nz.add(&sidecarsNZ)
		initMax.setMax(&r)
		initMaxNZ.setMax(&nz)
	}
	req.add(&sidecars)
	nonZero.add(&sidecarsNZ)
	req.setMax(&initMax)
	nonZero.setMax(&initMaxNZ)

	if spec.Resources != nil {
		pl := containerRequests(*spec.Resources)
		if _, ok := quantityOf(spec.Resources, corev1.ResourceCPU); ok {
			req.milliCPU = pl.milliCPU
			nonZero.milliCPU = pl.milliCPU
		}
		if _, ok := quantityOf(spec.Resources, corev1.ResourceMemory); ok {
			req.memory = pl.memory
			nonZero.memory = pl.memory
		}
	}
	if len(spec.Overhead) > 0 {
		o, _ := resourcesFromList(spec.Overhead)
		req.add(&o)
		nonZero.add(&o)
	}
	return req, nonZero
}

func quantityOf(req *corev1.ResourceRequirements, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := req.Requests[name]; ok {
		return q, true
	}
	q, ok := req.Limits[name]
	return q, ok
}

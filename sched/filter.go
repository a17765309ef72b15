package sched

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Taint keys the node lifecycle controller and cordon use.
const (
	TaintNodeNotReady      = "node.kubernetes.io/not-ready"
	TaintNodeUnschedulable = "node.kubernetes.io/unschedulable"
)

// cycle is everything computed once per pod per scheduling attempt before
// any node is looked at (Kubernetes' PreFilter/PreScore state): the
// compiled pod, and the cluster-wide counts its inter-pod terms and spread
// constraints need. The per-node steps then only do map lookups and integer
// comparisons.
type cycle struct {
	snap *Snapshot
	pod  *podInfo

	tolerations      []corev1.Toleration
	placement        nodePlacement
	preferredNode    []weightedNodeTerm
	volumes          []*nodeSelector // required node affinity of the pod's bound PVs
	tolNotReady      bool
	tolUnschedulable bool
	taintReason      func(*corev1.Taint) string

	// Required inter-pod affinity state, keyed topologyKey → value → count.
	existingAnti    map[string]map[string]int // existing pods' anti-affinity that selects this pod
	affinityCounts  map[string]map[string]int // pods matching all of this pod's affinity terms
	antiCounts      map[string]map[string]int // pods matching any of this pod's anti-affinity terms
	affinityNowhere bool                      // no pod matches the affinity terms, but this pod does

	hardSpread []*spreadConstraint
	softSpread []*spreadConstraint

	// preferredPods is, per topologyKey, value → summed weight for the
	// preferred inter-pod affinity score (a slice: it is ranged over for
	// every node, and there are one or two keys).
	preferredPods []topologyWeights

	fastBasic bool // see filter
	steps     []filterStep
}

// filterStep is one check of the pipeline. It appends the reasons node ni
// fails (usually one) to out and returns it; nothing appended means the
// node passes.
type filterStep func(c *cycle, ni *nodeInfo, out []string) []string

// The pipeline, in order, named after the kube-scheduler plugins they
// mirror. Steps a pod cannot fail (no host ports, no volumes, no spread
// constraints, no inter-pod terms anywhere) are left out of its pipeline
// altogether, so a plain pod runs four steps.
//
// The order is kube-scheduler's default filter order, and it is also
// cheapest first: booleans, then a handful of taints and labels, then
// integer arithmetic, and last the steps whose per-node lookups depend on
// cluster-wide counts made before the loop. Since a node is reported under
// the first step it fails, keeping Kubernetes' order also keeps its
// FailedScheduling messages: a cordoned node full of pods is "unschedulable",
// not "Insufficient cpu". Readiness comes after taints because the node
// lifecycle controller taints a NotReady node; reporting that taint is what
// Kubernetes (which has no readiness filter) says about such a node.
var (
	stepUnschedulable filterStep = checkUnschedulable // NodeUnschedulable
	stepTaints        filterStep = checkTaints        // TaintToleration
	stepReady         filterStep = checkReady         // (Skiff's own)
	stepNodeAffinity  filterStep = checkNodeAffinity  // NodeAffinity
	stepHostPorts     filterStep = checkHostPorts     // NodePorts
	stepResources     filterStep = checkResources     // NodeResourcesFit
	stepVolumes       filterStep = checkVolumes       // VolumeBinding's node affinity check
	stepSpread        filterStep = checkSpread        // PodTopologySpread
	stepPodAffinity   filterStep = checkPodAffinity   // InterPodAffinity
)

// filter runs the pod's pipeline on one node and returns the reasons it
// fails (none: the node is feasible). h is the node's hot row.
//
// Pods without node affinity or host ports (whose steps would sit among
// them) run the four steps every pod has — cordon, taints, readiness,
// resources — fused, on the node's hot row: the common case, and the hot
// loop of a large cluster. Other pods run them one by one.
func (c *cycle) filter(ni *nodeInfo, h *nodeHot, out []string) []string {
	if c.fastBasic {
		if out = checkBasicHot(c, ni, h, out); len(out) > 0 {
			return out
		}
	}
	for _, step := range c.steps {
		if out = step(c, ni, out); len(out) > 0 {
			return out
		}
	}
	return out
}

// checkBasicHot is checkUnschedulable, checkTaints, checkReady and
// checkResources in that order, reading the hot row.
func checkBasicHot(c *cycle, ni *nodeInfo, h *nodeHot, out []string) []string {
	if h.flags&hotUnschedulable != 0 && !c.tolUnschedulable {
		return append(out, ReasonUnschedulable)
	}
	if h.flags&hotHardTaints != 0 {
		if out = checkTaints(c, ni, out); len(out) > 0 {
			return out
		}
	}
	if h.flags&hotReady == 0 && !c.tolNotReady {
		return append(out, ReasonNotReady)
	}
	if h.podsFree < 1 {
		out = append(out, ReasonTooManyPods)
	}
	r := &c.pod.req
	if r.milliCPU > 0 && r.milliCPU > h.cpuFree {
		out = append(out, "Insufficient cpu")
	}
	if r.memory > 0 && r.memory > h.memFree {
		out = append(out, "Insufficient memory")
	}
	if r.ephemeral > 0 && r.ephemeral > h.ephFree {
		out = append(out, "Insufficient ephemeral-storage")
	}
	if r.scalar != nil {
		out = checkScalar(r, ni, out)
	}
	return out
}

func checkUnschedulable(c *cycle, ni *nodeInfo, out []string) []string {
	if ni.unschedulable && !c.tolUnschedulable {
		out = append(out, ReasonUnschedulable)
	}
	return out
}

func checkTaints(c *cycle, ni *nodeInfo, out []string) []string {
	for i := range ni.hardTaints {
		t := &ni.hardTaints[i]
		if !toleratesAny(c.tolerations, t) {
			return append(out, c.taintReason(t))
		}
	}
	return out
}

func checkReady(c *cycle, ni *nodeInfo, out []string) []string {
	if !ni.ready && !c.tolNotReady {
		out = append(out, ReasonNotReady)
	}
	return out
}

func checkNodeAffinity(c *cycle, ni *nodeInfo, out []string) []string {
	if !c.placement.matches(ni.node) {
		out = append(out, ReasonNodeAffinity)
	}
	return out
}

// checkHostPorts: two bindings of one protocol and port conflict when their
// IPs are equal or either is the wildcard.
func checkHostPorts(c *cycle, ni *nodeInfo, out []string) []string {
	if len(ni.ports) == 0 {
		return out
	}
	for _, hp := range c.pod.ports {
		var conflict bool
		if hp.ip == wildcardIP {
			conflict = ni.portsAny[hostPort{protocol: hp.protocol, port: hp.port}] > 0
		} else {
			conflict = ni.ports[hp] > 0 || ni.ports[hostPort{protocol: hp.protocol, port: hp.port, ip: wildcardIP}] > 0
		}
		if conflict {
			return append(out, ReasonHostPorts)
		}
	}
	return out
}

// checkResources compares the pod's requests with what the node has left,
// reporting every resource that is short, like NodeResourcesFit. A resource
// the pod does not request is never short.
func checkResources(c *cycle, ni *nodeInfo, out []string) []string {
	if int64(len(ni.pods))+1 > ni.allocPods {
		out = append(out, ReasonTooManyPods)
	}
	r := &c.pod.req
	if r.milliCPU > 0 && r.milliCPU > ni.alloc.milliCPU-ni.requested.milliCPU {
		out = append(out, "Insufficient cpu")
	}
	if r.memory > 0 && r.memory > ni.alloc.memory-ni.requested.memory {
		out = append(out, "Insufficient memory")
	}
	if r.ephemeral > 0 && r.ephemeral > ni.alloc.ephemeral-ni.requested.ephemeral {
		out = append(out, "Insufficient ephemeral-storage")
	}
	return checkScalar(r, ni, out)
}

func checkScalar(r *resources, ni *nodeInfo, out []string) []string {
	for name, v := range r.scalar {
		if v > 0 && v > ni.alloc.scalar[name]-ni.requested.scalar[name] {
			out = append(out, ReasonInsufficient(string(name)))
		}
	}
	return out
}

func checkVolumes(c *cycle, ni *nodeInfo, out []string) []string {
	for _, sel := range c.volumes {
		if !sel.matches(ni.node) {
			return append(out, ReasonVolumeNodeAffinity)
		}
	}
	return out
}

func checkSpread(c *cycle, ni *nodeInfo, out []string) []string {
	for _, sc := range c.hardSpread {
		if _, ok := ni.labels[sc.key]; !ok {
			return append(out, ReasonSpreadMissingLabel)
		}
	}
	for _, sc := range c.hardSpread {
		v := ni.labels[sc.key]
		if int32(sc.counts[v]+sc.selfMatch-sc.minMatch) > sc.maxSkew {
			return append(out, ReasonSpreadConstraints)
		}
	}
	return out
}

// checkPodAffinity applies, in Kubernetes' order, the existing pods'
// anti-affinity towards this pod, then this pod's affinity, then its
// anti-affinity.
func checkPodAffinity(c *cycle, ni *nodeInfo, out []string) []string {
	lbls := ni.labels
	for key, values := range c.existingAnti {
		if v, ok := lbls[key]; ok && values[v] > 0 {
			return append(out, ReasonExistingAntiAffinity)
		}
	}
	if terms := c.pod.requiredAffinity; len(terms) > 0 {
		satisfied := true
		for i := range terms {
			v, ok := lbls[terms[i].topologyKey]
			if !ok {
				// A node without the topology label is in no domain at
				// all, so the affinity cannot hold there, first pod or not.
				return append(out, ReasonPodAffinity)
			}
			if c.affinityCounts[terms[i].topologyKey][v] <= 0 {
				satisfied = false
			}
		}
		if !satisfied && !c.affinityNowhere {
			return append(out, ReasonPodAffinity)
		}
	}
	for i := range c.pod.requiredAntiAffinity {
		t := &c.pod.requiredAntiAffinity[i]
		if v, ok := lbls[t.topologyKey]; ok && c.antiCounts[t.topologyKey][v] > 0 {
			return append(out, ReasonPodAntiAffinity)
		}
	}
	return out
}

// spreadConstraint is a compiled topologySpreadConstraint with its counts:
// matching pods per domain over the nodes the constraint considers.
type spreadConstraint struct {
	maxSkew    int32
	key        string
	selector   labels.Selector
	minDomains int32

	honorAffinity bool
	honorTaints   bool

	counts    map[string]int // matching pods per domain; absent is 0
	minMatch  int
	selfMatch int

	// The selector's exact label, for the pod index (see requiredLabels).
	selKey    string
	selValues []string
	indexed   bool
}

type topologyWeights struct {
	key    string
	values map[string]int64
}

func addCount(m map[string]map[string]int, key, value string, n int) map[string]map[string]int {
	if m == nil {
		m = make(map[string]map[string]int)
	}
	inner := m[key]
	if inner == nil {
		inner = make(map[string]int)
		m[key] = inner
	}
	inner[value] += n
	return m
}

package sched

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Snapshot is the scheduler's model of the cluster: every node, and per
// node the pods bound (or assumed) to it, aggregated the way the filters
// and scores read them. It is maintained incrementally from watch events
// (AddNode, UpdateNode, RemoveNode, AddPod, RemovePod), so a scheduling
// cycle never walks the cluster to learn what a node holds.
//
// A Snapshot is safe for concurrent use: informer handlers may feed it from
// their goroutines while the scheduler schedules. Scheduler holds the lock
// for a whole cycle, so a cycle sees one consistent state.
//
// Pods may arrive before their node (watch streams are not ordered across
// kinds) and may outlive it; they are then kept on a "ghost" node that is
// never a candidate, so their requests are counted as soon as the node shows
// up, as Kubernetes' scheduler cache does.
type Snapshot struct {
	mu sync.Mutex

	nodes map[string]*nodeInfo
	// list holds the candidate nodes (those with a Node object) in a stable
	// order; the scheduler walks it with a stride, each cycle continuing
	// where the previous one stopped.
	list []*nodeInfo
	pods map[string]*podInfo

	// Indexes for inter-pod constraints (see index.go): pods by label,
	// existing pods' terms by the label they require, and the domains of
	// the topology keys constraints have asked about.
	podsByLabel    map[labelKV]map[*podInfo]struct{}
	termsByLabel   map[labelKV]map[*affinityTerm]termRef
	unindexedTerms map[*affinityTerm]termRef
	domainsByKey   map[string]map[string]int

	// hot is the dense copy of the candidates' hot numbers, hot[i] being
	// list[i]'s.
	hot []nodeHot

	// owners holds, per controller uid, how many of its pods each node has.
	// Owner spreading reads one owner's count for each candidate node.
	owners map[types.UID]*ownerState

	namespaces map[string]map[string]string // namespace → labels
	claims     map[string]string            // namespace/claim → bound PV name ("" unbound)
	volumes    map[string]*nodeSelector     // PV name → compiled required node affinity
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		nodes:          make(map[string]*nodeInfo),
		pods:           make(map[string]*podInfo),
		podsByLabel:    make(map[labelKV]map[*podInfo]struct{}),
		termsByLabel:   make(map[labelKV]map[*affinityTerm]termRef),
		unindexedTerms: make(map[*affinityTerm]termRef),
		domainsByKey:   make(map[string]map[string]int),
		owners:         make(map[types.UID]*ownerState),
		namespaces:     make(map[string]map[string]string),
		claims:         make(map[string]string),
		volumes:        make(map[string]*nodeSelector),
	}
}

// nodeInfo is one node and the aggregate of its pods.
//
// The fields every cycle reads for every node it visits come first, so that
// a plain pod's filters and scores touch three or four cache lines per
// node; at 500 nodes per pod, memory traffic is the cost that matters.
type nodeInfo struct {
	ready         bool
	unschedulable bool
	allocPods     int64
	pods          []*podInfo
	alloc         resources
	requested     resources // sum of the pods' requests
	nonZero       resources // the same with scoring defaults
	// Taints split by what they affect: hard ones filter, soft
	// (PreferNoSchedule) ones only score.
	hardTaints []corev1.Taint
	softTaints []corev1.Taint
	labels     map[string]string

	name     string
	node     *corev1.Node     // nil for a ghost node
	ports    map[hostPort]int // host ports in use, by protocol, port and ip
	portsAny map[hostPort]int // keyed with ip "", counts every ip
	listIdx  int              // index in Snapshot.list; -1 when not a candidate
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, listIdx: -1}
}

func (ni *nodeInfo) setNode(n *corev1.Node) {
	ni.node = n
	list := n.Status.Allocatable
	if len(list) == 0 {
		// A node that reports only capacity (a minimal hollow node) is
		// taken at its word rather than treated as having nothing.
		list = n.Status.Capacity
	}
	ni.alloc, ni.allocPods = resourcesFromList(list)
	ni.ready = nodeReady(n)
	ni.unschedulable = n.Spec.Unschedulable
	ni.labels = n.Labels
	ni.hardTaints, ni.softTaints = nil, nil
	for _, t := range n.Spec.Taints {
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute:
			ni.hardTaints = append(ni.hardTaints, t)
		case corev1.TaintEffectPreferNoSchedule:
			ni.softTaints = append(ni.softTaints, t)
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (ni *nodeInfo) addPod(pi *podInfo) {
	pi.slot = len(ni.pods)
	ni.pods = append(ni.pods, pi)
	ni.requested.add(&pi.req)
	ni.nonZero.add(&pi.nonZero)
	for _, hp := range pi.ports {
		if ni.ports == nil {
			ni.ports = make(map[hostPort]int)
			ni.portsAny = make(map[hostPort]int)
		}
		ni.ports[hp]++
		ni.portsAny[hostPort{protocol: hp.protocol, port: hp.port}]++
	}
}

func (ni *nodeInfo) removePod(pi *podInfo) {
	last := len(ni.pods) - 1
	moved := ni.pods[last]
	ni.pods[pi.slot] = moved
	moved.slot = pi.slot
	ni.pods[last] = nil
	ni.pods = ni.pods[:last]
	ni.requested.sub(&pi.req)
	ni.nonZero.sub(&pi.nonZero)
	for _, hp := range pi.ports {
		decr(ni.ports, hp)
		decr(ni.portsAny, hostPort{protocol: hp.protocol, port: hp.port})
	}
}

// nodeHot is the part of a node a plain pod's filters and scores read, kept
// in one dense array parallel to Snapshot.list so that the node loop walks
// memory sequentially (one cache line per node) and dereferences a
// nodeInfo only for what is rare: taints, scalar resources, or a pod with
// more constraints. It is refreshed whenever its node or pods change.
type nodeHot struct {
	flags    uint32
	podsFree int32 // allocatable pods minus pods
	cpuFree  int64 // allocatable minus requested
	memFree  int64
	ephFree  int64
	nzCPU    int64 // requested, with scoring defaults
	nzMem    int64
	// 100/allocatable, so the scores multiply instead of divide (a 64-bit
	// division costs as much as the rest of a node's filters); 0 when the
	// node has none.
	pctCPU float64
	pctMem float64
}

const (
	hotReady uint32 = 1 << iota
	hotUnschedulable
	hotHardTaints
	hotSoftTaints
)

func (ni *nodeInfo) hot() nodeHot {
	h := nodeHot{
		podsFree: int32(min(max(ni.allocPods-int64(len(ni.pods)), -1<<30), 1<<30)),
		cpuFree:  ni.alloc.milliCPU - ni.requested.milliCPU,
		memFree:  ni.alloc.memory - ni.requested.memory,
		ephFree:  ni.alloc.ephemeral - ni.requested.ephemeral,
		nzCPU:    ni.nonZero.milliCPU,
		nzMem:    ni.nonZero.memory,
	}
	if ni.alloc.milliCPU > 0 {
		h.pctCPU = 100 / float64(ni.alloc.milliCPU)
	}
	if ni.alloc.memory > 0 {
		h.pctMem = 100 / float64(ni.alloc.memory)
	}
	if ni.ready {
		h.flags |= hotReady
	}
	if ni.unschedulable {
		h.flags |= hotUnschedulable
	}
	if len(ni.hardTaints) > 0 {
		h.flags |= hotHardTaints
	}
	if len(ni.softTaints) > 0 {
		h.flags |= hotSoftTaints
	}
	return h
}

// refreshHot copies ni's aggregate into the dense array.
func (s *Snapshot) refreshHot(ni *nodeInfo) {
	if ni.listIdx >= 0 {
		s.hot[ni.listIdx] = ni.hot()
	}
}

// ownerState is one owner's pods per node, and the set of candidate
// positions (Snapshot.list indexes) holding any: most nodes hold none of a
// given owner's pods, and a bit test is far cheaper than a map lookup.
type ownerState struct {
	perNode map[*nodeInfo]int32
	present bitset
}

// count returns how many of the owner's pods the node at list index idx
// holds.
func (o *ownerState) count(ni *nodeInfo, idx int) int32 {
	if !o.present.get(idx) {
		return 0
	}
	return o.perNode[ni]
}

// markOwners sets or clears, for every owner with pods on ni, the presence
// bit at list index idx (when ni enters, leaves or moves in the list).
func (s *Snapshot) markOwners(ni *nodeInfo, idx int, on bool) {
	for _, pi := range ni.pods {
		if o := s.owners[pi.owner]; o != nil {
			o.present.set(idx, on)
		}
	}
}

type bitset []uint64

func (b *bitset) set(i int, on bool) {
	w := i / 64
	if on && w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b))...)
	}
	if w >= len(*b) {
		return
	}
	if on {
		(*b)[w] |= 1 << (i % 64)
	} else {
		(*b)[w] &^= 1 << (i % 64)
	}
}

func (b bitset) get(i int) bool {
	w := i / 64
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

func decr[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// AddNode adds a node, or updates it if the snapshot already has it.
func (s *Snapshot) AddNode(n *corev1.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setNodeLocked(n)
}

// UpdateNode replaces a node's object (labels, taints, conditions,
// allocatable); the pods on it stay.
func (s *Snapshot) UpdateNode(n *corev1.Node) { s.AddNode(n) }

func (s *Snapshot) setNodeLocked(n *corev1.Node) {
	ni, ok := s.nodes[n.Name]
	if !ok {
		ni = newNodeInfo(n.Name)
		s.nodes[n.Name] = ni
	}
	var old map[string]string
	if ni.listIdx >= 0 {
		old = ni.labels
	}
	ni.setNode(n)
	s.trackDomains(old, ni.labels)
	if ni.listIdx < 0 {
		ni.listIdx = len(s.list)
		s.list = append(s.list, ni)
		s.hot = append(s.hot, nodeHot{})
		s.markOwners(ni, ni.listIdx, true)
	}
	s.refreshHot(ni)
}

// RemoveNode removes a node from the candidates. Pods still bound to it stay
// accounted for (on a ghost node) until they are removed themselves.
func (s *Snapshot) RemoveNode(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ni, ok := s.nodes[name]
	if !ok {
		return
	}
	if ni.listIdx >= 0 {
		s.trackDomains(ni.labels, nil)
		last := len(s.list) - 1
		moved := s.list[last]
		s.markOwners(ni, ni.listIdx, false)
		if moved != ni {
			s.markOwners(moved, last, false)
			s.markOwners(moved, ni.listIdx, true)
		}
		s.list[ni.listIdx] = moved
		s.hot[ni.listIdx] = s.hot[last]
		moved.listIdx = ni.listIdx
		s.list[last] = nil
		s.list = s.list[:last]
		s.hot = s.hot[:last]
		ni.listIdx = -1
	}
	ni.node, ni.labels = nil, nil
	if len(ni.pods) == 0 {
		delete(s.nodes, name)
	}
}

// AddPod records a pod bound to a node (spec.nodeName set). Adding a pod the
// snapshot already has (by namespace/name) replaces it, so an assumed pod is
// confirmed by the informer's event for the bound pod, and updates need no
// separate method. Pods that have finished (Succeeded or Failed) hold
// nothing, so adding one removes it.
func (s *Snapshot) AddPod(p *corev1.Pod) error {
	if p.Spec.NodeName == "" {
		return fmt.Errorf("%w: %s", ErrPodNotBound, podKey(p))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		s.removePodLocked(podKey(p))
		return nil
	}
	pi, err := newPodInfo(p, false)
	if err != nil {
		return err
	}
	s.addPodInfoLocked(pi)
	return nil
}

// UpdatePod is AddPod: the snapshot keys pods by namespace/name.
func (s *Snapshot) UpdatePod(p *corev1.Pod) error { return s.AddPod(p) }

// AssumePod records pod p as placed on node before the binding is written,
// so that the next decisions see the node's resources taken. If the binding
// fails, RemovePod forgets it; when it succeeds, the informer's AddPod of
// the bound pod replaces the assumption. p itself is not modified.
func (s *Snapshot) AssumePod(p *corev1.Pod, node string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[node]; !ok {
		return fmt.Errorf("%w: %s (assuming %s)", ErrNodeNotFound, node, podKey(p))
	}
	pi, err := newPodInfo(p, false)
	if err != nil {
		return err
	}
	pi.nodeName = node
	s.addPodInfoLocked(pi)
	return nil
}

func (s *Snapshot) addPodInfoLocked(pi *podInfo) {
	s.removePodLocked(pi.key)
	ni, ok := s.nodes[pi.nodeName]
	if !ok {
		ni = newNodeInfo(pi.nodeName)
		s.nodes[pi.nodeName] = ni
	}
	pi.ni = ni
	ni.addPod(pi)
	s.refreshHot(ni)
	if pi.owner != "" {
		o := s.owners[pi.owner]
		if o == nil {
			o = &ownerState{perNode: make(map[*nodeInfo]int32)}
			s.owners[pi.owner] = o
		}
		if o.perNode[ni]++; o.perNode[ni] == 1 && ni.listIdx >= 0 {
			o.present.set(ni.listIdx, true)
		}
	}
	s.pods[pi.key] = pi
	s.indexPod(pi)
}

// RemovePod forgets a pod (deleted, finished, or an assumption whose binding
// failed). Unknown pods are ignored.
func (s *Snapshot) RemovePod(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removePodLocked(podKey(p))
}

func (s *Snapshot) removePodLocked(key string) {
	pi, ok := s.pods[key]
	if !ok {
		return
	}
	delete(s.pods, key)
	s.unindexPod(pi)
	ni := s.nodes[pi.nodeName]
	ni.removePod(pi)
	s.refreshHot(ni)
	if o := s.owners[pi.owner]; o != nil {
		if o.perNode[ni]--; o.perNode[ni] <= 0 {
			delete(o.perNode, ni)
			if ni.listIdx >= 0 {
				o.present.set(ni.listIdx, false)
			}
		}
		if len(o.perNode) == 0 {
			delete(s.owners, pi.owner)
		}
	}
	if ni.node == nil && len(ni.pods) == 0 {
		delete(s.nodes, ni.name)
	}
}

// SetNamespace records a namespace's labels, which pod affinity terms with a
// namespaceSelector match against. Namespaces never set have no labels.
func (s *Snapshot) SetNamespace(ns *corev1.Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespaces[ns.Name] = ns.Labels
}

// RemoveNamespace forgets a namespace's labels.
func (s *Snapshot) RemoveNamespace(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.namespaces, name)
}

// SetPersistentVolumeClaim records which PV a claim is bound to. Volume
// input is optional: a pod whose claims or volumes the snapshot does not
// know is not constrained by them.
func (s *Snapshot) SetPersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[pvc.Namespace+"/"+pvc.Name] = pvc.Spec.VolumeName
}

// RemovePersistentVolumeClaim forgets a claim.
func (s *Snapshot) RemovePersistentVolumeClaim(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, namespace+"/"+name)
}

// SetPersistentVolume records a PV's required node affinity (a local volume
// lives on one node; a zonal disk in one zone).
func (s *Snapshot) SetPersistentVolume(pv *corev1.PersistentVolume) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sel *nodeSelector
	if na := pv.Spec.NodeAffinity; na != nil {
		sel = compileNodeSelector(na.Required)
	}
	s.volumes[pv.Name] = sel
}

// RemovePersistentVolume forgets a PV.
func (s *Snapshot) RemovePersistentVolume(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.volumes, name)
}

// NodeUsage is what a node offers and what its pods request, for tests,
// debugging and the scheduler's own reports.
type NodeUsage struct {
	Node                        string
	AllocatableMilliCPU         int64
	AllocatableMemory           int64
	AllocatableEphemeralStorage int64
	AllocatablePods             int64
	RequestedMilliCPU           int64
	RequestedMemory             int64
	RequestedEphemeralStorage   int64
	Pods                        int64
}

// Usage returns the usage of a node, and false for an unknown node.
func (s *Snapshot) Usage(node string) (NodeUsage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ni, ok := s.nodes[node]
	if !ok {
		return NodeUsage{}, false
	}
	return NodeUsage{
		Node:                        node,
		AllocatableMilliCPU:         ni.alloc.milliCPU,
		AllocatableMemory:           ni.alloc.memory,
		AllocatableEphemeralStorage: ni.alloc.ephemeral,
		AllocatablePods:             ni.allocPods,
		RequestedMilliCPU:           ni.requested.milliCPU,
		RequestedMemory:             ni.requested.memory,
		RequestedEphemeralStorage:   ni.requested.ephemeral,
		Pods:                        int64(len(ni.pods)),
	}, true
}

// NumNodes returns the number of candidate nodes.
func (s *Snapshot) NumNodes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// NodeOf returns the node a pod is bound or assumed to.
func (s *Snapshot) NodeOf(namespace, name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi, ok := s.pods[namespace+"/"+name]
	if !ok {
		return "", false
	}
	return pi.nodeName, true
}

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
	// order; the scheduler walks it round-robin.
	list []*nodeInfo
	pods map[string]*podInfo

	// Indexes of the few pods whose terms involve other pods, so a cycle
	// visits only them: existing pods' required anti-affinity must be
	// checked against every incoming pod, and their preferred terms count
	// (symmetrically) in the incoming pod's affinity score.
	antiAffinityPods map[string]*podInfo
	preferredPods    map[string]*podInfo

	// owners interns controller uids as small integers, so that counting a
	// node's pods per owner is a scan of a few int32 pairs, not a map of
	// 36-byte strings. Entries are reference-counted and their ids reused.
	owners     map[types.UID]*ownerEntry
	freeOwners []int32
	nextOwner  int32

	namespaces map[string]map[string]string // namespace → labels
	claims     map[string]string            // namespace/claim → bound PV name ("" unbound)
	volumes    map[string]*nodeSelector     // PV name → compiled required node affinity
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		nodes:            make(map[string]*nodeInfo),
		pods:             make(map[string]*podInfo),
		antiAffinityPods: make(map[string]*podInfo),
		preferredPods:    make(map[string]*podInfo),
		owners:           make(map[types.UID]*ownerEntry),
		namespaces:       make(map[string]map[string]string),
		claims:           make(map[string]string),
		volumes:          make(map[string]*nodeSelector),
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
	owners     []ownerCount
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
	if pi.ownerID != 0 {
		for i := range ni.owners {
			if ni.owners[i].id == pi.ownerID {
				ni.owners[i].n++
				return
			}
		}
		ni.owners = append(ni.owners, ownerCount{id: pi.ownerID, n: 1})
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
	if pi.ownerID != 0 {
		for i := range ni.owners {
			if ni.owners[i].id == pi.ownerID {
				if ni.owners[i].n--; ni.owners[i].n == 0 {
					ni.owners[i] = ni.owners[len(ni.owners)-1]
					ni.owners = ni.owners[:len(ni.owners)-1]
				}
				return
			}
		}
	}
}

// ownerCount is how many of a node's pods one owner (by interned id) has.
type ownerCount struct{ id, n int32 }

// ownerPods returns how many pods of owner id the node holds.
func (ni *nodeInfo) ownerPods(id int32) int32 {
	for i := range ni.owners {
		if ni.owners[i].id == id {
			return ni.owners[i].n
		}
	}
	return 0
}

type ownerEntry struct {
	id   int32
	refs int
}

func (s *Snapshot) acquireOwner(uid types.UID) int32 {
	if e, ok := s.owners[uid]; ok {
		e.refs++
		return e.id
	}
	var id int32
	if n := len(s.freeOwners); n > 0 {
		id, s.freeOwners = s.freeOwners[n-1], s.freeOwners[:n-1]
	} else {
		s.nextOwner++
		id = s.nextOwner
	}
	s.owners[uid] = &ownerEntry{id: id, refs: 1}
	return id
}

func (s *Snapshot) releaseOwner(uid types.UID) {
	e, ok := s.owners[uid]
	if !ok {
		return
	}
	if e.refs--; e.refs == 0 {
		delete(s.owners, uid)
		s.freeOwners = append(s.freeOwners, e.id)
	}
}

// ownerID returns the interned id of uid, 0 if no pod of the snapshot has
// that owner.
func (s *Snapshot) ownerID(uid types.UID) int32 {
	if e, ok := s.owners[uid]; ok {
		return e.id
	}
	return 0
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
	ni.setNode(n)
	if ni.listIdx < 0 {
		ni.listIdx = len(s.list)
		s.list = append(s.list, ni)
	}
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
		last := len(s.list) - 1
		moved := s.list[last]
		s.list[ni.listIdx] = moved
		moved.listIdx = ni.listIdx
		s.list[last] = nil
		s.list = s.list[:last]
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
	if pi.owner != "" {
		pi.ownerID = s.acquireOwner(pi.owner)
	}
	ni.addPod(pi)
	s.pods[pi.key] = pi
	if len(pi.requiredAntiAffinity) > 0 {
		s.antiAffinityPods[pi.key] = pi
	}
	if len(pi.preferredAffinity)+len(pi.preferredAnti) > 0 {
		s.preferredPods[pi.key] = pi
	}
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
	delete(s.antiAffinityPods, key)
	delete(s.preferredPods, key)
	ni := s.nodes[pi.nodeName]
	ni.removePod(pi)
	if pi.owner != "" {
		s.releaseOwner(pi.owner)
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

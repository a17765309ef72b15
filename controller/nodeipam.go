package controller

// The node IPAM controller gives every Node a pod CIDR, as Kubernetes'
// kube-controller-manager does with --allocate-node-cidrs: agents register
// their Node without spec.podCIDR and wait for it. Allocation lives in the
// control plane, on the leader, because agents picking ranges for
// themselves raced: two agents registering at the same moment listed the
// same Nodes and took the same /24.
//
// State. The allocations are the Node objects themselves (spec.podCIDR and
// spec.podCIDRs); nothing else is stored, so a new leader's controller
// starts from its Node cache and continues. A Node that brings its own
// CIDR (`skiff agent --pod-cidr`) keeps it, inside the cluster range or
// outside, and that range is never handed to another Node; a Node whose
// own CIDR overlaps an earlier Node's (creation time, then name) gets a
// Warning event CIDRNotAvailable and is left as it is.
//
// Why two allocations do not collide. Allocations are serialised by one
// mutex per controller: pick the lowest range that overlaps no Node in the
// cache and none of the ranges this controller has chosen but its cache
// may not show yet (assigned), record it in assigned, then write the Node
// with its freshly read resourceVersion as precondition (a Conflict
// re-reads and retries). A controller of a new leader starts from an
// informer whose first list is linearizable, so it sees every allocation
// committed before it started. The limit, as in Kubernetes: a deposed
// leader keeps its duties until its next leadership check (200ms by
// default), and an allocation it commits in that window reaches the new
// controller through its watch, not through a shared lock.
//
// A deleted Node's range is free again as soon as the cache shows the
// deletion; Nodes still waiting for a range are then reconciled again.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Defaults of NodeIPAMOptions, as kube-controller-manager's.
const (
	DefaultClusterCIDR      = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize = 24
)

// Event reasons of the node IPAM controller (Kubernetes' own words).
const (
	ReasonCIDRNotAvailable     = "CIDRNotAvailable"
	ReasonCIDRAssignmentFailed = "CIDRAssignmentFailed"
)

// ErrInvalidNodeIPAM: the cluster CIDR or the node mask size make no sense.
var ErrInvalidNodeIPAM = errors.New("invalid node IPAM settings")

// NodeIPAMOptions say where Node pod CIDRs come from.
type NodeIPAMOptions struct {
	// ClusterCIDR is the IPv4 range node pod CIDRs are carved from
	// (`skiff server --cluster-cidr`; default 10.244.0.0/16).
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each Node's range
	// (`--node-cidr-mask-size`; default 24).
	NodeCIDRMaskSize int
}

// withDefaults fills zero fields.
func (o NodeIPAMOptions) withDefaults() NodeIPAMOptions {
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = DefaultClusterCIDR
	}
	if o.NodeCIDRMaskSize == 0 {
		o.NodeCIDRMaskSize = DefaultNodeCIDRMaskSize
	}
	return o
}

// Validate checks the options (zero fields take the defaults): an IPv4
// cluster CIDR, and a mask size from the cluster's own up to /30 and at
// most 16 bits longer (65536 ranges), as Kubernetes requires.
func (o NodeIPAMOptions) Validate() error {
	_, _, err := o.parse()
	return err
}

func (o NodeIPAMOptions) parse() (netip.Prefix, int, error) {
	o = o.withDefaults()
	p, err := netip.ParsePrefix(o.ClusterCIDR)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, 0, fmt.Errorf("%w: --cluster-cidr %q: want an IPv4 CIDR such as %s", ErrInvalidNodeIPAM, o.ClusterCIDR, DefaultClusterCIDR)
	}
	if p != p.Masked() {
		return netip.Prefix{}, 0, fmt.Errorf("%w: --cluster-cidr %q has host bits set (did you mean %s?)", ErrInvalidNodeIPAM, o.ClusterCIDR, p.Masked())
	}
	m := o.NodeCIDRMaskSize
	switch {
	case m < p.Bits() || m > 30:
		return netip.Prefix{}, 0, fmt.Errorf("%w: --node-cidr-mask-size %d must be between the --cluster-cidr's /%d and 30", ErrInvalidNodeIPAM, m, p.Bits())
	case m-p.Bits() > 16:
		return netip.Prefix{}, 0, fmt.Errorf("%w: --node-cidr-mask-size %d is more than 16 bits longer than --cluster-cidr %s (at most 65536 node ranges)", ErrInvalidNodeIPAM, m, p)
	}
	return p, m, nil
}

// nodeIPAMClient is what the controller needs of the cluster: an uncached
// Get of the Node to write, and Update.
type nodeIPAMClient interface {
	Get(ctx context.Context, namespace, name string, obj runtime.Object) error
	Update(ctx context.Context, obj runtime.Object) error
}

// NodeIPAMController assigns pod CIDRs to Nodes. Keys are Node names.
type NodeIPAMController struct {
	nodes   Cache
	c       nodeIPAMClient
	cluster netip.Prefix
	mask    int
	events  EventRecorder
	log     *slog.Logger
	// Retry: how soon a Node left without a range (the cluster range is
	// full) is tried again even if no Node goes away.
	Retry time.Duration

	mu sync.Mutex // held across pick, record and write: one allocation at a time
	// assigned: ranges this controller chose, by Node name, until its
	// cache shows that Node with a range (or without the Node).
	assigned map[string]netip.Prefix
}

// NewNodeIPAMController returns the controller over a Node cache. Options
// must be valid (Validate).
func NewNodeIPAMController(nodes Cache, c nodeIPAMClient, opts NodeIPAMOptions, log *slog.Logger) (*NodeIPAMController, error) {
	cluster, mask, err := opts.parse()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = discardLogger()
	}
	return &NodeIPAMController{nodes: nodes, c: c, cluster: cluster, mask: mask, events: noEvents{}, log: log,
		Retry: 30 * time.Second, assigned: map[string]netip.Prefix{}}, nil
}

// Name implements Reconciler.
func (ic *NodeIPAMController) Name() string { return "nodeipam" }

// register enqueues Nodes on every change; a deletion also enqueues the
// Nodes still waiting for a range, since one may be free now.
func (ic *NodeIPAMController) register(q *client.Queue[string], nodes *client.Informer) {
	h := keyHandler(q, selfKey)
	onDelete := h.OnDelete
	h.OnDelete = func(obj runtime.Object) {
		onDelete(obj)
		for _, o := range nodes.List(nil) {
			if n := o.(*corev1.Node); len(nodeCIDRs(n)) == 0 {
				q.Add(n.Name)
			}
		}
	}
	nodes.AddHandler(h)
}

// Reconcile implements Reconciler.
func (ic *NodeIPAMController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok := ic.nodes.Get(key)
	if !ok {
		ic.forget(key)
		return Result{}, nil
	}
	n := obj.(*corev1.Node)
	if own := nodeCIDRs(n); len(own) > 0 {
		ic.forget(key)
		ic.checkOverlap(n, own)
		return Result{}, nil
	}
	return ic.allocate(ctx, n.Name)
}

func (ic *NodeIPAMController) forget(name string) {
	ic.mu.Lock()
	delete(ic.assigned, name)
	ic.mu.Unlock()
}

// checkOverlap warns about a Node whose range overlaps the range of a Node
// that came first.
func (ic *NodeIPAMController) checkOverlap(n *corev1.Node, own []netip.Prefix) {
	for _, o := range ic.nodes.List(nil) {
		m := o.(*corev1.Node)
		if m.Name == n.Name || !nodeBefore(m, n) {
			continue
		}
		for _, p := range own {
			for _, q := range nodeCIDRs(m) {
				if p.Overlaps(q) {
					ic.events.Event(n, corev1.EventTypeWarning, ReasonCIDRNotAvailable,
						fmt.Sprintf("Node %s status is now: CIDRNotAvailable (its pod CIDR %s overlaps %s of node %s; left unchanged)", n.Name, p, q, m.Name))
					ic.log.Warn("node pod CIDR overlaps another node's", "node", n.Name, "podCIDR", p, "other", m.Name, "otherCIDR", q,
						"resourceVersion", n.ResourceVersion)
					return
				}
			}
		}
	}
}

// nodeBefore orders Nodes by creation, then name: the first holder of a
// range keeps it.
func nodeBefore(a, b *corev1.Node) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// allocateTimeout bounds the read and the write of one allocation.
const allocateTimeout = 15 * time.Second

// allocate gives Node name the lowest free range and writes it.
func (ic *NodeIPAMController) allocate(ctx context.Context, name string) (Result, error) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	used := ic.usedExcept(name)
	p, ok := ic.assigned[name]
	if ok && overlapsAny(p, used) {
		// Taken meanwhile by a Node that brought its own: choose again.
		delete(ic.assigned, name)
		ok = false
	}
	if !ok {
		if p, ok = firstFree(ic.cluster, ic.mask, used); !ok {
			obj, _ := ic.nodes.Get(name)
			if n, isNode := obj.(*corev1.Node); isNode {
				ic.events.Event(n, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed,
					fmt.Sprintf("Node %s status is now: CIDRAssignmentFailed (no free /%d left in the cluster CIDR %s; see skiff server --cluster-cidr and --node-cidr-mask-size)",
						name, ic.mask, ic.cluster))
			}
			ic.log.Warn("no free pod CIDR for node", "node", name, "clusterCIDR", ic.cluster, "maskSize", ic.mask)
			return Result{RequeueAfter: ic.Retry}, nil
		}
		// Recorded before the write: a write whose outcome is unknown
		// (a timeout) is retried with the same range.
		ic.assigned[name] = p
	}
	// The mutex is held across these calls: bound them, so that one stuck
	// request does not stop every other allocation.
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	n := &corev1.Node{}
	if err := ic.c.Get(ctx, "", name, n); err != nil {
		if client.IsNotFound(err) {
			delete(ic.assigned, name)
			return Result{}, nil
		}
		return Result{}, err
	}
	if len(nodeCIDRs(n)) > 0 {
		// Set meanwhile (by its agent, or by us with the cache behind):
		// the update event reconciles it.
		return Result{}, nil
	}
	n.Spec.PodCIDR, n.Spec.PodCIDRs = p.String(), []string{p.String()}
	if err := ic.c.Update(ctx, n); err != nil {
		if client.IsConflict(err) || client.IsNotFound(err) || client.ReasonOf(err) == client.ReasonInvalid {
			// Definitely not written: the retry re-reads the Node.
			delete(ic.assigned, name)
		}
		return Result{}, fmt.Errorf("assigning pod CIDR %s to node %s: %w", p, name, err)
	}
	ic.log.Info("pod CIDR assigned", "node", name, "podCIDR", p, "resourceVersion", n.ResourceVersion)
	return Result{}, nil
}

// usedExcept is every range held by a Node other than name, in the cache
// or chosen by this controller.
func (ic *NodeIPAMController) usedExcept(name string) []netip.Prefix {
	var used []netip.Prefix
	for _, o := range ic.nodes.List(nil) {
		if n := o.(*corev1.Node); n.Name != name {
			used = append(used, nodeCIDRs(n)...)
		}
	}
	for other, p := range ic.assigned {
		if other != name {
			used = append(used, p)
		}
	}
	return used
}

// nodeCIDRs is the Node's pod ranges (spec.podCIDRs, or spec.podCIDR);
// ones that do not parse are left out (validation rejects them anyway).
func nodeCIDRs(n *corev1.Node) []netip.Prefix {
	ss := n.Spec.PodCIDRs
	if len(ss) == 0 && n.Spec.PodCIDR != "" {
		ss = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// firstFree is the lowest /mask of cluster (IPv4) overlapping none of used.
func firstFree(cluster netip.Prefix, mask int, used []netip.Prefix) (netip.Prefix, bool) {
	b4 := cluster.Masked().Addr().As4()
	base := binary.BigEndian.Uint32(b4[:])
	count := uint32(1) << (mask - cluster.Bits())
	step := uint32(1) << (32 - mask)
	for i := uint32(0); i < count; i++ {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+i*step)
		if p := netip.PrefixFrom(netip.AddrFrom4(b), mask); !overlapsAny(p, used) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// nodeIPAMLoops makes the node IPAM controller's loop (Manager.Run).
func (m *Manager) nodeIPAMLoops(inf func(runtime.Object) *client.Informer, rec EventRecorder, log *slog.Logger) []*loop {
	nodes := inf(&corev1.Node{})
	if nodes == nil {
		return nil // Run reports the informer error
	}
	ic, err := NewNodeIPAMController(nodes, m.c, m.opts.NodeIPAM, log.With("controller", "nodeipam"))
	if err != nil {
		// The control plane validates the options at start; reaching here
		// means a caller skipped that.
		log.Error("node IPAM controller not started", "err", err)
		return nil
	}
	ic.events = rec
	l := newLoop(ic, log)
	ic.register(l.queue, nodes)
	return []*loop{l}
}

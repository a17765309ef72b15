package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// NodeHealth is an optional fast signal of node liveness, such as
// gossip.Pool: it tells the node lifecycle controller within seconds that
// a node is gone instead of letting it wait out the grace period. It is a
// hint: the controller acts on it only when the store agrees — the node
// did not answer a ping through its Lease within HealthPingTimeout, or its
// heartbeat is overdue by HealthConfirmAge — and records its decision in
// the store.
type NodeHealth interface {
	// NodeDown reports whether the source holds the node dead, and since
	// when (the controller's clock). Safe for concurrent use.
	NodeDown(node string) (down bool, since time.Time)
	// OnChange registers fn, called with the name of a node whose health
	// changed, from the source's goroutine: fn must not block. stop
	// unregisters it.
	OnChange(fn func(node string)) (stop func())
}

// NodeSuspicion is an optional capability of a NodeHealth source: whether
// it suspects a node (gossip: a probe of it failed) before it holds it
// dead. The controller pings a suspect node's Lease at once, so the
// store's answer is in by the time the suspicion ends in death.
type NodeSuspicion interface {
	NodeSuspect(node string) bool
}

// NodeLifecycleOptions tune the node lifecycle controller.
type NodeLifecycleOptions struct {
	// GracePeriod: a node whose last sign of life (the later of its Ready
	// condition's lastHeartbeatTime and its kube-node-lease Lease's
	// renewTime) is older is marked Ready=Unknown (default 40s).
	GracePeriod time.Duration
	// PodEvictionTimeout: how long a pod that has no toleration of the
	// not-ready or unreachable taint stays on such a node (default 300s).
	// Pods normally carry their own tolerations (the API server's
	// DefaultTolerationSeconds admission adds them), which win.
	PodEvictionTimeout time.Duration
	// Health, optional: a faster signal than heartbeats (gossip).
	Health NodeHealth
	// HealthConfirmAge: a node Health reports dead is marked unreachable
	// once its last heartbeat is at least this old, the store's
	// confirmation of one server's gossip view (a node cut off from
	// gossip alone keeps heartbeating, and is left alone). It is the rule
	// for a node without a Lease to ping, or one that answered its ping
	// (HealthPingTimeout). Set it a little
	// above the agents' heartbeat interval plus the one-second precision
	// of heartbeat times (default 12s, for the agent's default 10s).
	HealthConfirmAge time.Duration
	// HealthPingTimeout: how long a node that Health suspects or holds
	// dead has to answer a ping (LeasePingAnnotation on its Lease, which
	// its agent renews at once) before the store counts as confirming
	// that it is silent (default 1.5s). Needs Leases and a Writer that is
	// also a Reader; without a Lease the HealthConfirmAge rule applies.
	HealthPingTimeout time.Duration
	// Leases, optional: the Leases of namespace kube-node-lease (keys
	// "kube-node-lease/<node>"). A node's Lease renewal counts as a
	// heartbeat, as in Kubernetes, so agents may write their Node status
	// rarely and renew the small Lease often.
	Leases Cache
}

// Reasons and messages the node lifecycle controller writes.
const (
	ReasonNodeStatusUnknown = "NodeStatusUnknown"
	ReasonNodeNotReady      = "NodeNotReady"
	ReasonTaintEviction     = "TaintManagerEviction"
	msgStaleHeartbeat       = "Kubelet stopped posting node status."
)

// NodeLifecycleController watches node heartbeats. A node whose heartbeat
// is older than the grace period (or that the optional NodeHealth source
// holds dead, and that did not answer a ping through its Lease or whose
// heartbeat is overdue) gets its conditions set to Unknown
// and the node.kubernetes.io/unreachable taint (NoSchedule and
// NoExecute); a node reporting Ready=False gets node.kubernetes.io/not-
// ready instead; a Ready node loses both. Pods on an unreachable node are
// marked not Ready (so they leave their services' endpoints) and every
// pod on a node with NoExecute taints is deleted once it stops tolerating
// them: at once without a toleration of a taint of someone else's, after
// tolerationSeconds with one, never with a toleration without seconds,
// and after PodEvictionTimeout for a pod with no toleration of the two
// taints this controller sets. Their ReplicaSets and StatefulSets then
// replace them on healthy nodes; a node that comes back finishes the
// deletions (its agent stops the pods).
type NodeLifecycleController struct {
	nodes, pods Cache
	leases      Cache // nil without Options.Leases
	w           Writer
	opts        NodeLifecycleOptions
	health      NodeHealth
	now         func() time.Time
	log         *slog.Logger
	events      EventRecorder

	pingMu sync.Mutex
	pings  map[string]*leasePing // by node: this health episode's ping
}

// NewNodeLifecycleController watches nodes (cluster-scoped keys: the node
// name) and evicts from pods.
func NewNodeLifecycleController(nodes, pods Cache, w Writer, opts NodeLifecycleOptions, log *slog.Logger) *NodeLifecycleController {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultNodeMonitorGracePeriod
	}
	if opts.PodEvictionTimeout <= 0 {
		opts.PodEvictionTimeout = DefaultPodEvictionTimeout
	}
	if opts.HealthConfirmAge <= 0 {
		opts.HealthConfirmAge = DefaultNodeHealthConfirmAge
	}
	if opts.HealthPingTimeout <= 0 {
		opts.HealthPingTimeout = DefaultNodeHealthPingTimeout
	}
	if log == nil {
		log = discardLogger()
	}
	return &NodeLifecycleController{nodes: nodes, pods: pods, leases: opts.Leases, w: w, opts: opts, health: opts.Health, now: time.Now, log: log, events: noEvents{},
		pings: map[string]*leasePing{}}
}

// Name is the controller's name.
func (c *NodeLifecycleController) Name() string { return "nodelifecycle" }

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// lastHeartbeat is the node's latest status heartbeat: its Ready
// condition's lastHeartbeatTime, else its creation.
func lastHeartbeat(n *corev1.Node) time.Time {
	if c := nodeCondition(n, corev1.NodeReady); c != nil && !c.LastHeartbeatTime.IsZero() {
		return c.LastHeartbeatTime.Time
	}
	return n.CreationTimestamp.Time
}

// lastSignOfLife is the later of the node's status heartbeat and its
// Lease's renewTime: Kubernetes' kubelet renews the Lease every 10s and
// writes its status only on change or every few minutes.
func (c *NodeLifecycleController) lastSignOfLife(n *corev1.Node) time.Time {
	return laterOf(lastHeartbeat(n), c.leaseRenewal(n.Name))
}

// leaseRenewal is the renewTime of the node's kube-node-lease Lease, zero
// without one (or without a Leases cache).
func (c *NodeLifecycleController) leaseRenewal(node string) time.Time {
	l, ok := c.leaseOf(node)
	if !ok || l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

// leaseOf is the node's Lease in kube-node-lease, from the cache.
func (c *NodeLifecycleController) leaseOf(node string) (*coordinationv1.Lease, bool) {
	if c.leases == nil {
		return nil, false
	}
	o, ok := c.leases.Get(corev1.NamespaceNodeLease + "/" + node)
	if !ok {
		return nil, false
	}
	l, ok := o.(*coordinationv1.Lease)
	return l, ok
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// verdict decides, from how old a Ready node's last sign of life is and
// what the health source says, whether to mark it unreachable now (msg,
// the reason written into its conditions) or when to look again. Gossip
// alone never decides: a node it holds dead is marked only once its last
// sign of life is at least HealthConfirmAge old too.
func (c *NodeLifecycleController) verdict(age time.Duration, down bool, since time.Time) (msg string, recheck time.Duration) {
	switch {
	case age >= c.opts.GracePeriod:
		return msgStaleHeartbeat, 0
	case down && age >= c.opts.HealthConfirmAge:
		return "Node is unreachable: gossip reports it dead since " + since.UTC().Format(time.RFC3339) +
			" and its last heartbeat is " + age.Round(time.Second).String() + " old.", 0
	}
	recheck = c.opts.GracePeriod - age + 10*time.Millisecond
	if down {
		recheck = min(recheck, c.opts.HealthConfirmAge-age+10*time.Millisecond)
	}
	return "", recheck
}

// isOurTaint: the not-ready and unreachable taints this controller owns.
func isOurTaint(key string) bool {
	return key == corev1.TaintNodeNotReady || key == corev1.TaintNodeUnreachable
}

// Reconcile checks one node's heartbeat, sets its condition and taints,
// and evicts the pods that no longer tolerate it.
func (c *NodeLifecycleController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.nodes.Get(key)
	if !ok {
		c.forgetPing(key)
		return Result{}, nil
	}
	node := cached.(*corev1.Node).DeepCopy()
	now := c.now()
	var res Result

	ready := nodeCondition(node, corev1.NodeReady)
	if ready == nil || ready.Status != corev1.ConditionUnknown {
		age := now.Sub(c.lastSignOfLife(node))
		down, since := c.healthDown(node.Name)
		msg, recheck := c.verdict(age, down, since)
		if msg == "" {
			pmsg, wait, err := c.pingVerdict(ctx, node, age, down, since)
			if err != nil {
				return Result{}, err
			}
			msg, recheck = pmsg, minPositive(recheck, wait)
		}
		res.RequeueAfter = recheck
		if msg != "" {
			if err := c.markUnknown(ctx, node, msg, now); err != nil {
				return Result{}, err
			}
			res.RequeueAfter = 0
			ready = nodeCondition(node, corev1.NodeReady)
			c.forgetPing(node.Name)
		}
	}

	if err := c.setTaints(ctx, node, ready, now); err != nil {
		return Result{}, err
	}
	if ready == nil || ready.Status == corev1.ConditionTrue {
		if !hasNoExecute(node) {
			return res, nil
		}
	}
	wait, err := c.handlePods(ctx, node, ready != nil && ready.Status == corev1.ConditionUnknown, now)
	res.RequeueAfter = minPositive(res.RequeueAfter, wait)
	return res, err
}

func (c *NodeLifecycleController) healthDown(node string) (bool, time.Time) {
	if c.health == nil {
		return false, time.Time{}
	}
	return c.health.NodeDown(node)
}

func hasNoExecute(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// markUnknown sets the node's conditions to Unknown (the agent's next
// status write, if it comes, sets them back) and updates node in place.
func (c *NodeLifecycleController) markUnknown(ctx context.Context, node *corev1.Node, msg string, now time.Time) error {
	mnow := metav1.NewTime(now)
	if nodeCondition(node, corev1.NodeReady) == nil {
		node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady})
	}
	for i := range node.Status.Conditions {
		cond := &node.Status.Conditions[i]
		switch cond.Type {
		case corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
		default:
			continue
		}
		if cond.Status != corev1.ConditionUnknown {
			cond.LastTransitionTime = mnow
		}
		cond.Status, cond.Reason, cond.Message = corev1.ConditionUnknown, ReasonNodeStatusUnknown, msg
	}
	if err := c.w.UpdateStatus(ctx, node); err != nil {
		return fmt.Errorf("marking node %s unknown: %w", node.Name, err)
	}
	c.log.Warn("node unreachable", "node", node.Name, "why", msg, "lastHeartbeat", lastHeartbeat(node), "leaseRenewed", c.leaseRenewal(node.Name))
	c.events.Event(node, corev1.EventTypeNormal, ReasonNodeNotReady, "Node "+node.Name+" status is now: NodeNotReady")
	return nil
}

// setTaints makes the node's not-ready/unreachable taints follow its Ready
// condition, keeping the time a taint was first added.
func (c *NodeLifecycleController) setTaints(ctx context.Context, node *corev1.Node, ready *corev1.NodeCondition, now time.Time) error {
	want := ""
	if ready != nil {
		switch ready.Status {
		case corev1.ConditionUnknown:
			want = corev1.TaintNodeUnreachable
		case corev1.ConditionFalse:
			want = corev1.TaintNodeNotReady
		}
	}
	var taints []corev1.Taint
	have := map[corev1.TaintEffect]bool{}
	for _, t := range node.Spec.Taints {
		if isOurTaint(t.Key) && t.Key != want {
			continue
		}
		if t.Key == want {
			have[t.Effect] = true
		}
		taints = append(taints, t)
	}
	if want != "" {
		mnow := metav1.NewTime(now)
		if !have[corev1.TaintEffectNoSchedule] {
			taints = append(taints, corev1.Taint{Key: want, Effect: corev1.TaintEffectNoSchedule})
		}
		if !have[corev1.TaintEffectNoExecute] {
			taints = append(taints, corev1.Taint{Key: want, Effect: corev1.TaintEffectNoExecute, TimeAdded: &mnow})
		}
	}
	if apiequality.Semantic.DeepEqual(taints, node.Spec.Taints) || (len(taints) == 0 && len(node.Spec.Taints) == 0) {
		return nil
	}
	node.Spec.Taints = taints
	if err := c.w.Update(ctx, node); err != nil {
		return fmt.Errorf("tainting node %s: %w", node.Name, err)
	}
	if want == "" {
		c.log.Info("node ready: taints removed", "node", node.Name)
		c.events.Event(node, corev1.EventTypeNormal, "NodeReady", "Node "+node.Name+" status is now: NodeReady")
	} else {
		c.log.Info("node tainted", "node", node.Name, "taint", want)
	}
	return nil
}

// handlePods marks the node's pods not Ready (when it is unreachable) and
// evicts those whose toleration of its NoExecute taints has run out. It
// returns how long until the next eviction is due.
func (c *NodeLifecycleController) handlePods(ctx context.Context, node *corev1.Node, unreachable bool, now time.Time) (time.Duration, error) {
	var errs []error
	var next time.Duration
	var due []*corev1.Pod // fenced pods whose Lease has expired in the cache
	for _, o := range c.pods.List(nil) {
		p := o.(*corev1.Pod)
		if p.Spec.NodeName != node.Name {
			continue
		}
		if p.DeletionTimestamp != nil {
			if unreachable && fenceable(p) {
				at := c.fenceExpiry(node, p)
				if !at.After(now) {
					due = append(due, p)
				} else {
					next = minPositive(next, at.Sub(now))
				}
			}
			continue
		}
		at, evict := c.evictionTime(p, node, now)
		if evict && !at.After(now) {
			errs = append(errs, c.evict(ctx, p, node))
			continue
		}
		if evict {
			next = minPositive(next, at.Sub(now))
		}
		if unreachable && isReady(p) && !isTerminal(p) {
			errs = append(errs, c.markNotReady(ctx, p, now))
		}
	}
	if len(due) > 0 {
		wait, err := c.releaseFenced(ctx, node, due, now)
		next = minPositive(next, wait)
		errs = append(errs, err)
	}
	return next, errors.Join(errs...)
}

// evictionTime is when p must leave node for its NoExecute taints; false
// when it tolerates them all for good.
func (c *NodeLifecycleController) evictionTime(p *corev1.Pod, node *corev1.Node, now time.Time) (time.Time, bool) {
	var at time.Time
	evict := false
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		added := now
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		var when time.Time
		switch tol := toleratedBy(p.Spec.Tolerations, t); {
		case tol == nil && isOurTaint(t.Key):
			when = added.Add(c.opts.PodEvictionTimeout)
		case tol == nil:
			when = added
		case tol.TolerationSeconds == nil:
			continue
		default:
			when = added.Add(time.Duration(max(*tol.TolerationSeconds, 0)) * time.Second)
		}
		if !evict || when.Before(at) {
			at, evict = when, true
		}
	}
	return at, evict
}

func (c *NodeLifecycleController) evict(ctx context.Context, p *corev1.Pod, node *corev1.Node) error {
	_, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(p.UID)})
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("evicting pod %s/%s from node %s: %w", p.Namespace, p.Name, node.Name, err)
	}
	c.log.Info("evicted pod", "pod", p.Namespace+"/"+p.Name, "node", node.Name)
	c.events.Event(p, corev1.EventTypeNormal, ReasonTaintEviction, "Marking for deletion Pod "+p.Namespace+"/"+p.Name)
	return nil
}

// FenceAnnotation marks a pod, like those of StatefulSets, whose identity
// must never run twice: its agent stops it when it cannot renew its Lease
// (agent/node), and this controller deletes it for good only once that
// must have happened.
const FenceAnnotation = api.FenceAnnotation

// fenceable: a pod of a StatefulSet, or one annotated skiff.dev/fence=true.
var fenceable = api.Fenceable

// fenceExpiry is when a fenceable pod evicted from an unreachable node is
// surely stopped there: its agent fences once its Lease is older than the
// Lease's duration, noticing within about two heartbeats (a quarter of
// the duration each, by the kubelet's convention: half a duration in
// all), and the pod then gets its termination grace period. Until then
// the pod stays Terminating, so its StatefulSet does not start its
// identity elsewhere. Without a Lease, the grace period stands for its
// duration. Times are the agent's (renewTime) against this server's
// clock: clock skew between them eats into the margin.
func (c *NodeLifecycleController) fenceExpiry(node *corev1.Node, p *corev1.Pod) time.Time {
	l, _ := c.leaseOf(node.Name)
	return c.fenceExpiryWith(node, l, p)
}

// fenceExpiryWith is fenceExpiry judged on lease (nil: none), the cached
// one or one just read from the API.
func (c *NodeLifecycleController) fenceExpiryWith(node *corev1.Node, lease *coordinationv1.Lease, p *corev1.Pod) time.Time {
	dur := c.opts.GracePeriod
	last := lastHeartbeat(node)
	if lease != nil {
		if lease.Spec.LeaseDurationSeconds != nil && *lease.Spec.LeaseDurationSeconds > 0 {
			dur = time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
		}
		if lease.Spec.RenewTime != nil {
			last = laterOf(last, lease.Spec.RenewTime.Time)
		}
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if p.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(max(*p.Spec.TerminationGracePeriodSeconds, 0)) * time.Second
	}
	return last.Add(dur + dur/2 + grace)
}

// LeaseRevokedAnnotation, on a node's Lease, is the fencing token's
// revocation: this controller sets it (to the time, RFC 3339) with a
// compare-and-swap on the resourceVersion of a Lease it has read expired,
// right before it force-deletes the node's fenced pods. The agent
// (agent/node; the name is api's, shared) renews with a
// compare-and-swap too, so either the revocation lands before the
// renewal, and the agent reads it and never runs those pods again, or
// the renewal lands first, the revocation conflicts and nothing is
// deleted. Either way a renewal can never hide a deletion from the agent.
const LeaseRevokedAnnotation = api.LeaseRevokedAnnotation

// ReasonLeaseRevoked is the Node event of a revocation.
const ReasonLeaseRevoked = "NodeLeaseRevoked"

// releaseFencedRetry is when to look again after a revocation lost its
// race with the agent's renewal (or the Lease moved under it).
const releaseFencedRetry = time.Second

// releaseFenced force-deletes the fenced pods of an unreachable node whose
// fence has expired by the cached Lease (due), once the Lease read afresh
// from the API confirms it and has been revoked (LeaseRevokedAnnotation).
// The cache may lag an agent that has just renewed its Lease and
// restarted its pods: the fresh read and the revocation's compare-and-swap
// make sure it has not. It returns when to look again.
func (c *NodeLifecycleController) releaseFenced(ctx context.Context, node *corev1.Node, due []*corev1.Pod, now time.Time) (time.Duration, error) {
	r, ok := c.w.(Reader)
	if !ok || c.leases == nil {
		// No Lease to revoke (no Leases cache, or a writer that cannot
		// read): the time-based fence alone.
		var errs []error
		for _, p := range due {
			errs = append(errs, c.forceDelete(ctx, p, node))
		}
		return 0, errors.Join(errs...)
	}
	lease := &coordinationv1.Lease{}
	err := r.Get(ctx, corev1.NamespaceNodeLease, node.Name, lease)
	switch {
	case client.IsNotFound(err):
		lease = nil
	case err != nil:
		return 0, fmt.Errorf("reading the Lease of unreachable node %s before releasing its fenced pods: %w", node.Name, err)
	}
	var release []*corev1.Pod
	var next time.Duration
	for _, p := range due {
		if at := c.fenceExpiryWith(node, lease, p); at.After(now) {
			next = minPositive(next, at.Sub(now))
			continue
		}
		release = append(release, p)
	}
	if len(release) == 0 {
		c.log.Info("fenced pods kept: the node renewed its Lease (or posted its status) since the cache saw it", "node", node.Name,
			"lastSignOfLife", c.lastSignOfLife(node))
		return next, nil
	}
	if err := c.revokeLease(ctx, node, lease, now); err != nil {
		if client.IsConflict(err) || client.IsNotFound(err) || client.IsAlreadyExists(err) {
			c.log.Info("fenced pods kept: the node's Lease changed under its revocation (renewed?); looking again", "node", node.Name, "err", err)
			return minPositive(next, releaseFencedRetry), nil
		}
		return 0, err
	}
	var errs []error
	for _, p := range release {
		errs = append(errs, c.forceDelete(ctx, p, node))
	}
	return next, errors.Join(errs...)
}

// revokeLease writes LeaseRevokedAnnotation on the node's Lease as read
// (its resourceVersion is the precondition), or creates the Lease revoked
// when there is none (the agent's own creation then fails, and it reads
// the revocation).
func (c *NodeLifecycleController) revokeLease(ctx context.Context, node *corev1.Node, lease *coordinationv1.Lease, now time.Time) error {
	at := now.UTC().Format(time.RFC3339Nano)
	var err error
	if lease == nil {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: node.Name,
			Annotations: map[string]string{LeaseRevokedAnnotation: at}}}
		if node.UID != "" {
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		err = c.w.Create(ctx, lease)
	} else {
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[LeaseRevokedAnnotation] = at
		err = c.w.Update(ctx, lease)
	}
	if err != nil {
		return fmt.Errorf("revoking the Lease of unreachable node %s: %w", node.Name, err)
	}
	renewed := time.Time{}
	if lease.Spec.RenewTime != nil {
		renewed = lease.Spec.RenewTime.Time
	}
	c.log.Warn("node lease revoked: its fenced pods may now run elsewhere", "node", node.Name, "leaseRenewed", renewed,
		"revision", lease.ResourceVersion)
	c.events.Event(node, corev1.EventTypeWarning, ReasonLeaseRevoked, "Lease of node "+node.Name+" (last renewed "+
		renewed.UTC().Format(time.RFC3339)+") revoked: its StatefulSet and fenced pods are deleted and may run elsewhere; the agent must not run them again")
	return nil
}

// forceDelete removes a pod whose node is gone and whose agent has
// stopped it (fenceExpiry), without waiting for that agent: only after
// releaseFenced has revoked the node's Lease.
func (c *NodeLifecycleController) forceDelete(ctx context.Context, p *corev1.Pod, node *corev1.Node) error {
	zero := int64(0)
	_, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{GracePeriodSeconds: &zero, PreconditionUID: string(p.UID)})
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("deleting fenced pod %s/%s of unreachable node %s: %w", p.Namespace, p.Name, node.Name, err)
	}
	c.log.Info("deleted fenced pod of an unreachable node: its lease has expired", "pod", p.Namespace+"/"+p.Name, "node", node.Name)
	return nil
}

func (c *NodeLifecycleController) markNotReady(ctx context.Context, cached *corev1.Pod, now time.Time) error {
	p := cached.DeepCopy()
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].Reason = ReasonNodeStatusUnknown
			p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		}
	}
	if err := c.w.UpdateStatus(ctx, p); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("marking pod %s/%s not ready: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// register hooks the controller to its informers. Lease renewals enqueue
// nothing: they only push a node's deadline back, and the requeue set by
// the last reconcile reads the Lease afresh when it comes.
func (c *NodeLifecycleController) register(q *client.Queue[string], nodes, pods *client.Informer) {
	nodes.AddHandler(keyHandler(q, selfKey))
	// A pod landing on (or changing on) a tainted or unready node may need
	// evicting or marking.
	pods.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return nil
		}
		o, ok := nodes.Get(p.Spec.NodeName)
		if !ok {
			return nil
		}
		n := o.(*corev1.Node)
		if r := nodeCondition(n, corev1.NodeReady); hasNoExecute(n) || (r != nil && r.Status != corev1.ConditionTrue) {
			return []string{n.Name}
		}
		return nil
	}))
}

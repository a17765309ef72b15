package node

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// Defaults of the node heartbeat, Kubernetes' kubelet's: the Lease is
// renewed every HeartbeatInterval (10s) and lasts 40s; the Node status is
// written when it changes, when the control plane has marked the node not
// Ready, and at least every NodeStatusReportInterval.
const (
	DefaultLeaseDuration            = 40 * time.Second
	DefaultNodeStatusReportInterval = time.Minute
)

// leaseDuration and statusReportInterval are the configured values or
// their defaults.
func (c Config) leaseDuration() time.Duration {
	if c.LeaseDuration > 0 {
		return c.LeaseDuration
	}
	return DefaultLeaseDuration
}

func (c Config) statusReportInterval() time.Duration {
	if c.NodeStatusReportInterval > 0 {
		return c.NodeStatusReportInterval
	}
	return DefaultNodeStatusReportInterval
}

// validateHeartbeat checks the Lease settings against the heartbeat: a
// Lease that expires before its next renewal would make every node look
// dead between two renewals.
func (c Config) validateHeartbeat() error {
	switch d := c.leaseDuration(); {
	case c.LeaseDuration < 0 || c.NodeStatusReportInterval < 0:
		return fmt.Errorf("lease duration %v and node status report interval %v must not be negative", c.LeaseDuration, c.NodeStatusReportInterval)
	case d%time.Second != 0:
		return fmt.Errorf("lease duration %v must be whole seconds (leaseDurationSeconds)", d)
	case d <= c.HeartbeatInterval:
		return fmt.Errorf("lease duration %v must be longer than the heartbeat interval %v that renews it", d, c.HeartbeatInterval)
	case c.statusReportInterval() < c.HeartbeatInterval:
		return fmt.Errorf("node status report interval %v is shorter than the heartbeat interval %v", c.statusReportInterval(), c.HeartbeatInterval)
	}
	return nil
}

// heartbeatTick is one beat of the heartbeat loop: renew the Lease, then
// write the Node status if it is due. A failed renewal does not skip the
// status: either one keeps the node alive in the controller's eyes.
func (a *Agent) heartbeatTick(ctx context.Context) error {
	leaseErr := a.renewLease(ctx)
	if leaseErr == nil && a.pruneDue() {
		// Forget the revoked pods the API no longer has.
		if err := a.settleFencedPods(ctx); err != nil {
			a.log.Debug("pruning revoked pods", "err", err)
		}
	}
	a.checkFence()
	if leaseErr != nil {
		leaseErr = fmt.Errorf("renewing lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.Name, leaseErr)
	}
	due, why := a.nodeStatusDue(ctx)
	if !due {
		return leaseErr
	}
	a.log.Debug("writing node status", "why", why)
	if err := a.heartbeat(ctx); err != nil {
		if leaseErr != nil {
			return fmt.Errorf("%w; node status: %w", leaseErr, err)
		}
		return err
	}
	return leaseErr
}

// renewLease creates or renews the node's Lease in kube-node-lease, owned
// by its Node (so deleting the Node deletes it), as the kubelet does. It
// keeps the last Lease it wrote and updates that (one write per renewal):
// every renewal is a compare-and-swap on that Lease's resourceVersion, so
// a revocation by the node lifecycle controller (LeaseRevokedAnnotation)
// makes it conflict; the Lease is then read afresh (at most
// renewAttempts times per beat), the revocation honoured and cleared. A
// ping (LeasePingAnnotation) is cleared by any renewal: the renewal is
// its answer.
func (a *Agent) renewLease(ctx context.Context) error {
	a.hb.renewMu.Lock()
	defer a.hb.renewMu.Unlock()
	return a.renewLeaseLocked(ctx)
}

// renewLeaseLocked is renewLease with hb.renewMu held: the heartbeat and
// the answers to pings (answerPings) renew one at a time, so that the
// renewals land in the order of their renewTimes.
func (a *Agent) renewLeaseLocked(ctx context.Context) error {
	secs := int32(a.cfg.leaseDuration() / time.Second)
	a.hb.leaseMu.Lock()
	cached := a.hb.lease
	a.hb.leaseMu.Unlock()

	var lastErr error
	for range renewAttempts {
		now := metav1.NowMicro()
		var l *coordinationv1.Lease
		if cached != nil {
			l = cached.DeepCopy()
		} else {
			l = &coordinationv1.Lease{}
			err := a.cfg.Client.Get(ctx, corev1.NamespaceNodeLease, a.cfg.Name, l)
			switch {
			case client.IsNotFound(err):
				l = &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: a.cfg.Name},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: &a.cfg.Name, LeaseDurationSeconds: &secs,
						AcquireTime: &now, RenewTime: &now},
				}
				if a.nodeUID != "" {
					l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.cfg.Name, UID: a.nodeUID}}
				}
				err = a.cfg.Client.Create(ctx, l)
				if client.IsAlreadyExists(err) {
					lastErr = err // created meanwhile (revoked by the controller?): read it
					continue
				}
				if err != nil {
					return err
				}
				return a.leaseRenewed(ctx, l, now)
			case err != nil:
				return err
			}
		}
		if at := l.Annotations[LeaseRevokedAnnotation]; at != "" {
			if err := a.honourRevocation(ctx, l, at); err != nil {
				a.setLease(nil, metav1.MicroTime{})
				return err
			}
			delete(l.Annotations, LeaseRevokedAnnotation)
		}
		// Any renewal answers a pending ping (LeasePingAnnotation).
		delete(l.Annotations, LeasePingAnnotation)
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &a.cfg.Name, &secs, &now
		err := a.cfg.Client.Update(ctx, l)
		if client.IsConflict(err) || client.IsNotFound(err) {
			cached, lastErr = nil, err
			continue
		}
		if err != nil {
			a.setLease(nil, metav1.MicroTime{})
			return err
		}
		return a.leaseRenewed(ctx, l, now)
	}
	a.setLease(nil, metav1.MicroTime{})
	return lastErr
}

// renewAttempts bounds the reads and writes of one renewal: a conflict
// (someone else wrote the Lease: the controller's revocation) is followed
// by a fresh read and another try at once rather than a heartbeat later.
const renewAttempts = 3

// leaseRenewed records a successful renewal (or creation) of l at now.
// When the agent was fenced, it first reads the pods bound to it from the
// API (settleFencedPods): its informer may not have seen yet the
// deletions the control plane made while the node was cut off, and the
// fenced pods must not restart on that stale view. Until that read
// succeeds the agent stays fenced (the next beat tries again).
func (a *Agent) leaseRenewed(ctx context.Context, l *coordinationv1.Lease, now metav1.MicroTime) error {
	a.hb.leaseMu.Lock()
	wasFenced := a.hb.fenced || a.fencedLocked(time.Now())
	a.hb.lease = l // the base of the next compare-and-swap, whatever follows
	a.hb.leaseMu.Unlock()
	if wasFenced {
		if err := a.settleFencedPods(ctx); err != nil {
			return fmt.Errorf("lease renewed, but the fenced pods stay stopped until the pods bound to the node are read: %w", err)
		}
	}
	a.setLease(l, now)
	return nil
}

func (a *Agent) setLease(l *coordinationv1.Lease, renewed metav1.MicroTime) {
	a.hb.leaseMu.Lock()
	defer a.hb.leaseMu.Unlock()
	a.hb.lease = l
	if l != nil {
		a.hb.leaseRenewed = renewed.Time
	}
}

// LeaseRenewed is when the agent last renewed its Lease (zero before the
// first renewal).
func (a *Agent) LeaseRenewed() time.Time {
	a.hb.leaseMu.Lock()
	defer a.hb.leaseMu.Unlock()
	return a.hb.leaseRenewed
}

// nodeStatusDue reports whether the Node status must be written now, and
// why: the report interval has passed since the last write; the node's
// measured status changed (conditions, capacity, addresses, images...);
// or the Node in the API is not Ready — the node lifecycle controller
// marked it Unknown while this agent could not reach the control plane
// (the Lease alone does not clear that), or someone deleted it.
func (a *Agent) nodeStatusDue(ctx context.Context) (bool, string) {
	a.mu.Lock()
	prev := a.lastNodeStatus
	a.mu.Unlock()
	last := time.Time{}
	for _, c := range prev.Conditions {
		if c.Type == corev1.NodeReady {
			last = c.LastHeartbeatTime.Time
		}
	}
	if time.Since(last) >= a.cfg.statusReportInterval() {
		return true, "report interval"
	}
	now, err := a.nodeStatus(ctx, prev)
	if err != nil || nodeStatusChanged(prev, now) {
		return true, "status changed"
	}
	var n corev1.Node
	if err := a.cfg.Client.Get(ctx, "", a.cfg.Name, &n); err != nil {
		return true, "node not read: " + err.Error()
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return false, ""
		}
	}
	return true, "node not Ready in the API"
}

// nodeStatusChanged compares two measured statuses, heartbeat times aside.
func nodeStatusChanged(a, b corev1.NodeStatus) bool {
	strip := func(s corev1.NodeStatus) corev1.NodeStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return !apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// FenceAnnotation, set to "true" on a pod, makes the agent stop it while
// it cannot renew its Lease, as it does StatefulSet pods (api.Fenceable).
const FenceAnnotation = api.FenceAnnotation

// Fenced reports whether the agent has not renewed its Lease for longer
// than the Lease's duration: the control plane may by now hold the node
// dead and run its pods' identities elsewhere, so fenceable pods must not
// run here. The clock starts at the renewal's own renewTime (taken before
// the request), never at its answer, so the agent stops no later than the
// Lease it last wrote expires.
func (a *Agent) Fenced() bool {
	a.hb.leaseMu.Lock()
	defer a.hb.leaseMu.Unlock()
	return a.fencedLocked(time.Now())
}

func (a *Agent) fencedLocked(now time.Time) bool {
	return !a.hb.leaseRenewed.IsZero() && now.Sub(a.hb.leaseRenewed) > a.cfg.leaseDuration()
}

// checkFence logs a change of the fence and kicks a pod sync so that the
// fenceable pods stop (or start again) at once.
func (a *Agent) checkFence() {
	a.hb.leaseMu.Lock()
	if a.hb.leaseRenewed.IsZero() {
		// The first renewal failed: the clock starts now, right after the
		// registration proved the control plane reachable.
		a.hb.leaseRenewed = time.Now()
	}
	fenced := a.fencedLocked(time.Now())
	changed := fenced != a.hb.fenced
	a.hb.fenced = fenced
	since := a.hb.leaseRenewed
	a.hb.leaseMu.Unlock()
	if !changed {
		return
	}
	if fenced {
		a.log.Warn("lease not renewed for longer than its duration: stopping StatefulSet and fenced pods", "lastRenewal", since,
			"leaseDuration", a.cfg.leaseDuration())
	} else {
		a.log.Info("lease renewed again: fenced pods may run")
	}
	a.kick()
}

// LeaseRevokedAnnotation, on the node's Lease, is the node lifecycle
// controller's revocation of the agent's fencing token (the controller
// package defines it too: the agent does not import it). The controller
// writes it with a compare-and-swap on a Lease it has read expired, just
// before it force-deletes the node's fenced pods so that their
// StatefulSets start them elsewhere; the agent's renewals are
// compare-and-swaps too, so it cannot renew past a revocation without
// reading it. Reading it, the agent revokes the fenceable pods it knows
// that the API has deleted or is deleting (settleFencedPods), then renews,
// clearing it. A renewal that succeeds without one means the controller
// deleted nothing behind the agent's back this round: its own
// compare-and-swap fails from then on.
const LeaseRevokedAnnotation = api.LeaseRevokedAnnotation

// fenceState is the set of revoked pods: fenceable pods that the API has
// deleted or is deleting while this agent's informer may still show them
// as they were. They never run again here (syncPods); a replacement pod
// has a new UID and runs normally. An entry goes once the pod is gone
// from the API and the informer has processed its deletion: the informer
// has had it and no longer has (its events come in order and a UID is
// never reused), or the informer is at least at the revision of a List
// without it.
type fenceState struct {
	mu          sync.Mutex
	revoked     map[types.UID]*revokedPod
	lastSettled time.Time // of the last settleFencedPods that succeeded
}

type revokedPod struct {
	name   string // namespace/name, for the log
	cached bool   // the informer has had it since it was revoked
}

// revokedPruneInterval is how often the heartbeat re-reads the node's
// pods to forget the revoked ones that are gone (only while there are).
const revokedPruneInterval = time.Minute

// mayRun reports whether syncPods may hand p, bound to this node, to the
// workers: not a fenceable pod while the node is fenced, nor a revoked
// pod the informer still shows alive (once it shows the deletion, the
// pod goes to the workers as a deletion, so that it is finished).
func (a *Agent) mayRun(p *corev1.Pod, fenced bool) bool {
	if fenced && api.Fenceable(p) {
		return false
	}
	return p.DeletionTimestamp != nil || !a.revoked(p.UID)
}

// revoked reports whether the pod of that UID must never run here again.
func (a *Agent) revoked(uid types.UID) bool {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	_, ok := a.fence.revoked[uid]
	return ok
}

func (a *Agent) hasRevoked() bool {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	return len(a.fence.revoked) > 0
}

// pruneDue: there are revoked pods, and the last settleFencedPods is
// older than revokedPruneInterval.
func (a *Agent) pruneDue() bool {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	return len(a.fence.revoked) > 0 && time.Since(a.fence.lastSettled) >= revokedPruneInterval
}

// honourRevocation handles a Lease the controller revoked at at: the
// fenceable pods the agent knows that are deleted or being deleted in
// the API are revoked before the renewal clears the annotation.
func (a *Agent) honourRevocation(ctx context.Context, l *coordinationv1.Lease, at string) error {
	a.log.Warn("lease revoked by the control plane: its deleted StatefulSet and fenced pods will not run here again",
		"revokedAt", at, "revision", l.ResourceVersion)
	if err := a.settleFencedPods(ctx); err != nil {
		return fmt.Errorf("lease %s/%s revoked at %s: reading the pods bound to the node: %w", l.Namespace, l.Name, at, err)
	}
	return nil
}

// settleFencedPods reads the pods bound to this node from the API (a
// linearizable List, never the informer's cache, which lags after a
// partition) and revokes every fenceable pod, known to the informer or
// listed, that the API has deleted or is deleting: the control plane may
// have force-deleted it and started its identity elsewhere. A fenceable
// pod the API still has, not being deleted, is left to run: the
// controller force-deletes only pods it evicted first, and a revocation
// comes after that eviction, so a List made after reading the revocation
// shows every such pod deleting or gone. (Revoking live pods as well
// would strand those that tolerate the unreachable taint: bound here,
// never run, never replaced.) It also forgets revoked pods that are gone
// from the API and from an informer at least as recent as the List.
func (a *Agent) settleFencedPods(ctx context.Context) error {
	// The cache first, the API next: every pod the cache shows existed
	// at or before the List's revision, so one the List lacks is deleted
	// (read the other way round, a pod bound here just after the List
	// would look deleted).
	known := map[types.UID]string{}
	for _, p := range a.podsCached() {
		if api.Fenceable(p) {
			known[p.UID] = p.Namespace + "/" + p.Name
		}
	}
	var list corev1.PodList
	if err := a.cfg.Client.List(ctx, "", &list, client.ListOptions{FieldSelector: "spec.nodeName=" + a.cfg.Name}); err != nil {
		return err
	}
	inAPI := map[types.UID]bool{} // UID → alive (not being deleted)
	for i := range list.Items {
		p := &list.Items[i]
		inAPI[p.UID] = p.DeletionTimestamp == nil
		if api.Fenceable(p) {
			known[p.UID] = p.Namespace + "/" + p.Name
		}
	}
	// For forgetting: the informer's revision, then its pods (at that
	// revision or later).
	caughtUp := a.pods != nil && revisionAtLeast(a.pods.LastResourceVersion(), list.ResourceVersion)
	inCache := map[types.UID]bool{}
	for _, p := range a.podsCached() {
		inCache[p.UID] = true
	}

	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	a.fence.lastSettled = time.Now()
	if a.fence.revoked == nil {
		a.fence.revoked = map[types.UID]*revokedPod{}
	}
	for uid, name := range known {
		if inAPI[uid] {
			continue
		}
		if _, ok := a.fence.revoked[uid]; !ok {
			a.fence.revoked[uid] = &revokedPod{name: name}
			a.log.Warn("pod revoked: deleted or deleting in the API, it never runs here again", "pod", name, "uid", uid,
				"revision", list.ResourceVersion)
		}
	}
	for uid, r := range a.fence.revoked {
		_, listed := inAPI[uid]
		switch {
		case inCache[uid]:
			r.cached = true
		case !listed && (r.cached || caughtUp):
			delete(a.fence.revoked, uid)
			a.log.Debug("revoked pod gone from the API", "pod", r.name, "uid", uid)
		}
	}
	return nil
}

// revisionAtLeast compares two resourceVersions as the store's revisions
// (false when either is not a number).
func revisionAtLeast(rv, min string) bool {
	a, err1 := strconv.ParseInt(rv, 10, 64)
	b, err2 := strconv.ParseInt(min, 10, 64)
	return err1 == nil && err2 == nil && a >= b
}

// podsCached is the informer's pods bound to this node (none before the
// informer exists).
func (a *Agent) podsCached() []*corev1.Pod {
	if a.pods == nil {
		return nil
	}
	var out []*corev1.Pod
	for _, o := range a.pods.List(labels.Everything()) {
		if p := o.(*corev1.Pod); p.Spec.NodeName == a.cfg.Name {
			out = append(out, p)
		}
	}
	return out
}

// LeasePingAnnotation, on the node's Lease, is the node lifecycle
// controller's question "are you there?" (its name is api's, shared
// with the controller). The controller writes it (to the time, RFC 3339) when gossip
// holds the node dead or suspect, and marks the node unreachable only if
// the Lease has not been renewed within its ping timeout (about 1.5 s):
// the store, not one server's gossip view, confirms that the node is
// silent. The agent watches its Lease (answerPings) and renews at once,
// which clears the annotation; a node cut off from gossip but not from
// the control plane thus keeps its pods.
const LeasePingAnnotation = api.LeasePingAnnotation

// answerPings watches the node's own Lease until ctx ends and renews it
// as soon as it carries a ping. The watch is an informer on the one
// Lease (a field selector on its name), so a broken stream resumes.
func (a *Agent) answerPings(ctx context.Context) {
	inf, err := client.NewInformer(a.cfg.Client, corev1.NamespaceNodeLease, &coordinationv1.Lease{},
		client.ListOptions{FieldSelector: "metadata.name=" + a.cfg.Name}, 0)
	if err != nil {
		a.log.Error("not answering lease pings: node loss then waits for --node-health-confirm-age", "err", err)
		return
	}
	// Only the latest pinged Lease matters: one slot, replaced. The
	// handler is called from the informer's goroutine alone.
	pinged := make(chan *coordinationv1.Lease, 1)
	on := func(o k8sruntime.Object) {
		l, ok := o.(*coordinationv1.Lease)
		if !ok || l.Name != a.cfg.Name || l.Annotations[LeasePingAnnotation] == "" {
			return
		}
		select {
		case <-pinged:
		default:
		}
		select {
		case pinged <- l:
		default:
		}
	}
	inf.AddHandler(client.Handler{OnAdd: on, OnUpdate: func(_, o k8sruntime.Object) { on(o) }})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = inf.Run(ctx)
	}()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-pinged:
			rctx, cancel := context.WithTimeout(ctx, a.cfg.HeartbeatInterval)
			a.answerPing(rctx, l)
			cancel()
		}
	}
}

// answerPing renews the Lease l (as watched, carrying a ping) unless a
// renewal newer than l has already answered it. l becomes the base of
// the renewal's compare-and-swap when it is newer than the Lease the
// agent last wrote: the ping moved the Lease's revision, and renewing on
// the old one would cost a conflict and a read.
func (a *Agent) answerPing(ctx context.Context, l *coordinationv1.Lease) {
	start := time.Now()
	a.hb.renewMu.Lock()
	a.hb.leaseMu.Lock()
	last := a.hb.lease
	if last != nil && revisionAtLeast(last.ResourceVersion, l.ResourceVersion) {
		a.hb.leaseMu.Unlock()
		a.hb.renewMu.Unlock()
		return // a renewal after the ping has answered it
	}
	a.hb.lease = l.DeepCopy()
	a.hb.leaseMu.Unlock()
	err := a.renewLeaseLocked(ctx)
	a.hb.renewMu.Unlock()
	if err != nil {
		a.log.Error("answering a lease ping", "lease", l.Namespace+"/"+l.Name, "ping", l.Annotations[LeasePingAnnotation],
			"revision", l.ResourceVersion, "err", err)
		return
	}
	a.log.Info("answered a lease ping from the node lifecycle controller (gossip held this node dead or suspect)",
		"lease", l.Namespace+"/"+l.Name, "ping", l.Annotations[LeasePingAnnotation], "revision", l.ResourceVersion,
		"took", time.Since(start).Round(time.Millisecond))
	a.checkFence()
}

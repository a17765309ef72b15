package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// keeps the last Lease it wrote and updates that (one write per renewal);
// a conflict or a missing Lease makes the next renewal read it afresh.
func (a *Agent) renewLease(ctx context.Context) error {
	now := metav1.NowMicro()
	secs := int32(a.cfg.leaseDuration() / time.Second)
	a.hb.leaseMu.Lock()
	cached := a.hb.lease
	a.hb.leaseMu.Unlock()

	l := cached
	if l == nil {
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
			if err := a.cfg.Client.Create(ctx, l); err != nil {
				return err
			}
			a.setLease(l, now)
			return nil
		case err != nil:
			return err
		}
	} else {
		l = l.DeepCopy()
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &a.cfg.Name, &secs, &now
	if err := a.cfg.Client.Update(ctx, l); err != nil {
		a.setLease(nil, metav1.MicroTime{})
		return err
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
// it cannot renew its Lease, as it does StatefulSet pods: an identity that
// must never run twice.
const FenceAnnotation = "skiff.dev/fence"

// fenceable reports whether p is stopped while the node is fenced: a pod
// of a StatefulSet, or one annotated skiff.dev/fence=true.
func fenceable(p *corev1.Pod) bool {
	if p.Annotations[FenceAnnotation] == "true" {
		return true
	}
	if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "StatefulSet" && strings.HasPrefix(ref.APIVersion, "apps/") {
		return true
	}
	return false
}

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

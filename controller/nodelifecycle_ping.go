package controller

import (
	"context"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// DefaultNodeHealthPingTimeout is how long a node gossip suspects or holds
// dead has to answer a ping through its Lease (NodeLifecycleOptions.
// HealthPingTimeout). The agent answers from a watch of its Lease with one
// write: tens of milliseconds on an idle cluster, a few hundred on a busy
// one. The timeout is on the critical path of node loss only when the ping
// goes out late (gossip's own suspicion usually starts it a second or two
// before the verdict).
const DefaultNodeHealthPingTimeout = 1500 * time.Millisecond

// LeasePingAnnotation, on a node's Lease, is a ping from this controller:
// it writes it (the time, RFC 3339) with a compare-and-swap when its
// NodeHealth source suspects the node or holds it dead, and the node's
// agent (agent/node; the name is api's, shared), watching its
// Lease, renews it at once, which clears the annotation. A Lease not
// renewed within HealthPingTimeout of the ping, read afresh from the API,
// is the store's confirmation that the node is silent: one server's
// gossip view alone never marks a node, and a node cut off from gossip
// but not from the control plane answers and keeps its pods. The store's
// answer comes in about HealthPingTimeout instead of HealthConfirmAge (a
// heartbeat interval and more), without making every agent renew often.
const LeasePingAnnotation = api.LeasePingAnnotation

// pingConflictRetry is when to try a ping again after its compare-and-swap
// lost to a write of the Lease (most likely a renewal).
const pingConflictRetry = 100 * time.Millisecond

// leasePing is the ping of one node in one health episode (from the time
// the health source first suspects it, or holds it dead, until it holds
// it healthy again): at most one per episode, so a node cut off from
// gossip alone costs one ping and one renewal, not a stream of them.
type leasePing struct {
	at       time.Time         // when the ping was in the store (this controller's clock)
	revision int64             // the Lease's resourceVersion written by the ping
	renewed  *metav1.MicroTime // the Lease's renewTime when pinged
	answered bool              // renewed since, or nothing to ping: HealthConfirmAge decides from here
}

// renewedSince reports whether l is a later version of the Lease than the
// ping's with another renewTime: the agent renewed it after the ping (the
// controller's own later writes, a revocation, keep the renewTime).
func (p *leasePing) renewedSince(l *coordinationv1.Lease) bool {
	rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
	if err != nil || rv <= p.revision {
		return false
	}
	switch {
	case l.Spec.RenewTime == nil:
		return false
	case p.renewed == nil:
		return true
	}
	return !l.Spec.RenewTime.Equal(p.renewed)
}

func (c *NodeLifecycleController) pingOf(node string) *leasePing {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	return c.pings[node]
}

func (c *NodeLifecycleController) setPing(node string, p *leasePing) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	c.pings[node] = p
}

// forgetPing ends the node's health episode: the next suspicion pings
// again.
func (c *NodeLifecycleController) forgetPing(node string) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	delete(c.pings, node)
}

func (c *NodeLifecycleController) healthSuspect(node string) bool {
	s, ok := c.health.(NodeSuspicion)
	return ok && s.NodeSuspect(node)
}

// pingVerdict is the store's confirmation of the health source's view of
// a Ready node whose heartbeat is not yet overdue (age): it pings the
// node's Lease when the source first suspects it or holds it dead, and
// once HealthPingTimeout has passed without a renewal — checked on the
// Lease read afresh from the API — and the source holds it dead, returns
// the reason to mark it unreachable. Otherwise it returns when to look
// again (0: the health source's next change, or the heartbeat rules).
func (c *NodeLifecycleController) pingVerdict(ctx context.Context, node *corev1.Node, age time.Duration, down bool, since time.Time) (string, time.Duration, error) {
	if c.health == nil || c.leases == nil {
		return "", 0, nil
	}
	r, ok := c.w.(Reader)
	if !ok {
		return "", 0, nil
	}
	if !down && !c.healthSuspect(node.Name) {
		c.forgetPing(node.Name)
		return "", 0, nil
	}
	p := c.pingOf(node.Name)
	if p == nil {
		wait, err := c.ping(ctx, r, node, down)
		return "", wait, err
	}
	if p.answered {
		return "", 0, nil
	}
	if waited := c.now().Sub(p.at); waited < c.opts.HealthPingTimeout {
		return "", c.opts.HealthPingTimeout - waited + 10*time.Millisecond, nil
	}
	if l, ok := c.leaseOf(node.Name); ok && p.renewedSince(l) {
		c.pingAnswered(node.Name, p, l)
		return "", 0, nil
	}
	if !down {
		// Suspected only: nothing to decide yet. The verdict (the
		// source's OnChange) brings the node back here.
		return "", 0, nil
	}
	// The cache may lag: the API's word decides.
	fresh := &coordinationv1.Lease{}
	err := r.Get(ctx, corev1.NamespaceNodeLease, node.Name, fresh)
	switch {
	case client.IsNotFound(err):
		p.answered = true // no Lease to judge by: the heartbeat rules
		c.log.Info("node's Lease deleted since it was pinged: waiting for its heartbeat to be overdue", "node", node.Name)
		return "", 0, nil
	case err != nil:
		return "", 0, fmt.Errorf("reading the Lease of node %s to confirm gossip's verdict: %w", node.Name, err)
	case p.renewedSince(fresh):
		c.pingAnswered(node.Name, p, fresh)
		return "", 0, nil
	}
	return fmt.Sprintf("Node is unreachable: gossip reports it dead since %s and it did not answer a ping through its Lease (%s, revision %d) within %v; its last heartbeat is %v old.",
		since.UTC().Format(time.RFC3339), LeasePingAnnotation, p.revision, c.opts.HealthPingTimeout, age.Round(100*time.Millisecond)), 0, nil
}

// ping writes LeasePingAnnotation on the node's Lease as read afresh from
// the API (its resourceVersion the precondition) and starts the episode's
// wait for an answer. It returns when to look again.
func (c *NodeLifecycleController) ping(ctx context.Context, r Reader, node *corev1.Node, down bool) (time.Duration, error) {
	l := &coordinationv1.Lease{}
	err := r.Get(ctx, corev1.NamespaceNodeLease, node.Name, l)
	switch {
	case client.IsNotFound(err):
		// An agent without a Lease (or one not yet made): nothing to
		// ping, the heartbeat rules decide.
		c.setPing(node.Name, &leasePing{at: c.now(), answered: true})
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading the Lease of node %s to ping it: %w", node.Name, err)
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[LeasePingAnnotation] = c.now().UTC().Format(time.RFC3339Nano)
	renewed := l.Spec.RenewTime.DeepCopy()
	if err := c.w.Update(ctx, l); err != nil {
		if client.IsConflict(err) || client.IsNotFound(err) {
			return pingConflictRetry, nil // the Lease moved (a renewal?): look again
		}
		return 0, fmt.Errorf("pinging node %s through its Lease: %w", node.Name, err)
	}
	rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pinging node %s: the Lease's resourceVersion %q is not a revision", node.Name, l.ResourceVersion)
	}
	c.setPing(node.Name, &leasePing{at: c.now(), revision: rv, renewed: renewed})
	why := "suspects it"
	if down {
		why = "holds it dead"
	}
	c.log.Info("pinged node through its Lease: gossip "+why+"; the store confirms if it does not answer", "node", node.Name,
		"revision", rv, "timeout", c.opts.HealthPingTimeout)
	return c.opts.HealthPingTimeout + 10*time.Millisecond, nil
}

// pingAnswered records that the node renewed its Lease after the ping: it
// reaches the control plane, whatever gossip says. From here on only an
// overdue heartbeat (HealthConfirmAge) marks it in this episode.
func (c *NodeLifecycleController) pingAnswered(node string, p *leasePing, l *coordinationv1.Lease) {
	p.answered = true
	c.log.Info("node answered its Lease ping: gossip's view is not confirmed, node left alone", "node", node,
		"pingRevision", p.revision, "answerRevision", l.ResourceVersion, "answeredIn", c.now().Sub(p.at).Round(time.Millisecond))
}

package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// serviceLoops creates the informers and loops of the service controllers
// (Endpoints, ServiceLB) for Manager.Run.
func (m *Manager) serviceLoops(inf func(runtime.Object) *client.Informer, pods *client.Informer, log *slog.Logger) []*loop {
	svcs, eps, nodes := inf(&corev1.Service{}), inf(&corev1.Endpoints{}), inf(&corev1.Node{}) //lint:ignore SA1019 Skiff serves Endpoints
	ings := inf(&networkingv1.Ingress{})
	if svcs == nil || eps == nil || nodes == nil || ings == nil {
		return nil // Run reports the informer error
	}
	epc := NewEndpointsController(svcs, pods, eps, m.c, log.With("controller", "endpoints"))
	epLoop := newLoop(epc, log)
	epc.register(epLoop.queue, svcs, pods, eps)
	lbc := NewServiceLBController(svcs, nodes, m.c, log.With("controller", "servicelb"))
	lbLoop := newLoop(lbc, log)
	lbc.register(lbLoop.queue, svcs, nodes)
	isc := NewIngressStatusController(ings, nodes, m.c, log.With("controller", "ingressstatus"))
	isLoop := newLoop(isc, log)
	isc.register(isLoop.queue, ings, nodes)
	return []*loop{epLoop, lbLoop, isLoop}
}

// ServiceLBController gives LoadBalancer Services without a
// loadBalancerClass the addresses of the cluster's ready nodes as their
// status.loadBalancer.ingress, as k3s's ServiceLB does: the service proxy
// on every node then answers on <node address>:<port>, so a LoadBalancer
// Service is usable without a cloud.
//
// Two such Services cannot share a port (and protocol) on the same
// addresses: the older one keeps it, the newer one stays pending (no
// ingress) until the older one goes or changes port.
type ServiceLBController struct {
	services, nodes Cache
	w               Writer
	log             *slog.Logger
}

// NewServiceLBController returns the controller over the caches of
// Services and Nodes, writing Service status through w.
func NewServiceLBController(services, nodes Cache, w Writer, log *slog.Logger) *ServiceLBController {
	if log == nil {
		log = discardLogger()
	}
	return &ServiceLBController{services: services, nodes: nodes, w: w, log: log}
}

// Name is the controller's name in logs.
func (c *ServiceLBController) Name() string { return "servicelb" }

// register enqueues every LoadBalancer service on any Node change (their
// addresses may change) and on any LoadBalancer service change (a port
// may have been freed or taken), and a service itself when it changes.
func (c *ServiceLBController) register(q *client.Queue[string], services, nodes *client.Informer) {
	all := func(runtime.Object) []string {
		var keys []string
		for _, o := range c.services.List(nil) {
			if s, ok := o.(*corev1.Service); ok && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				keys = append(keys, client.KeyOf(s))
			}
		}
		return keys
	}
	services.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		if s, ok := obj.(*corev1.Service); ok && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			return append(all(obj), client.KeyOf(obj))
		}
		return selfKey(obj)
	}))
	nodes.AddHandler(keyHandler(q, all))
}

func ours(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil
}

// Reconcile sets or clears the load-balancer status of the service key.
func (c *ServiceLBController) Reconcile(ctx context.Context, key string) (Result, error) {
	o, ok := c.services.Get(key)
	if !ok {
		return Result{}, nil
	}
	svc := o.(*corev1.Service)
	var want []corev1.LoadBalancerIngress
	switch {
	case ours(svc):
		if other := c.portHolder(svc); other != "" {
			c.log.Info("load balancer pending: port taken", "service", key, "by", other)
		} else {
			vip := corev1.LoadBalancerIPModeVIP
			for _, ip := range c.nodeAddresses() {
				want = append(want, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
			}
		}
	case svc.Spec.Type == corev1.ServiceTypeLoadBalancer:
		return Result{}, nil // another implementation's (loadBalancerClass)
	}
	if sameIngress(svc.Status.LoadBalancer.Ingress, want) {
		return Result{}, nil
	}
	upd := svc.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if err := c.w.UpdateStatus(ctx, upd); err != nil {
		return Result{}, fmt.Errorf("update status of service %s: %w", key, err)
	}
	c.log.Info("load balancer status", "service", key, "rv", upd.ResourceVersion, "ingress", len(want))
	return Result{}, nil
}

func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname {
			return false
		}
	}
	return true
}

// portHolder names an older LoadBalancer service of ours using one of
// svc's ports, or "".
func (c *ServiceLBController) portHolder(svc *corev1.Service) string {
	type pp struct {
		port  int32
		proto corev1.Protocol
	}
	mine := map[pp]bool{}
	for _, p := range svc.Spec.Ports {
		mine[pp{p.Port, protoOr(p.Protocol)}] = true
	}
	older := func(a, b *corev1.Service) bool {
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return client.KeyOf(a) < client.KeyOf(b)
	}
	for _, o := range c.services.List(nil) {
		other, ok := o.(*corev1.Service)
		if !ok || other.UID == svc.UID || !ours(other) || !older(other, svc) {
			continue
		}
		for _, p := range other.Spec.Ports {
			if mine[pp{p.Port, protoOr(p.Protocol)}] {
				return client.KeyOf(other)
			}
		}
	}
	return ""
}

func protoOr(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// nodeAddresses are the ExternalIP (else InternalIP) of every Ready,
// schedulable node, sorted.
func (c *ServiceLBController) nodeAddresses() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range c.nodes.List(nil) {
		n, ok := o.(*corev1.Node)
		if !ok || n.Spec.Unschedulable || n.DeletionTimestamp != nil || !nodeIsReady(n) {
			continue
		}
		ip := ""
		for _, t := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
			for _, a := range n.Status.Addresses {
				if a.Type == t && ip == "" {
					ip = a.Address
				}
			}
		}
		if ip != "" && !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	sort.Strings(out)
	return out
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// IngressClassName is the class of Skiff's built-in Ingress router (the
// ingress package serves it, and Ingresses naming no class).
const IngressClassName = "skiff"

// IngressStatusController writes the addresses of the cluster's ready
// nodes into status.loadBalancer.ingress of the Ingresses Skiff's router
// serves (class "skiff" or none): the router runs on every node, so those
// are where the Ingress answers, and `get ingress` shows them as ADDRESS.
type IngressStatusController struct {
	ingresses, nodes Cache
	w                Writer
	log              *slog.Logger
	addrs            *ServiceLBController // for nodeAddresses
}

// NewIngressStatusController returns the controller over the caches of
// Ingresses and Nodes, writing Ingress status through w.
func NewIngressStatusController(ingresses, nodes Cache, w Writer, log *slog.Logger) *IngressStatusController {
	if log == nil {
		log = discardLogger()
	}
	return &IngressStatusController{ingresses: ingresses, nodes: nodes, w: w, log: log,
		addrs: &ServiceLBController{nodes: nodes}}
}

// Name is the controller's name in logs.
func (c *IngressStatusController) Name() string { return "ingressstatus" }

func (c *IngressStatusController) register(q *client.Queue[string], ingresses, nodes *client.Informer) {
	ingresses.AddHandler(keyHandler(q, selfKey))
	nodes.AddHandler(keyHandler(q, func(runtime.Object) []string {
		var keys []string
		for _, o := range c.ingresses.List(nil) {
			keys = append(keys, client.KeyOf(o))
		}
		return keys
	}))
}

func servedBySkiff(ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		return *c == IngressClassName
	}
	if c, ok := ing.Annotations["kubernetes.io/ingress.class"]; ok {
		return c == IngressClassName
	}
	return true
}

// Reconcile sets the Ingress's addresses (or leaves another class's
// Ingress alone).
func (c *IngressStatusController) Reconcile(ctx context.Context, key string) (Result, error) {
	o, ok := c.ingresses.Get(key)
	if !ok {
		return Result{}, nil
	}
	ing := o.(*networkingv1.Ingress)
	if !servedBySkiff(ing) {
		return Result{}, nil
	}
	var want []networkingv1.IngressLoadBalancerIngress
	for _, ip := range c.addrs.nodeAddresses() {
		want = append(want, networkingv1.IngressLoadBalancerIngress{IP: ip})
	}
	cur := ing.Status.LoadBalancer.Ingress
	same := len(cur) == len(want)
	for i := 0; same && i < len(cur); i++ {
		same = cur[i].IP == want[i].IP && cur[i].Hostname == ""
	}
	if same {
		return Result{}, nil
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if err := c.w.UpdateStatus(ctx, upd); err != nil {
		return Result{}, fmt.Errorf("update status of ingress %s: %w", key, err)
	}
	c.log.Info("ingress addresses", "ingress", key, "rv", upd.ResourceVersion, "addresses", len(want))
	return Result{}, nil
}

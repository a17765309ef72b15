//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does; the proxy and DNS read it.

package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
)

// HeadlessLabel marks the Endpoints of a headless service, as Kubernetes
// does, so a proxy can skip them without looking at the Service.
const HeadlessLabel = "service.kubernetes.io/headless"

// EndpointsController keeps one Endpoints object per Service that has a
// selector: the IPs of the pods the selector matches, ready pods under
// addresses and the others under notReadyAddresses, with the service's
// ports resolved against each pod (a named targetPort is looked up in the
// pod's container ports, so two pods may serve one service port on
// different numbers: they then land in different subsets).
//
// Services without a selector (and ExternalName services) are left alone:
// their Endpoints, if any, belong to the user. The Endpoints of a deleted
// Service are deleted, once an uncached read (when the Writer is also a
// Reader, as *client.Client is) confirms the Service is gone.
//
// EndpointSlices (discovery.k8s.io/v1) are not written: the API server does
// not serve that group yet.
type EndpointsController struct {
	services, pods, endpoints Cache
	w                         Writer
	log                       *slog.Logger
}

// NewEndpointsController returns the controller over the caches of
// Services, Pods and Endpoints (all namespaces), writing through w.
func NewEndpointsController(services, pods, endpoints Cache, w Writer, log *slog.Logger) *EndpointsController {
	if log == nil {
		log = discardLogger()
	}
	return &EndpointsController{services: services, pods: pods, endpoints: endpoints, w: w, log: log}
}

// Name is the controller's name in logs.
func (c *EndpointsController) Name() string { return "endpoints" }

// register enqueues a service's key when it, its Endpoints, or a pod its
// selector matches (before or after a change) changes.
func (c *EndpointsController) register(q *client.Queue[string], services, pods, endpoints *client.Informer) {
	services.AddHandler(keyHandler(q, selfKey))
	endpoints.AddHandler(keyHandler(q, selfKey)) // repair a hand-edited or deleted Endpoints
	pods.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		if p, ok := obj.(*corev1.Pod); ok {
			return c.servicesOfPod(p)
		}
		return nil
	}))
}

// servicesOfPod lists the keys of the services whose selector matches p.
func (c *EndpointsController) servicesOfPod(p *corev1.Pod) []string {
	var keys []string
	for _, o := range inNamespace(c.services, p.Namespace, nil) {
		svc, ok := o.(*corev1.Service)
		if !ok || len(svc.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
			keys = append(keys, client.KeyOf(svc))
		}
	}
	return keys
}

// Reconcile brings the Endpoints of the service key to what its pods say.
func (c *EndpointsController) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name := client.SplitKey(key)
	var cur *corev1.Endpoints
	if o, ok := c.endpoints.Get(key); ok {
		cur, _ = o.(*corev1.Endpoints)
	}
	o, ok := c.services.Get(key)
	if !ok {
		if cur == nil {
			return Result{}, nil
		}
		// The Endpoints may have reached our cache before its Service (two
		// watches): confirm the Service is gone before deleting.
		if r, ok := c.w.(Reader); ok {
			err := r.Get(ctx, ns, name, &corev1.Service{})
			if err == nil {
				return Result{RequeueAfter: time.Second}, nil // the cache will catch up
			}
			if !client.IsNotFound(err) {
				return Result{}, fmt.Errorf("confirm service %s is gone: %w", key, err)
			}
		}
		_, err := c.w.Delete(ctx, cur, &client.DeleteOptions{PreconditionUID: string(cur.UID)})
		if err != nil && !client.IsNotFound(err) {
			return Result{}, fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		c.log.Info("deleted endpoints of a deleted service", "endpoints", key)
		return Result{}, nil
	}
	svc := o.(*corev1.Service)
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return Result{}, nil
	}
	var pods []*corev1.Pod
	for _, o := range inNamespace(c.pods, ns, labels.SelectorFromSet(svc.Spec.Selector)) {
		pods = append(pods, o.(*corev1.Pod))
	}
	subsets := EndpointSubsets(svc, pods)
	lbls := endpointsLabels(svc)

	if cur == nil {
		ep := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
			Subsets:    subsets,
		}
		if err := c.w.Create(ctx, ep); err != nil {
			// AlreadyExists: our cache is behind; the retry sees it.
			return Result{}, fmt.Errorf("create endpoints %s: %w", key, err)
		}
		c.log.Info("created endpoints", "endpoints", key, "ready", countAddrs(subsets, true), "notReady", countAddrs(subsets, false))
		return Result{}, nil
	}
	if equality.Semantic.DeepEqual(cur.Subsets, subsets) && labelsEqual(cur.Labels, lbls) {
		return Result{}, nil
	}
	ep := cur.DeepCopy()
	ep.Subsets = subsets
	ep.Labels = lbls
	if err := c.w.Update(ctx, ep); err != nil {
		return Result{}, fmt.Errorf("update endpoints %s: %w", key, err)
	}
	c.log.Info("updated endpoints", "endpoints", key, "rv", ep.ResourceVersion,
		"ready", countAddrs(subsets, true), "notReady", countAddrs(subsets, false))
	return Result{}, nil
}

// endpointsLabels are the service's labels, plus HeadlessLabel for a
// headless service.
func endpointsLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		out[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[HeadlessLabel] = ""
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func countAddrs(ss []corev1.EndpointSubset, ready bool) int {
	n := 0
	for _, s := range ss {
		if ready {
			n += len(s.Addresses)
		} else {
			n += len(s.NotReadyAddresses)
		}
	}
	return n
}

// EndpointSubsets computes the subsets of svc's Endpoints from the pods its
// selector matches. A pod counts once it has an IP and while it is neither
// finished nor being deleted; it is ready when its Ready condition is true
// (or the service publishes not-ready addresses). Pods are grouped by the
// ports they serve: a pod that lacks a named targetPort serves the other
// ports only, and a pod serving none of the ports is left out. A service
// without ports (headless) lists its pods with no ports. The result is
// sorted (subsets by ports, addresses by IP) so equal inputs give equal
// output, and is nil when no pod counts.
func EndpointSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	type group struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	groups := map[string]*group{}
	for _, p := range pods {
		if p.Status.PodIP == "" || net.ParseIP(p.Status.PodIP) == nil || !isActive(p) {
			continue
		}
		var ports []corev1.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			n, ok := ResolveTargetPort(sp, p)
			if !ok {
				continue
			}
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: n, Protocol: proto, AppProtocol: sp.AppProtocol})
		}
		if len(ports) == 0 && len(svc.Spec.Ports) > 0 {
			continue
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
		k := portsKey(ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: ports}
			groups[k] = g
		}
		addr := corev1.EndpointAddress{
			IP:        p.Status.PodIP,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		}
		if p.Spec.NodeName != "" {
			addr.NodeName = &p.Spec.NodeName
		}
		// A pod names itself under the service that is its subdomain
		// (StatefulSet pods: web-0.nginx.default.svc.cluster.local).
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
			addr.Hostname = p.Spec.Hostname
		}
		if isReady(p) || svc.Spec.PublishNotReadyAddresses {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byIP := func(a []corev1.EndpointAddress) {
		sort.Slice(a, func(i, j int) bool {
			if a[i].IP != a[j].IP {
				return a[i].IP < a[j].IP
			}
			return a[i].TargetRef.Name < a[j].TargetRef.Name
		})
	}
	out := make([]corev1.EndpointSubset, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		byIP(g.ready)
		byIP(g.notReady)
		out = append(out, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return out
}

func portsKey(ports []corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "%s/%d/%s,", p.Name, p.Port, p.Protocol)
	}
	return b.String()
}

// ResolveTargetPort is the port on pod p that service port sp sends to: a
// numeric targetPort as is (the service port itself when unset), a named
// one looked up among p's container ports of the same protocol. ok is false
// when the name is not found.
func ResolveTargetPort(sp *corev1.ServicePort, p *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		for _, ctr := range p.Spec.Containers {
			for _, cp := range ctr.Ports {
				cpp := cp.Protocol
				if cpp == "" {
					cpp = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && cpp == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal > 0:
		return tp.IntVal, true
	default:
		return sp.Port, true
	}
}

package apiserver

// LimitRange admission, as Kubernetes' LimitRanger plugin, on create:
//
//  1. Defaults (after the scheme's defaults, before PrepareForCreate, so a
//     pod's QoS class sees them): every container and init container gets,
//     for each resource it does not set, the request of the first
//     LimitRange of type Container with a defaultRequest for it, and
//     likewise the limit from default. The pod is annotated with what was
//     set (kubernetes.io/limit-ranger).
//  2. Bounds (after validation): per container, every min, max and
//     maxLimitRequestRatio of every type Container item; per pod, those of
//     type Pod items on the pod's totals; per PersistentVolumeClaim, min and
//     max storage of type PersistentVolumeClaim items. Any breach is
//     Forbidden, listing every breach with Kubernetes' words and, for a
//     container, its name.
//
// Updates are not checked (Kubernetes checks them only for in-place
// resize, which Skiff does not serve). LimitRanges are read from the store
// on each create of a pod or claim: one range read of a namespace's (few)
// LimitRanges.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// limitRangerAnnotation records the defaults LimitRange admission set.
const limitRangerAnnotation = "kubernetes.io/limit-ranger"

// listNamespaced reads every object of kind k in namespace ns, with its
// mod revision, in name order.
func (s *Server) listNamespaced(ctx context.Context, k Kind, ns string) ([]runtime.Object, []int64, error) {
	resp, err := s.etcd.Get(ctx, s.listPrefix(k, ns), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, storeError(err)
	}
	objs := make([]runtime.Object, 0, len(resp.Kvs))
	revs := make([]int64, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := decodeStored(k, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, nil, client.NewInternal(err)
		}
		objs = append(objs, obj)
		revs = append(revs, kv.ModRevision)
	}
	return objs, revs, nil
}

// limitRangesFor reads the LimitRanges that apply to a new object of kind
// k in ns: none unless it is a Pod or a PersistentVolumeClaim.
func (s *Server) limitRangesFor(ctx context.Context, k Kind, obj runtime.Object, ns string) ([]*corev1.LimitRange, error) {
	switch obj.(type) {
	case *corev1.Pod, *corev1.PersistentVolumeClaim:
	default:
		return nil, nil
	}
	lrKind, ok := s.kinds[schema.GroupResource{Resource: "limitranges"}]
	if !ok || !k.Namespaced {
		return nil, nil
	}
	objs, _, err := s.listNamespaced(ctx, lrKind, ns)
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.LimitRange, 0, len(objs))
	for _, o := range objs {
		if lr, ok := o.(*corev1.LimitRange); ok {
			out = append(out, lr)
		}
	}
	return out, nil
}

// applyLimitRangeDefaults is step 1 on a new pod; it returns what it set
// ("" for nothing), as the annotation words it.
func applyLimitRangeDefaults(pod *corev1.Pod, lrs []*corev1.LimitRange) string {
	var notes []string
	apply := func(c *corev1.Container) {
		var setReq, setLim []string
		for _, lr := range lrs {
			for _, item := range lr.Spec.Limits {
				if item.Type != corev1.LimitTypeContainer {
					continue
				}
				for _, name := range sortedResourceNames(item.DefaultRequest) {
					if _, ok := c.Resources.Requests[name]; !ok {
						if c.Resources.Requests == nil {
							c.Resources.Requests = corev1.ResourceList{}
						}
						c.Resources.Requests[name] = item.DefaultRequest[name].DeepCopy()
						setReq = append(setReq, string(name))
					}
				}
				for _, name := range sortedResourceNames(item.Default) {
					if _, ok := c.Resources.Limits[name]; !ok {
						if c.Resources.Limits == nil {
							c.Resources.Limits = corev1.ResourceList{}
						}
						c.Resources.Limits[name] = item.Default[name].DeepCopy()
						setLim = append(setLim, string(name))
					}
				}
			}
		}
		if len(setReq) > 0 {
			notes = append(notes, strings.Join(setReq, ", ")+" request for container "+c.Name)
		}
		if len(setLim) > 0 {
			notes = append(notes, strings.Join(setLim, ", ")+" limit for container "+c.Name)
		}
	}
	for i := range pod.Spec.InitContainers {
		apply(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		apply(&pod.Spec.Containers[i])
	}
	if len(notes) == 0 {
		return ""
	}
	return "LimitRanger plugin set: " + strings.Join(notes, "; ")
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// limitRangeViolations is step 2: every breach of the LimitRanges by a
// new pod or claim, in Kubernetes' words.
func limitRangeViolations(obj runtime.Object, lrs []*corev1.LimitRange) []string {
	var out []string
	for _, lr := range lrs {
		for _, item := range lr.Spec.Limits {
			switch o := obj.(type) {
			case *corev1.Pod:
				switch item.Type {
				case corev1.LimitTypeContainer:
					check := func(c *corev1.Container) {
						for _, msg := range boundsViolations(string(item.Type), item, c.Resources.Requests, c.Resources.Limits) {
							out = append(out, fmt.Sprintf("%s (container %q)", msg, c.Name))
						}
					}
					for i := range o.Spec.InitContainers {
						check(&o.Spec.InitContainers[i])
					}
					for i := range o.Spec.Containers {
						check(&o.Spec.Containers[i])
					}
				case corev1.LimitTypePod:
					req, lim := api.PodRequestsAndLimits(&o.Spec)
					out = append(out, boundsViolations(string(item.Type), item, req, lim)...)
				}
			case *corev1.PersistentVolumeClaim:
				if item.Type != corev1.LimitTypePersistentVolumeClaim {
					continue
				}
				req := o.Spec.Resources.Requests
				for _, name := range sortedResourceNames(item.Min) {
					if msg := minViolation(string(item.Type), name, item.Min[name], req, nil); msg != "" {
						out = append(out, msg)
					}
				}
				for _, name := range sortedResourceNames(item.Max) {
					if msg := maxRequestViolation(string(item.Type), name, item.Max[name], req); msg != "" {
						out = append(out, msg)
					}
				}
			}
		}
	}
	return out
}

// boundsViolations checks requests and limits against one item's min,
// max and maxLimitRequestRatio.
func boundsViolations(limitType string, item corev1.LimitRangeItem, req, lim corev1.ResourceList) []string {
	var out []string
	for _, name := range sortedResourceNames(item.Min) {
		if msg := minViolation(limitType, name, item.Min[name], req, lim); msg != "" {
			out = append(out, msg)
		}
	}
	for _, name := range sortedResourceNames(item.Max) {
		if msg := maxViolation(limitType, name, item.Max[name], req, lim); msg != "" {
			out = append(out, msg)
		}
	}
	for _, name := range sortedResourceNames(item.MaxLimitRequestRatio) {
		if msg := ratioViolation(limitType, name, item.MaxLimitRequestRatio[name], req, lim); msg != "" {
			out = append(out, msg)
		}
	}
	return out
}

func minViolation(limitType string, name corev1.ResourceName, enforced resource.Quantity, req, lim corev1.ResourceList) string {
	r, hasReq := req[name]
	l, hasLim := lim[name]
	switch {
	case !hasReq:
		return fmt.Sprintf("minimum %s usage per %s is %s.  No request is specified", name, limitType, enforced.String())
	case r.Cmp(enforced) < 0:
		return fmt.Sprintf("minimum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), r.String())
	case hasLim && l.Cmp(enforced) < 0:
		return fmt.Sprintf("minimum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), l.String())
	}
	return ""
}

func maxViolation(limitType string, name corev1.ResourceName, enforced resource.Quantity, req, lim corev1.ResourceList) string {
	r, hasReq := req[name]
	l, hasLim := lim[name]
	switch {
	case !hasLim:
		return fmt.Sprintf("maximum %s usage per %s is %s.  No limit is specified", name, limitType, enforced.String())
	case l.Cmp(enforced) > 0:
		return fmt.Sprintf("maximum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), l.String())
	case hasReq && r.Cmp(enforced) > 0:
		return fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), r.String())
	}
	return ""
}

func maxRequestViolation(limitType string, name corev1.ResourceName, enforced resource.Quantity, req corev1.ResourceList) string {
	r, hasReq := req[name]
	switch {
	case !hasReq:
		return fmt.Sprintf("maximum %s usage per %s is %s.  No request is specified", name, limitType, enforced.String())
	case r.Cmp(enforced) > 0:
		return fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), r.String())
	}
	return ""
}

func ratioViolation(limitType string, name corev1.ResourceName, enforced resource.Quantity, req, lim corev1.ResourceList) string {
	r, hasReq := req[name]
	l, hasLim := lim[name]
	if !hasReq || r.IsZero() {
		return fmt.Sprintf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, limitType, enforced.String())
	}
	if !hasLim || l.IsZero() {
		return fmt.Sprintf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, limitType, enforced.String())
	}
	// Compare limit <= ratio * request exactly, in milli-units where they
	// fit (as Kubernetes), else in units.
	lv, rv, ev := l.MilliValue(), r.MilliValue(), enforced.MilliValue()
	if l.Value() > resource.MaxMilliValue || r.Value() > resource.MaxMilliValue || enforced.Value() > resource.MaxMilliValue {
		lv, rv, ev = l.Value(), r.Value(), enforced.Value()*1000
	}
	observed := float64(lv) / float64(rv)
	if observed*1000 > float64(ev) {
		return fmt.Sprintf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, limitType, enforced.String(), observed)
	}
	return ""
}

// limitRangeError is the Forbidden error of breaches, joined as
// Kubernetes joins several admission errors.
func limitRangeError(k Kind, name string, msgs []string) error {
	why := msgs[0]
	if len(msgs) > 1 {
		why = "[" + strings.Join(msgs, ", ") + "]"
	}
	return client.NewForbidden(k.GroupResource(), name, why)
}

// admitLimitRangeDefaults runs step 1 on a new object and returns the
// LimitRanges for step 2.
func (s *Server) admitLimitRangeDefaults(ctx context.Context, k Kind, obj runtime.Object, ns string) ([]*corev1.LimitRange, error) {
	lrs, err := s.limitRangesFor(ctx, k, obj, ns)
	if err != nil || len(lrs) == 0 {
		return nil, err
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		if note := applyLimitRangeDefaults(pod, lrs); note != "" {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[limitRangerAnnotation] = note
		}
	}
	return lrs, nil
}

// admitLimitRanges runs step 2.
func admitLimitRanges(k Kind, name string, obj runtime.Object, lrs []*corev1.LimitRange) error {
	if len(lrs) == 0 {
		return nil
	}
	if msgs := limitRangeViolations(obj, lrs); len(msgs) > 0 {
		return limitRangeError(k, name, msgs)
	}
	return nil
}

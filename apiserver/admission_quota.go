package apiserver

// ResourceQuota admission, as Kubernetes' ResourceQuota plugin, on create.
//
// A new object's usage (api.QuotaUsage: pods=1, requests.cpu=..., count/
// deployments.apps=1) is added to status.used of every quota of its
// namespace whose spec.hard names one of those resources. If any would go
// over its hard limit the create is Forbidden ("exceeded quota: q1,
// requested: pods=1, used: pods=2, limited: pods=2"), else the quotas'
// new status.used is written in the same store transaction as the object,
// with a compare on each quota's mod revision.
//
// Why that is safe under concurrency: two creates that both read a quota
// at revision R both compare "mod revision == R"; the first transaction
// changes it, so the second fails, re-reads the quota with the first's
// usage included and is judged again. Unlike Kubernetes (which bumps the
// quota first and may over-count a create that then fails), the charge and
// the object commit or fail together.
//
// A quota whose status.used lacks a resource (just created, before the
// ResourceQuota controller ran) is charged from a live count of the
// namespace, read from the store; Kubernetes refuses such creates until
// its controller catches up. The controller recomputes status.used from
// the objects (releasing what deleted objects held).
//
// Like Kubernetes, a quota on cpu or memory (requests or limits) requires
// every container of a new pod to set that value: "failed quota: q1: must
// specify requests.cpu". Scopes select as api.QuotaMatches says. Updates
// are not charged.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
)

// quotaCharge is what a create adds to its transaction: compares on the
// quotas it charges and their new status.
type quotaCharge struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
}

// podQuotaConstraints are the quota resources every container of a pod
// must set when a quota names them (Kubernetes' backward-compatible rule).
var podQuotaConstraints = []struct {
	quota    corev1.ResourceName
	resource corev1.ResourceName
	limit    bool
}{
	{"cpu", corev1.ResourceCPU, false},
	{"limits.cpu", corev1.ResourceCPU, true},
	{"limits.memory", corev1.ResourceMemory, true},
	{"memory", corev1.ResourceMemory, false},
	{"requests.cpu", corev1.ResourceCPU, false},
	{"requests.memory", corev1.ResourceMemory, false},
}

// missingPodResources names the quota resources of hard some container of
// pod does not set, sorted.
func missingPodResources(pod *corev1.Pod, hard corev1.ResourceList) []string {
	var missing []string
	for _, pc := range podQuotaConstraints {
		if _, ok := hard[pc.quota]; !ok {
			continue
		}
		containers := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
		for _, c := range containers {
			list := c.Resources.Requests
			if pc.limit {
				list = c.Resources.Limits
			}
			if _, ok := list[pc.resource]; !ok {
				missing = append(missing, string(pc.quota))
				break
			}
		}
	}
	return missing
}

// quotaCheck judges one quota: the resources of hard the object uses, and
// the new used values of those, or the Forbidden reason.
func quotaCheck(q *corev1.ResourceQuota, obj runtime.Object, delta, used corev1.ResourceList) (corev1.ResourceList, string) {
	hard := q.Spec.Hard
	if pod, ok := obj.(*corev1.Pod); ok {
		if missing := missingPodResources(pod, hard); len(missing) > 0 {
			return nil, fmt.Sprintf("failed quota: %s: must specify %s", q.Name, strings.Join(missing, ","))
		}
	}
	next := corev1.ResourceList{}
	for name, u := range used {
		next[name] = u.DeepCopy()
	}
	var exceeded []corev1.ResourceName
	for name, h := range hard {
		d, ok := delta[name]
		if !ok {
			continue
		}
		sum := used[name].DeepCopy()
		sum.Add(d)
		next[name] = sum
		if sum.Cmp(h) > 0 {
			exceeded = append(exceeded, name)
		}
	}
	if len(exceeded) > 0 {
		sort.Slice(exceeded, func(i, j int) bool { return exceeded[i] < exceeded[j] })
		return nil, fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
			q.Name, quotaList(delta, exceeded), quotaList(used, exceeded), quotaList(hard, exceeded))
	}
	return next, ""
}

// quotaList prints names of l as Kubernetes does: "pods=1,requests.cpu=2".
func quotaList(l corev1.ResourceList, names []corev1.ResourceName) string {
	parts := make([]string, len(names))
	for i, n := range names {
		q := l[n]
		parts[i] = string(n) + "=" + q.String()
	}
	return strings.Join(parts, ",")
}

// chargeQuotas checks a new object against its namespace's quotas and
// returns the writes that charge it, to be committed with the object.
func (s *Server) chargeQuotas(ctx context.Context, k Kind, obj runtime.Object, ns, name string) (*quotaCharge, error) {
	rqKind, ok := s.kinds[schema.GroupResource{Resource: "resourcequotas"}]
	if !ok || !k.Namespaced {
		return &quotaCharge{}, nil
	}
	info, err := api.KindFor(k.GVK())
	if err != nil {
		return &quotaCharge{}, nil // a kind package api does not know (test schemes) has no usage
	}
	objs, revs, err := s.listNamespaced(ctx, rqKind, ns)
	if err != nil || len(objs) == 0 {
		return &quotaCharge{}, err
	}
	now := time.Now()
	delta := api.QuotaUsage(info, obj, now)
	charge := &quotaCharge{}
	for i, o := range objs {
		q := o.(*corev1.ResourceQuota)
		if !api.QuotaMatches(q, obj) {
			continue
		}
		relevant := false
		var unknown []corev1.ResourceName
		for rn := range q.Spec.Hard {
			if _, uses := delta[rn]; uses {
				relevant = true
				if _, known := q.Status.Used[rn]; !known {
					unknown = append(unknown, rn)
				}
			}
		}
		_, isPod := obj.(*corev1.Pod)
		if !relevant && !isPod {
			continue
		}
		used := q.Status.Used.DeepCopy()
		if used == nil {
			used = corev1.ResourceList{}
		}
		if len(unknown) > 0 {
			live, err := s.liveQuotaUsage(ctx, ns, q, now)
			if err != nil {
				return nil, err
			}
			for _, rn := range unknown {
				used[rn] = live[rn].DeepCopy()
			}
		}
		next, why := quotaCheck(q, obj, delta, used)
		if why != "" {
			return nil, client.NewForbidden(k.GroupResource(), name, why)
		}
		if !relevant {
			continue
		}
		q = q.DeepCopy()
		q.Status.Used = next
		if q.Status.Hard == nil {
			q.Status.Hard = q.Spec.Hard.DeepCopy()
		}
		data, err := encodeForStore(rqKind, q)
		if err != nil {
			return nil, client.NewInternal(err)
		}
		key := s.objectKey(rqKind, ns, q.Name)
		charge.cmps = append(charge.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", revs[i]))
		charge.ops = append(charge.ops, clientv3.OpPut(key, string(data)))
	}
	return charge, nil
}

// liveQuotaUsage sums, over the objects of ns stored now that q selects,
// the usage of every resource of q's hard (zero when nothing uses it).
func (s *Server) liveQuotaUsage(ctx context.Context, ns string, q *corev1.ResourceQuota, now time.Time) (corev1.ResourceList, error) {
	hard := q.Spec.Hard
	out := corev1.ResourceList{}
	for rn := range hard {
		out[rn] = resource.Quantity{}
	}
	for _, info := range api.Kinds() {
		if !info.Namespaced {
			continue
		}
		needed := false
		for rn := range hard {
			if api.QuotaResourceOf(info, rn) {
				needed = true
				break
			}
		}
		k, ok := s.byKind[info.GVK]
		if !needed || !ok {
			continue
		}
		objs, _, err := s.listNamespaced(ctx, k, ns)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !api.QuotaMatches(q, o) {
				continue
			}
			for rn, u := range api.QuotaUsage(info, o, now) {
				if sum, ok := out[rn]; ok {
					sum.Add(u)
					out[rn] = sum
				}
			}
		}
	}
	return out, nil
}

// maxQuotaRetries bounds how often one create is judged again after other
// creates charged the same quota first.
const maxQuotaRetries = 64

package sched

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
)

// podInfo is a pod as the scheduler sees it: requests as integers, host
// ports, owner, and compiled inter-pod affinity terms. It is built once when
// a pod enters the snapshot (or a scheduling cycle) so that no per-node step
// ever parses a Quantity or a selector.
type podInfo struct {
	key       string // namespace/name
	pod       *corev1.Pod
	namespace string
	labels    map[string]string
	nodeName  string    // the node it is bound or assumed to; "" for an incoming pod
	ni        *nodeInfo // that node, once in the snapshot

	req     resources
	nonZero resources
	ports   []hostPort
	owner   types.UID // the controller ownerReference's uid, if any

	requiredAffinity     []affinityTerm
	requiredAntiAffinity []affinityTerm
	preferredAffinity    []weightedAffinityTerm
	preferredAnti        []weightedAffinityTerm

	terminating bool
	slot        int // index in its nodeInfo's pods slice
}

// hostPort is one host port a pod binds. An empty IP is the wildcard 0.0.0.0.
type hostPort struct {
	protocol corev1.Protocol
	port     int32
	ip       string
}

const wildcardIP = "0.0.0.0"

// affinityTerm is a compiled corev1.PodAffinityTerm.
type affinityTerm struct {
	namespaces  []string
	nsSelector  labels.Selector // nil: only namespaces apply
	selector    labels.Selector
	topologyKey string

	// An exact label every selected pod has (see requiredLabels), for the
	// snapshot's indexes; indexed is false if the selector has none.
	key     string
	values  []string
	indexed bool
}

type weightedAffinityTerm struct {
	affinityTerm
	weight int64
}

// matches reports whether pod (namespace ns, labels lbls) is selected by the
// term. nsLabels are the labels of namespace ns, needed only by terms with a
// namespaceSelector.
func (t *affinityTerm) matches(ns string, lbls map[string]string, nsLabels map[string]string) bool {
	if !slices.Contains(t.namespaces, ns) && (t.nsSelector == nil || !t.nsSelector.Matches(labels.Set(nsLabels))) {
		return false
	}
	return t.selector.Matches(labels.Set(lbls))
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// newPodInfo compiles p. strict makes a malformed affinity term an error (for
// a pod being scheduled); otherwise such a term is dropped, because a pod
// already on a node must still be accounted for.
func newPodInfo(p *corev1.Pod, strict bool) (*podInfo, error) {
	pi := &podInfo{
		key:         podKey(p),
		pod:         p,
		namespace:   p.Namespace,
		labels:      p.Labels,
		nodeName:    p.Spec.NodeName,
		terminating: p.DeletionTimestamp != nil,
	}
	pi.req, pi.nonZero = podRequests(&p.Spec)
	pi.ports = podHostPorts(&p.Spec)
	if ref := metav1.GetControllerOf(p); ref != nil {
		pi.owner = ref.UID
	}
	if a := p.Spec.Affinity; a != nil {
		var err error
		if pa := a.PodAffinity; pa != nil {
			if pi.requiredAffinity, err = compileTerms(p, pa.RequiredDuringSchedulingIgnoredDuringExecution, strict); err != nil {
				return nil, err
			}
			if pi.preferredAffinity, err = compileWeightedTerms(p, pa.PreferredDuringSchedulingIgnoredDuringExecution, strict); err != nil {
				return nil, err
			}
		}
		if pa := a.PodAntiAffinity; pa != nil {
			if pi.requiredAntiAffinity, err = compileTerms(p, pa.RequiredDuringSchedulingIgnoredDuringExecution, strict); err != nil {
				return nil, err
			}
			if pi.preferredAnti, err = compileWeightedTerms(p, pa.PreferredDuringSchedulingIgnoredDuringExecution, strict); err != nil {
				return nil, err
			}
		}
	}
	return pi, nil
}

// podHostPorts lists the host ports a pod binds. A pod on the host network
// binds its container ports on the host whether or not hostPort says so
// (the API's defaulting copies them; this does not rely on it).
func podHostPorts(spec *corev1.PodSpec) []hostPort {
	var out []hostPort
	add := func(c *corev1.Container) {
		for _, cp := range c.Ports {
			port := cp.HostPort
			if port <= 0 && spec.HostNetwork {
				port = cp.ContainerPort
			}
			if port <= 0 {
				continue
			}
			hp := hostPort{protocol: cp.Protocol, port: port, ip: cp.HostIP}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			if hp.ip == "" {
				hp.ip = wildcardIP
			}
			out = append(out, hp)
		}
	}
	for i := range spec.Containers {
		add(&spec.Containers[i])
	}
	// Sidecars run for the pod's whole life, so their ports are held too.
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) {
			add(&spec.InitContainers[i])
		}
	}
	return out
}

func compileTerms(p *corev1.Pod, terms []corev1.PodAffinityTerm, strict bool) ([]affinityTerm, error) {
	out := make([]affinityTerm, 0, len(terms))
	for i := range terms {
		t, err := compileTerm(p, &terms[i])
		if err != nil {
			if strict {
				return nil, err
			}
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func compileWeightedTerms(p *corev1.Pod, terms []corev1.WeightedPodAffinityTerm, strict bool) ([]weightedAffinityTerm, error) {
	out := make([]weightedAffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := compileTerm(p, &terms[i].PodAffinityTerm)
		if err != nil {
			if strict {
				return nil, err
			}
			continue
		}
		out = append(out, weightedAffinityTerm{affinityTerm: t, weight: int64(terms[i].Weight)})
	}
	return out, nil
}

// compileTerm compiles a term of pod p. With neither namespaces nor a
// namespaceSelector the term is about p's own namespace; an empty
// namespaceSelector ({}) selects every namespace. matchLabelKeys and
// mismatchLabelKeys are folded into the selector with p's own label values.
func compileTerm(p *corev1.Pod, t *corev1.PodAffinityTerm) (affinityTerm, error) {
	out := affinityTerm{namespaces: t.Namespaces, topologyKey: t.TopologyKey}
	if t.TopologyKey == "" {
		return out, fmt.Errorf("%w: pod %s: affinity term without topologyKey", ErrInvalidPod, podKey(p))
	}
	if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
		out.namespaces = []string{p.Namespace}
	}
	if t.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
		if err != nil {
			return out, fmt.Errorf("%w: pod %s: namespaceSelector: %v", ErrInvalidPod, podKey(p), err)
		}
		out.nsSelector = s
	}
	s, err := selectorWithKeys(t.LabelSelector, p.Labels, t.MatchLabelKeys, t.MismatchLabelKeys)
	if err != nil {
		return out, fmt.Errorf("%w: pod %s: labelSelector: %v", ErrInvalidPod, podKey(p), err)
	}
	out.selector = s
	out.key, out.values, out.indexed = requiredLabels(s)
	return out, nil
}

// selectorWithKeys compiles ls (nil selects nothing, as in Kubernetes) and
// adds "key in (own value)" for matchKeys and "key notin (own value)" for
// mismatchKeys, for the keys the owner pod carries.
func selectorWithKeys(ls *metav1.LabelSelector, own map[string]string, matchKeys, mismatchKeys []string) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, err
	}
	add := func(keys []string, op selection.Operator) error {
		for _, k := range keys {
			v, ok := own[k]
			if !ok {
				continue
			}
			r, err := labels.NewRequirement(k, op, []string{v})
			if err != nil {
				return err
			}
			s = s.Add(*r)
		}
		return nil
	}
	if err := add(matchKeys, selection.In); err != nil {
		return nil, err
	}
	if err := add(mismatchKeys, selection.NotIn); err != nil {
		return nil, err
	}
	return s, nil
}

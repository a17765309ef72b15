package sched

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Indexes that keep inter-pod constraints from walking the whole cluster.
//
// Affinity terms and spread constraints select pods by labels, and nearly
// always by an exact label (app=web). So the snapshot indexes pods by each
// of their labels, and existing pods' terms by the label they require; a
// cycle then visits the pods that carry the label (a Deployment's replicas)
// rather than every pod, and the terms that could select the incoming pod
// rather than every term. Selectors with no exact label (only NotIn,
// Exists, ...) fall back to the walk. Every candidate is still checked
// against the full selector and namespaces; the index only narrows.

// labelKV is one label: key=value.
type labelKV struct{ key, value string }

// requiredLabels returns an exact-label requirement of sel (key = value, or
// key in (values)) that every selected pod must meet, for use as an index
// key. ok is false when sel has none. A selector that selects nothing (a
// nil labelSelector) is indexed under no value at all, so it visits no pod.
func requiredLabels(sel labels.Selector) (key string, values []string, ok bool) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return "", nil, true
	}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			vals := r.Values().UnsortedList()
			slices.Sort(vals)
			return r.Key(), vals, true
		}
	}
	return "", nil, false
}

// termKind says what an existing pod's term is, for the term index.
type termKind uint8

const (
	termRequiredAnti termKind = iota
	termRequiredAffinity
	termPreferredAffinity
	termPreferredAnti
)

// hardPodAffinityWeight is what an existing pod's required affinity term
// that selects the incoming pod adds to the preferred inter-pod affinity
// score of the nodes in its domain: pods that must be near others attract
// those others a little, as in Kubernetes (whose default is also 1).
const hardPodAffinityWeight = 1

// termRef is an existing pod's term in the term index.
type termRef struct {
	pod    *podInfo
	kind   termKind
	weight int64
}

func (s *Snapshot) indexPod(pi *podInfo) {
	for k, v := range pi.labels {
		kv := labelKV{k, v}
		set := s.podsByLabel[kv]
		if set == nil {
			set = make(map[*podInfo]struct{})
			s.podsByLabel[kv] = set
		}
		set[pi] = struct{}{}
	}
	for i := range pi.requiredAntiAffinity {
		s.indexTerm(&pi.requiredAntiAffinity[i], termRef{pod: pi, kind: termRequiredAnti})
	}
	for i := range pi.requiredAffinity {
		s.indexTerm(&pi.requiredAffinity[i], termRef{pod: pi, kind: termRequiredAffinity, weight: hardPodAffinityWeight})
	}
	for i := range pi.preferredAffinity {
		t := &pi.preferredAffinity[i]
		s.indexTerm(&t.affinityTerm, termRef{pod: pi, kind: termPreferredAffinity, weight: t.weight})
	}
	for i := range pi.preferredAnti {
		t := &pi.preferredAnti[i]
		s.indexTerm(&t.affinityTerm, termRef{pod: pi, kind: termPreferredAnti, weight: t.weight})
	}
}

func (s *Snapshot) unindexPod(pi *podInfo) {
	for k, v := range pi.labels {
		kv := labelKV{k, v}
		if set := s.podsByLabel[kv]; set != nil {
			delete(set, pi)
			if len(set) == 0 {
				delete(s.podsByLabel, kv)
			}
		}
	}
	for i := range pi.requiredAntiAffinity {
		s.unindexTerm(&pi.requiredAntiAffinity[i])
	}
	for i := range pi.requiredAffinity {
		s.unindexTerm(&pi.requiredAffinity[i])
	}
	for i := range pi.preferredAffinity {
		s.unindexTerm(&pi.preferredAffinity[i].affinityTerm)
	}
	for i := range pi.preferredAnti {
		s.unindexTerm(&pi.preferredAnti[i].affinityTerm)
	}
}

func (s *Snapshot) indexTerm(t *affinityTerm, ref termRef) {
	if !t.indexed {
		s.unindexedTerms[t] = ref
		return
	}
	for _, v := range t.values {
		kv := labelKV{t.key, v}
		set := s.termsByLabel[kv]
		if set == nil {
			set = make(map[*affinityTerm]termRef)
			s.termsByLabel[kv] = set
		}
		set[t] = ref
	}
}

func (s *Snapshot) unindexTerm(t *affinityTerm) {
	if !t.indexed {
		delete(s.unindexedTerms, t)
		return
	}
	for _, v := range t.values {
		kv := labelKV{t.key, v}
		if set := s.termsByLabel[kv]; set != nil {
			delete(set, t)
			if len(set) == 0 {
				delete(s.termsByLabel, kv)
			}
		}
	}
}

// termsSelecting calls fn for every existing pod's term that may select a
// pod with labels lbls: those indexed under one of its labels, and the
// unindexed ones. fn still has to check the term.
func (s *Snapshot) termsSelecting(lbls map[string]string, fn func(t *affinityTerm, ref termRef)) {
	for k, v := range lbls {
		for t, ref := range s.termsByLabel[labelKV{k, v}] {
			fn(t, ref)
		}
	}
	for t, ref := range s.unindexedTerms {
		fn(t, ref)
	}
}

// podsWith calls fn for every pod that may match a selector whose required
// exact label is key in values, or, if !indexed, for every pod of a
// candidate node. fn still has to check the selector. Pods on ghost nodes
// are skipped: they are in no topology domain.
func (s *Snapshot) podsWith(indexed bool, key string, values []string, fn func(q *podInfo, ni *nodeInfo)) {
	if !indexed {
		for _, ni := range s.list {
			for _, q := range ni.pods {
				fn(q, ni)
			}
		}
		return
	}
	for _, v := range values {
		for q := range s.podsByLabel[labelKV{key, v}] {
			if ni := q.ni; ni.listIdx >= 0 {
				fn(q, ni)
			}
		}
	}
}

// domains returns, for a topology key, how many candidate nodes carry each
// of its values. It is built on first use for a key and kept up to date
// from then on, so spread constraints need not scan the nodes for their
// domains.
func (s *Snapshot) domains(key string) map[string]int {
	if d, ok := s.domainsByKey[key]; ok {
		return d
	}
	d := make(map[string]int)
	for _, ni := range s.list {
		if v, ok := ni.labels[key]; ok {
			d[v]++
		}
	}
	s.domainsByKey[key] = d
	return d
}

// trackDomains moves a candidate node's domains from its old labels to its
// new ones (nil for a node entering or leaving the candidates).
func (s *Snapshot) trackDomains(old, new map[string]string) {
	for key, d := range s.domainsByKey {
		ov, had := old[key]
		nv, has := new[key]
		if had == has && ov == nv {
			continue
		}
		if had {
			if d[ov]--; d[ov] <= 0 {
				delete(d, ov)
			}
		}
		if has {
			d[nv]++
		}
	}
}

package sched

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// prepare compiles pod p into the reusable cycle c and computes the
// cluster-wide state its filters and scores need. It runs with the
// snapshot locked.
func (s *Scheduler) prepare(c *cycle, p *corev1.Pod) error {
	pi, err := newPodInfo(p, true)
	if err != nil {
		return err
	}
	snap := s.snap
	*c = cycle{
		snap:        snap,
		pod:         pi,
		tolerations: p.Spec.Tolerations,
		taintReason: s.taintReason,
		steps:       c.steps[:0],
	}
	c.placement.selector = p.Spec.NodeSelector
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		na := a.NodeAffinity
		c.placement.required = compileNodeSelector(na.RequiredDuringSchedulingIgnoredDuringExecution)
		for _, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			if pt.Weight == 0 {
				continue
			}
			c.preferredNode = append(c.preferredNode, weightedNodeTerm{
				weight: int64(pt.Weight),
				term:   compileNodeSelectorTerm(&pt.Preference),
			})
		}
	}
	c.tolNotReady = toleratesAny(c.tolerations, &corev1.Taint{Key: TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}) ||
		toleratesAny(c.tolerations, &corev1.Taint{Key: TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute})
	c.tolUnschedulable = toleratesAny(c.tolerations, &corev1.Taint{Key: TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	c.volumes = snap.volumeSelectors(p)
	if err := c.prepareSpread(p); err != nil {
		return err
	}
	c.preparePodAffinity()
	c.preparePreferredPodAffinity()

	if c.placement.empty() && len(pi.ports) == 0 {
		c.fastBasic = true
	} else {
		c.steps = append(c.steps, stepUnschedulable, stepTaints, stepReady)
		if !c.placement.empty() {
			c.steps = append(c.steps, stepNodeAffinity)
		}
		if len(pi.ports) > 0 {
			c.steps = append(c.steps, stepHostPorts)
		}
		c.steps = append(c.steps, stepResources)
	}
	if len(c.volumes) > 0 {
		c.steps = append(c.steps, stepVolumes)
	}
	if len(c.hardSpread) > 0 {
		c.steps = append(c.steps, stepSpread)
	}
	if len(c.existingAnti) > 0 || len(pi.requiredAffinity) > 0 || len(pi.requiredAntiAffinity) > 0 {
		c.steps = append(c.steps, stepPodAffinity)
	}
	return nil
}

// volumeSelectors returns the required node affinity of every PV the pod's
// claims are bound to, for the claims and volumes the snapshot knows.
// Generic ephemeral volumes are found under the claim name Kubernetes gives
// them: <pod>-<volume>.
func (s *Snapshot) volumeSelectors(p *corev1.Pod) []*nodeSelector {
	var out []*nodeSelector
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		var claim string
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		case v.Ephemeral != nil:
			claim = p.Name + "-" + v.Name
		default:
			continue
		}
		pv := s.claims[p.Namespace+"/"+claim]
		if pv == "" {
			continue
		}
		if sel := s.volumes[pv]; sel != nil {
			out = append(out, sel)
		}
	}
	return out
}

func (c *cycle) nsLabels(ns string) map[string]string { return c.snap.namespaces[ns] }

// prepareSpread compiles the topology spread constraints and counts, for
// each, the matching pods per domain. Like Kubernetes, it counts pods of the
// incoming pod's namespace only, skips terminating pods, and only over
// nodes that carry every topology key of the constraint set and (by the
// default nodeAffinityPolicy Honor) that the pod's node selector and
// affinity admit. This walks every pod of the cluster, so it is the most
// expensive preparation; pods without constraints skip it.
func (c *cycle) prepareSpread(p *corev1.Pod) error {
	for i := range p.Spec.TopologySpreadConstraints {
		t := &p.Spec.TopologySpreadConstraints[i]
		sel, err := selectorWithKeys(t.LabelSelector, p.Labels, t.MatchLabelKeys, nil)
		if err != nil {
			return errInvalid(p, "topologySpreadConstraints", err)
		}
		sc := &spreadConstraint{
			maxSkew:       t.MaxSkew,
			key:           t.TopologyKey,
			selector:      sel,
			minDomains:    1,
			honorAffinity: t.NodeAffinityPolicy == nil || *t.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   t.NodeTaintsPolicy != nil && *t.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
			counts:        make(map[string]int),
		}
		if t.MinDomains != nil && *t.MinDomains > 0 {
			sc.minDomains = *t.MinDomains
		}
		if sel.Matches(labels.Set(p.Labels)) {
			sc.selfMatch = 1
		}
		sc.selKey, sc.selValues, sc.indexed = requiredLabels(sel)
		if t.WhenUnsatisfiable == corev1.ScheduleAnyway {
			c.softSpread = append(c.softSpread, sc)
		} else {
			c.hardSpread = append(c.hardSpread, sc)
		}
	}
	c.countSpread(c.hardSpread)
	c.countSpread(c.softSpread)
	return nil
}

func (c *cycle) countSpread(set []*spreadConstraint) {
	if len(set) == 0 {
		return
	}
	// The common case — one topology key, no node affinity to honour, no
	// taints to honour — takes its domains from the snapshot's domain
	// index and its pods from the label index. Otherwise every node is
	// visited to find the domains that count.
	fast := c.placement.empty()
	for _, sc := range set {
		fast = fast && sc.key == set[0].key && !sc.honorTaints
	}
	var numDomains map[*spreadConstraint]int
	if fast {
		d := c.snap.domains(set[0].key)
		numDomains = make(map[*spreadConstraint]int, len(set))
		for _, sc := range set {
			numDomains[sc] = len(d)
			c.countMatching(sc, func(ni *nodeInfo) bool { return true })
		}
	} else {
		numDomains = c.scanDomains(set)
	}
	for _, sc := range set {
		// Domains without a matching pod are absent from counts; if there
		// is any, the minimum is 0.
		sc.minMatch = 0
		if len(sc.counts) == numDomains[sc] {
			first := true
			for _, n := range sc.counts {
				if first || n < sc.minMatch {
					sc.minMatch, first = n, false
				}
			}
		}
		if int32(numDomains[sc]) < sc.minDomains {
			sc.minMatch = 0
		}
	}
}

// scanDomains visits every candidate node to find, per constraint, the
// domains that count (nodes with every key of the set that the constraint's
// node policies admit), then counts the matching pods on those nodes.
func (c *cycle) scanDomains(set []*spreadConstraint) map[*spreadConstraint]int {
	eligible := make(map[*spreadConstraint]map[*nodeInfo]bool, len(set))
	domains := make(map[*spreadConstraint]map[string]bool, len(set))
	for _, sc := range set {
		eligible[sc] = make(map[*nodeInfo]bool)
		domains[sc] = make(map[string]bool)
	}
nodes:
	for _, ni := range c.snap.list {
		for _, sc := range set {
			if _, ok := ni.labels[sc.key]; !ok {
				continue nodes
			}
		}
		for _, sc := range set {
			if sc.honorAffinity && !c.placement.matches(ni.node) {
				continue
			}
			if sc.honorTaints && !c.toleratesHardTaints(ni) {
				continue
			}
			eligible[sc][ni] = true
			domains[sc][ni.labels[sc.key]] = true
		}
	}
	out := make(map[*spreadConstraint]int, len(set))
	for _, sc := range set {
		c.countMatching(sc, func(ni *nodeInfo) bool { return eligible[sc][ni] })
		out[sc] = len(domains[sc])
	}
	return out
}

// countMatching counts, per domain, the pods sc selects on the nodes
// eligible admits: pods of the incoming pod's namespace, not terminating.
func (c *cycle) countMatching(sc *spreadConstraint, eligible func(*nodeInfo) bool) {
	c.snap.podsWith(sc.indexed, sc.selKey, sc.selValues, func(q *podInfo, ni *nodeInfo) {
		if q.namespace != c.pod.namespace || q.terminating {
			return
		}
		v, ok := ni.labels[sc.key]
		if !ok || !eligible(ni) || !sc.selector.Matches(labels.Set(q.labels)) {
			return
		}
		sc.counts[v]++
	})
}

func (c *cycle) toleratesHardTaints(ni *nodeInfo) bool {
	for i := range ni.hardTaints {
		if !toleratesAny(c.tolerations, &ni.hardTaints[i]) {
			return false
		}
	}
	return true
}

// preparePodAffinity counts, per topology domain, the existing pods that
// the required inter-pod terms are about: existing pods whose anti-affinity
// selects the incoming pod (found through the term index), and, if the
// incoming pod has required terms of its own, the pods those select (found
// through the pod index).
func (c *cycle) preparePodAffinity() {
	pi := c.pod
	snap := c.snap
	ownNS := c.nsLabels(pi.namespace)
	snap.termsSelecting(pi.labels, func(t *affinityTerm, ref termRef) {
		if ref.kind != termRequiredAnti {
			return
		}
		ni := ref.pod.ni
		if ni.listIdx < 0 {
			return
		}
		if v, ok := ni.labels[t.topologyKey]; ok && t.matches(pi.namespace, pi.labels, ownNS) {
			c.existingAnti = addCount(c.existingAnti, t.topologyKey, v, 1)
		}
	})
	if terms := pi.requiredAffinity; len(terms) > 0 {
		// A pod counts if it matches every term; drive by the first.
		t0 := &terms[0]
		snap.podsWith(t0.indexed, t0.key, t0.values, func(q *podInfo, ni *nodeInfo) {
			if !matchesAll(terms, q.namespace, q.labels, c.nsLabels(q.namespace)) {
				return
			}
			for i := range terms {
				if v, ok := ni.labels[terms[i].topologyKey]; ok {
					c.affinityCounts = addCount(c.affinityCounts, terms[i].topologyKey, v, 1)
				}
			}
		})
		// The first pod of a group whose members must be together has
		// nobody to be with; Kubernetes lets it go anywhere (that has the
		// topology labels) if it matches its own terms.
		c.affinityNowhere = len(c.affinityCounts) == 0 && matchesAll(terms, pi.namespace, pi.labels, ownNS)
	}
	for i := range pi.requiredAntiAffinity {
		t := &pi.requiredAntiAffinity[i]
		snap.podsWith(t.indexed, t.key, t.values, func(q *podInfo, ni *nodeInfo) {
			if v, ok := ni.labels[t.topologyKey]; ok && t.matches(q.namespace, q.labels, c.nsLabels(q.namespace)) {
				c.antiCounts = addCount(c.antiCounts, t.topologyKey, v, 1)
			}
		})
	}
}

func matchesAll(terms []affinityTerm, ns string, lbls, nsLabels map[string]string) bool {
	for i := range terms {
		if !terms[i].matches(ns, lbls, nsLabels) {
			return false
		}
	}
	return true
}

// preparePreferredPodAffinity sums, per topology domain, the weights of
// preferred inter-pod terms: the incoming pod's own terms over the pods they
// select, and, symmetrically, existing pods' preferred terms that select the
// incoming pod (their required affinity too, with hardPodAffinityWeight).
// Anti-affinity weighs negatively.
func (c *cycle) preparePreferredPodAffinity() {
	pi := c.pod
	snap := c.snap
	add := func(key, value string, w int64) {
		for i := range c.preferredPods {
			if c.preferredPods[i].key == key {
				c.preferredPods[i].values[value] += w
				return
			}
		}
		c.preferredPods = append(c.preferredPods, topologyWeights{key: key, values: map[string]int64{value: w}})
	}
	own := func(t *affinityTerm, w int64) {
		snap.podsWith(t.indexed, t.key, t.values, func(q *podInfo, ni *nodeInfo) {
			if v, ok := ni.labels[t.topologyKey]; ok && t.matches(q.namespace, q.labels, c.nsLabels(q.namespace)) {
				add(t.topologyKey, v, w)
			}
		})
	}
	for i := range pi.preferredAffinity {
		own(&pi.preferredAffinity[i].affinityTerm, pi.preferredAffinity[i].weight)
	}
	for i := range pi.preferredAnti {
		own(&pi.preferredAnti[i].affinityTerm, -pi.preferredAnti[i].weight)
	}
	ownNS := c.nsLabels(pi.namespace)
	snap.termsSelecting(pi.labels, func(t *affinityTerm, ref termRef) {
		if ref.kind == termRequiredAnti {
			return
		}
		ni := ref.pod.ni
		if ni.listIdx < 0 {
			return
		}
		if v, ok := ni.labels[t.topologyKey]; ok && t.matches(pi.namespace, pi.labels, ownNS) {
			w := ref.weight
			if ref.kind == termPreferredAnti {
				w = -w
			}
			add(t.topologyKey, v, w)
		}
	})
}

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
		c.steps = append(c.steps, stepBasic)
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
nodes:
	for _, ni := range c.snap.list {
		lbls := ni.labels
		for _, sc := range set {
			if _, ok := lbls[sc.key]; !ok {
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
			n := 0
			for _, q := range ni.pods {
				if q.namespace == c.pod.namespace && !q.terminating && sc.selector.Matches(labels.Set(q.labels)) {
					n++
				}
			}
			sc.counts[lbls[sc.key]] += n
		}
	}
	for _, sc := range set {
		first := true
		for _, n := range sc.counts {
			if first || n < sc.minMatch {
				sc.minMatch = n
				first = false
			}
		}
		if int32(len(sc.counts)) < sc.minDomains {
			sc.minMatch = 0
		}
	}
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
// selects the incoming pod (from the snapshot's index, so only those pods
// are visited), and, if the incoming pod has required terms of its own, the
// pods those select (a walk over every pod).
func (c *cycle) preparePodAffinity() {
	pi := c.pod
	ownNS := c.nsLabels(pi.namespace)
	for _, q := range c.snap.antiAffinityPods {
		ni := c.snap.nodes[q.nodeName]
		if ni == nil || ni.node == nil {
			continue
		}
		for i := range q.requiredAntiAffinity {
			t := &q.requiredAntiAffinity[i]
			if v, ok := ni.labels[t.topologyKey]; ok && t.matches(pi.namespace, pi.labels, ownNS) {
				c.existingAnti = addCount(c.existingAnti, t.topologyKey, v, 1)
			}
		}
	}
	if len(pi.requiredAffinity)+len(pi.requiredAntiAffinity) == 0 {
		return
	}
	for _, ni := range c.snap.list {
		lbls := ni.labels
		for _, q := range ni.pods {
			nsl := c.nsLabels(q.namespace)
			if len(pi.requiredAffinity) > 0 && matchesAll(pi.requiredAffinity, q.namespace, q.labels, nsl) {
				for i := range pi.requiredAffinity {
					t := &pi.requiredAffinity[i]
					if v, ok := lbls[t.topologyKey]; ok {
						c.affinityCounts = addCount(c.affinityCounts, t.topologyKey, v, 1)
					}
				}
			}
			for i := range pi.requiredAntiAffinity {
				t := &pi.requiredAntiAffinity[i]
				if v, ok := lbls[t.topologyKey]; ok && t.matches(q.namespace, q.labels, nsl) {
					c.antiCounts = addCount(c.antiCounts, t.topologyKey, v, 1)
				}
			}
		}
	}
	// The first pod of a group whose members must be together has nobody
	// to be with; Kubernetes lets it go anywhere (that has the topology
	// labels) if it matches its own terms.
	c.affinityNowhere = len(pi.requiredAffinity) > 0 && len(c.affinityCounts) == 0 &&
		matchesAll(pi.requiredAffinity, pi.namespace, pi.labels, ownNS)
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
// incoming pod. Anti-affinity weighs negatively.
func (c *cycle) preparePreferredPodAffinity() {
	pi := c.pod
	add := func(key, value string, w int64) {
		if c.preferredPods == nil {
			c.preferredPods = make(map[string]map[string]int64)
		}
		inner := c.preferredPods[key]
		if inner == nil {
			inner = make(map[string]int64)
			c.preferredPods[key] = inner
		}
		inner[value] += w
	}
	if len(pi.preferredAffinity)+len(pi.preferredAnti) > 0 {
		for _, ni := range c.snap.list {
			lbls := ni.labels
			for _, q := range ni.pods {
				nsl := c.nsLabels(q.namespace)
				for i := range pi.preferredAffinity {
					t := &pi.preferredAffinity[i]
					if v, ok := lbls[t.topologyKey]; ok && t.matches(q.namespace, q.labels, nsl) {
						add(t.topologyKey, v, t.weight)
					}
				}
				for i := range pi.preferredAnti {
					t := &pi.preferredAnti[i]
					if v, ok := lbls[t.topologyKey]; ok && t.matches(q.namespace, q.labels, nsl) {
						add(t.topologyKey, v, -t.weight)
					}
				}
			}
		}
	}
	ownNS := c.nsLabels(pi.namespace)
	for _, q := range c.snap.preferredPods {
		ni := c.snap.nodes[q.nodeName]
		if ni == nil || ni.node == nil {
			continue
		}
		for i := range q.preferredAffinity {
			t := &q.preferredAffinity[i]
			if v, ok := ni.labels[t.topologyKey]; ok && t.matches(pi.namespace, pi.labels, ownNS) {
				add(t.topologyKey, v, t.weight)
			}
		}
		for i := range q.preferredAnti {
			t := &q.preferredAnti[i]
			if v, ok := ni.labels[t.topologyKey]; ok && t.matches(pi.namespace, pi.labels, ownNS) {
				add(t.topologyKey, v, -t.weight)
			}
		}
	}
}

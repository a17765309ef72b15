package sched

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
)

// Weights of the scores in the weighted sum. Each score is 0–100 on every
// node; a weight of 0 turns a score off.
type Weights struct {
	// LeastAllocated favours nodes with the most cpu and memory left after
	// placing the pod: it spreads load.
	LeastAllocated int64
	// BalancedAllocation favours nodes whose cpu and memory would be used in
	// equal fractions, so neither is stranded.
	BalancedAllocation int64
	// NodeAffinity is the preferred node affinity (summed term weights).
	NodeAffinity int64
	// TaintToleration disfavours untolerated PreferNoSchedule taints.
	TaintToleration int64
	// InterPodAffinity is the preferred pod affinity and anti-affinity, the
	// pod's own terms and, symmetrically, existing pods' terms about it.
	InterPodAffinity int64
	// TopologySpread favours the emptier domains of ScheduleAnyway
	// topologySpreadConstraints.
	TopologySpread int64
	// OwnerSpread spreads the pods of one controller (ownerReferences with
	// controller=true, compared by uid) across nodes.
	OwnerSpread int64
}

// DefaultWeights are kube-scheduler's default plugin weights, with the owner
// spreading (which Kubernetes now does through default spread constraints,
// weight 2) at the same weight.
func DefaultWeights() Weights {
	return Weights{
		LeastAllocated:     1,
		BalancedAllocation: 1,
		NodeAffinity:       2,
		TaintToleration:    3,
		InterPodAffinity:   2,
		TopologySpread:     2,
		OwnerSpread:        2,
	}
}

// Config tunes the scheduler.
type Config struct {
	// PercentageOfNodesToScore bounds the search: once that share of the
	// nodes has been found feasible, filtering stops and only those are
	// scored. 0 means adaptive, as in kube-scheduler: 50% minus one point per
	// 125 nodes, never below 5% (10% of 5,000 nodes). 100 means every node.
	PercentageOfNodesToScore int
	// MinFeasibleNodesToFind is the floor of that search: clusters smaller
	// than this are always searched in full. Kubernetes uses 100.
	MinFeasibleNodesToFind int
	// Weights of the scores.
	Weights Weights
	// Seed of the tie-breaking random source: equal seeds and equal inputs
	// give equal placements.
	Seed uint64
	// RedactTaints words taint rejections as "node(s) had untolerated
	// taint(s)", without the taint, as kube-scheduler ≥ 1.32 does. By
	// default the first untolerated taint is named, which is what users
	// need to act on: "node(s) had untolerated taint {key: value}".
	RedactTaints bool
}

// DefaultConfig returns the configuration kube-scheduler would run with.
func DefaultConfig() Config {
	return Config{
		MinFeasibleNodesToFind: 100,
		Weights:                DefaultWeights(),
		Seed:                   1,
	}
}

// maxWeight keeps the weighted sum far from overflow.
const maxWeight = 1 << 20

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("%w: percentageOfNodesToScore %d is not within 0..100", ErrInvalidConfig, c.PercentageOfNodesToScore)
	}
	if c.MinFeasibleNodesToFind < 1 {
		return fmt.Errorf("%w: minFeasibleNodesToFind %d must be at least 1", ErrInvalidConfig, c.MinFeasibleNodesToFind)
	}
	w := c.Weights
	for _, x := range []struct {
		name string
		v    int64
	}{
		{"leastAllocated", w.LeastAllocated},
		{"balancedAllocation", w.BalancedAllocation},
		{"nodeAffinity", w.NodeAffinity},
		{"taintToleration", w.TaintToleration},
		{"interPodAffinity", w.InterPodAffinity},
		{"topologySpread", w.TopologySpread},
		{"ownerSpread", w.OwnerSpread},
	} {
		if x.v < 0 || x.v > maxWeight {
			return fmt.Errorf("%w: weight %s %d is not within 0..%d", ErrInvalidConfig, x.name, x.v, maxWeight)
		}
	}
	return nil
}

// Scheduler places pods on the nodes of a Snapshot. It holds the snapshot's
// lock for each decision, so its methods may be called from any goroutine,
// though one scheduling loop is the intended caller; the decisions are
// serialized either way, which is what makes a batch safe from
// overcommitting a node.
type Scheduler struct {
	cfg  Config
	snap *Snapshot
	rng  *rand.PCG

	// nextStart rotates where the node walk begins, so that sampling a
	// share of the nodes visits them all in turn (Kubernetes does the same).
	nextStart int

	// Reused between cycles, so the steady state allocates little.
	c       cycle
	reasons []string
	rows    []scoreRow
	taints  map[taintKV]string
}

type taintKV struct{ key, value string }

// New returns a scheduler over snap.
func New(snap *Snapshot, cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scheduler{
		cfg:    cfg,
		snap:   snap,
		rng:    rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15),
		taints: make(map[taintKV]string),
	}, nil
}

// Result is a placement decision.
type Result struct {
	// Node is the chosen node.
	Node string
	// Score is its weighted score.
	Score int64
	// Evaluated is how many nodes were filtered, Feasible how many passed.
	Evaluated, Feasible int
}

// Placement is the outcome for one pod of a batch: a Result, or Err (a
// *FitError when the pod fits nowhere).
type Placement struct {
	Pod *corev1.Pod
	Result
	Err error
}

// Snapshot returns the snapshot the scheduler places pods in.
func (s *Scheduler) Snapshot() *Snapshot { return s.snap }

// Schedule picks a node for pod p without recording the decision; the
// caller assumes it (Snapshot.AssumePod) or binds and lets the informer
// add it. It returns a *FitError if no node fits, ErrNoNodesAvailable if
// there are no nodes, ErrPodAlreadyBound, ErrSchedulingGated,
// ErrUnsupported or ErrInvalidPod for pods it must not or cannot schedule.
func (s *Scheduler) Schedule(p *corev1.Pod) (Result, error) {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	return s.scheduleLocked(p)
}

// ScheduleBatch schedules pods in order, assuming each placement in the
// snapshot before deciding the next, so a burst of pods never overcommits a
// node: the second pod sees the first one's requests, ports and owner. The
// caller binds the placements and calls RemovePod for those whose binding
// fails.
func (s *Scheduler) ScheduleBatch(pods []*corev1.Pod) []Placement {
	out := make([]Placement, len(pods))
	for i, p := range pods {
		out[i].Pod = p
		s.snap.mu.Lock()
		res, err := s.scheduleLocked(p)
		if err == nil {
			pi := s.c.pod
			pi.nodeName = res.Node
			s.snap.addPodInfoLocked(pi)
		}
		s.snap.mu.Unlock()
		out[i].Result, out[i].Err = res, err
	}
	return out
}

// walkStride is the step of the walk over the n candidate nodes when about
// want of them are wanted. Nodes tend to be listed in the order they
// registered, often zone by zone or rack by rack; a window of consecutive
// nodes would then be one zone, and zone spreading and zone preferences
// would see no choice. Striding by about n/want spreads the sample over the
// whole list (Kubernetes interleaves zones for the same reason). The stride
// is coprime with n, so the walk still visits every node once before
// repeating, and a pod that fits nowhere is still tried on all of them.
// A constant stride keeps the hot rows' access pattern prefetchable.
func walkStride(n, want int) int {
	if want >= n || want <= 0 {
		return 1
	}
	stride := max(n/want, 1)
	for gcd(stride, n) != 1 {
		stride++
	}
	return stride
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// numFeasibleNodesToFind is how many feasible nodes to look for among n.
func (s *Scheduler) numFeasibleNodesToFind(n int) int {
	if n < s.cfg.MinFeasibleNodesToFind {
		return n
	}
	pct := s.cfg.PercentageOfNodesToScore
	if pct == 0 {
		pct = max(50-n/125, 5)
	}
	if pct >= 100 {
		return n
	}
	return max(n*pct/100, s.cfg.MinFeasibleNodesToFind)
}

func (s *Scheduler) scheduleLocked(p *corev1.Pod) (Result, error) {
	if p.Spec.NodeName != "" {
		return Result{}, fmt.Errorf("%w: %s on %s", ErrPodAlreadyBound, podKey(p), p.Spec.NodeName)
	}
	if len(p.Spec.ResourceClaims) > 0 {
		return Result{}, fmt.Errorf("%w: pod %s: spec.resourceClaims (dynamic resource allocation)", ErrUnsupported, podKey(p))
	}
	if len(p.Spec.SchedulingGates) > 0 {
		return Result{}, fmt.Errorf("%w: %s waits for %s", ErrSchedulingGated, podKey(p), p.Spec.SchedulingGates[0].Name)
	}
	list := s.snap.list
	n := len(list)
	if n == 0 {
		return Result{}, ErrNoNodesAvailable
	}
	c := &s.c
	if err := s.prepare(c, p); err != nil {
		return Result{}, err
	}

	want := s.numFeasibleNodesToFind(n)
	hot := s.snap.hot
	sc := s.newScoring(c)
	rows := s.rows[:0]
	var diag map[string]int
	idx := s.nextStart % n
	stride := walkStride(n, want)
	evaluated := 0
	for evaluated < n && len(rows) < want {
		pos, ni, h := idx, list[idx], &hot[idx]
		if idx += stride; idx >= n {
			idx -= n
		}
		evaluated++
		reasons := c.filter(ni, h, s.reasons[:0])
		if len(reasons) == 0 {
			// Scored right away, while the node is in cache.
			rows = append(rows, scoreRow{})
			sc.raw(&rows[len(rows)-1], c, ni, h, pos)
			continue
		}
		if diag == nil {
			diag = make(map[string]int)
		}
		for _, r := range reasons {
			diag[r]++
		}
		s.reasons = reasons
	}
	s.nextStart = idx
	s.rows = rows
	if len(rows) == 0 {
		return Result{}, &FitError{Pod: podKey(p), NumAllNodes: n, Reasons: diag}
	}
	best, score := s.selectHost(&sc, rows)
	return Result{Node: best.name, Score: score, Evaluated: evaluated, Feasible: len(rows)}, nil
}

// scoreRow holds one feasible node's scores before normalization.
type scoreRow struct {
	ni        *nodeInfo
	resources int64 // weighted least + balanced allocation, already 0–100 each
	nodeAff   int64
	taints    int64
	podAff    int64
	spread    int64 // -1: the node lacks a spread topology key
	owner     int64
}

// scoring says which scores apply to this cycle's pod; the others are
// neither computed nor normalized.
type scoring struct {
	w                                            *Weights
	owner                                        *ownerState // of the pod's owner
	nodeAff, taints, podAff, spread, spreadOwner bool

	// Extremes over the rows, for normalization, kept as rows are added.
	maxNodeAff, maxTaints, maxOwner int64
	minPodAff, maxPodAff            int64
	minSpread, maxSpread            int64
}

func (s *Scheduler) newScoring(c *cycle) scoring {
	w := &s.cfg.Weights
	// An owner no pod in the snapshot has scores the same everywhere.
	owner := s.snap.owners[c.pod.owner]
	return scoring{
		w:         w,
		owner:     owner,
		minPodAff: math.MaxInt64, maxPodAff: math.MinInt64,
		minSpread: math.MaxInt64, maxSpread: math.MinInt64,
		nodeAff:     w.NodeAffinity > 0 && len(c.preferredNode) > 0,
		taints:      w.TaintToleration > 0,
		podAff:      w.InterPodAffinity > 0 && len(c.preferredPods) > 0,
		spread:      w.TopologySpread > 0 && len(c.softSpread) > 0,
		spreadOwner: w.OwnerSpread > 0 && owner != nil,
	}
}

// raw computes a feasible node's scores before normalization into r.
func (sc *scoring) raw(r *scoreRow, c *cycle, ni *nodeInfo, h *nodeHot, pos int) {
	w, pi := sc.w, c.pod
	r.ni, r.spread = ni, -1
	r.resources = w.LeastAllocated*leastAllocated(h, pi) + w.BalancedAllocation*balancedAllocation(h, pi)
	if sc.nodeAff {
		for i := range c.preferredNode {
			if c.preferredNode[i].term.matches(ni.node) {
				r.nodeAff += c.preferredNode[i].weight
			}
		}
		sc.maxNodeAff = max(sc.maxNodeAff, r.nodeAff)
	}
	if sc.taints && h.flags&hotSoftTaints != 0 {
		for i := range ni.softTaints {
			if !toleratesAny(c.tolerations, &ni.softTaints[i]) {
				r.taints++
			}
		}
		sc.maxTaints = max(sc.maxTaints, r.taints)
	}
	if sc.podAff {
		for i := range c.preferredPods {
			if v, ok := ni.labels[c.preferredPods[i].key]; ok {
				r.podAff += c.preferredPods[i].values[v]
			}
		}
		sc.minPodAff, sc.maxPodAff = min(sc.minPodAff, r.podAff), max(sc.maxPodAff, r.podAff)
	}
	if sc.spread {
		if r.spread = spreadRaw(c.softSpread, ni); r.spread >= 0 {
			sc.minSpread, sc.maxSpread = min(sc.minSpread, r.spread), max(sc.maxSpread, r.spread)
		}
	}
	if sc.spreadOwner {
		r.owner = int64(sc.owner.count(ni, pos))
		sc.maxOwner = max(sc.maxOwner, r.owner)
	}
}

// selectHost normalizes the scores over the feasible nodes, sums them with
// their weights and returns the best node, breaking ties by reservoir
// sampling with the seeded source: each of k equal best nodes is kept with
// probability 1/k, without collecting them.
func (s *Scheduler) selectHost(sc *scoring, rows []scoreRow) (*nodeInfo, int64) {
	w := sc.w
	maxNodeAff, maxTaints, maxOwner := sc.maxNodeAff, sc.maxTaints, sc.maxOwner
	minPodAff, maxPodAff := sc.minPodAff, sc.maxPodAff
	minSpread, maxSpread := sc.minSpread, sc.maxSpread
	ownerPct := 100 / float64(max(maxOwner, 1))
	var best *nodeInfo
	bestScore := int64(math.MinInt64)
	ties := 0
	for i := range rows {
		r := &rows[i]
		total := r.resources
		if sc.nodeAff && maxNodeAff > 0 {
			total += w.NodeAffinity * (r.nodeAff * 100 / maxNodeAff)
		}
		if sc.taints {
			// Fewer untolerated PreferNoSchedule taints is better.
			score := int64(100)
			if maxTaints > 0 {
				score = 100 - r.taints*100/maxTaints
			}
			total += w.TaintToleration * score
		}
		if sc.podAff && maxPodAff > minPodAff {
			total += w.InterPodAffinity * ((r.podAff - minPodAff) * 100 / (maxPodAff - minPodAff))
		}
		if sc.spread && r.spread >= 0 {
			// Fewer matching pods in the node's domains is better; a node
			// outside the topology scores 0.
			score := int64(100)
			if maxSpread > minSpread {
				score = (maxSpread - r.spread) * 100 / (maxSpread - minSpread)
			}
			total += w.TopologySpread * score
		}
		if sc.spreadOwner {
			score := int64(100)
			if maxOwner > 0 {
				score = floor(float64(maxOwner-r.owner) * ownerPct)
			}
			total += w.OwnerSpread * score
		}
		switch {
		case total > bestScore:
			best, bestScore, ties = r.ni, total, 1
		case total == bestScore:
			ties++
			// The modulo bias over 2^64 is immaterial here.
			if s.rng.Uint64()%uint64(ties) == 0 {
				best = r.ni
			}
		}
	}
	return best, bestScore
}

// spreadRaw is the number of matching pods (the incoming one included) in
// the node's domains, summed over the soft constraints; -1 if the node lacks
// a topology key.
func spreadRaw(set []*spreadConstraint, ni *nodeInfo) int64 {
	var raw int64
	for _, sc := range set {
		v, ok := ni.labels[sc.key]
		if !ok {
			return -1
		}
		raw += int64(sc.counts[v] + sc.selfMatch)
	}
	return raw
}

// leastAllocated is 0–100: the mean, over cpu and memory, of the percentage
// left free once the pod is placed (scoring requests: request-less
// containers count as 100m and 200Mi).
func leastAllocated(h *nodeHot, pi *podInfo) int64 {
	cpu := 100 - usedPercent(h.nzCPU+pi.nonZero.milliCPU, h.pctCPU)
	mem := 100 - usedPercent(h.nzMem+pi.nonZero.memory, h.pctMem)
	return (floor(cpu) + floor(mem)) / 2
}

// balancedAllocation is 0–100: 100 minus the standard deviation (in
// percent) of the cpu and memory fractions used once the pod is placed. For
// two resources the deviation is half their difference.
func balancedAllocation(h *nodeHot, pi *podInfo) int64 {
	cpu := usedPercent(h.nzCPU+pi.nonZero.milliCPU, h.pctCPU)
	mem := usedPercent(h.nzMem+pi.nonZero.memory, h.pctMem)
	return floor(100 - math.Abs(cpu-mem)/2)
}

// usedPercent is requested as a percentage of the capacity whose 100/x is
// pct, capped at 100 (a node without the resource is full).
func usedPercent(requested int64, pct float64) float64 {
	if p := float64(requested) * pct; pct > 0 && p < 100 {
		return p
	}
	return 100
}

// floor truncates a score, forgiving the rounding error of the reciprocal
// (3 × 100/3 must be 100, not 99).
func floor(x float64) int64 { return int64(x + 1e-9) }

// taintReason words the rejection for taint t, caching the string so a
// cluster of identically tainted nodes does not format it per node.
func (s *Scheduler) taintReason(t *corev1.Taint) string {
	if s.cfg.RedactTaints {
		return ReasonUntoleratedTaints
	}
	k := taintKV{t.Key, t.Value}
	if r, ok := s.taints[k]; ok {
		return r
	}
	if len(s.taints) > 4096 {
		clear(s.taints)
	}
	r := ReasonUntoleratedTaint(t.Key, t.Value)
	s.taints[k] = r
	return r
}

func errInvalid(p *corev1.Pod, field string, err error) error {
	return fmt.Errorf("%w: pod %s: %s: %v", ErrInvalidPod, podKey(p), field, err)
}

// IsUnschedulable reports whether err means the pod fits on no node now
// (and may later, when the cluster changes): a FitError or no nodes at all.
func IsUnschedulable(err error) bool {
	var fe *FitError
	return errors.As(err, &fe) || errors.Is(err, ErrNoNodesAvailable)
}

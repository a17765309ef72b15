// Package sched is Skiff's scheduler: the algorithm that, given a model of
// the cluster and a pod, picks the node the pod should run on or says
// precisely why there is none; and the loop (Runner) that drives it — watch
// unbound pods, place them, bind them with a compare-and-swap, report the
// ones that fit nowhere. The algorithm is pure and synchronous — no API
// client, no goroutines, no clocks — so that it can be tested exhaustively.
//
// # Vocabulary
//
//   - Snapshot: the scheduler's model of the cluster. Nodes, and per node
//     the aggregate of the pods bound to it (requested cpu, memory,
//     ephemeral storage and extended resources, pod count, host ports,
//     pods per owner, the pods themselves for affinity). It is maintained
//     incrementally from watch events (AddNode, UpdateNode, RemoveNode,
//     AddPod, RemovePod), never rebuilt, so a decision costs the same on a
//     cluster of 10 nodes or of 5,000 nodes full of pods.
//   - Assume: record a decision in the snapshot before the binding is
//     written (Snapshot.AssumePod, or ScheduleBatch which does it for each
//     pod), so the next decision sees the node's resources taken. The
//     informer's event for the bound pod later replaces the assumption; a
//     failed binding is forgotten with RemovePod.
//   - Cycle: one attempt to place one pod. It compiles the pod once
//     (requests as integers, selectors, tolerations, affinity terms) and
//     computes the cluster-wide counts its constraints need (pods per
//     topology domain for inter-pod affinity and spread), then visits nodes.
//   - Filter step: a predicate on one node that rejects it with a reason
//     worded as kube-scheduler words it. Score: a 0–100 value per node,
//     weighted and summed.
//   - FitError: "0/N nodes are available: ..." — per reason, the number of
//     nodes rejected for it, rendered exactly as Kubernetes renders its
//     FailedScheduling message. MayFitAfter tells the loop which kinds of
//     cluster change (ClusterEvent) could make the pod fit, so it requeues
//     only those pods.
//
// # The pipeline, and why it is shaped so
//
// A cycle is a pipeline in the manner of Nomad's scheduler stack: a
// sequence of small filter steps, then scores, then a selection.
//
// Filters, in order (kube-scheduler's default order, which is also
// cheapest first):
//
//  1. NodeUnschedulable: spec.unschedulable (cordon), unless tolerated.
//  2. TaintToleration: NoSchedule and NoExecute taints.
//  3. NodeReady: the Ready condition, unless the pod tolerates not-ready
//     (daemons). After taints, so a node the lifecycle controller has
//     tainted reports the taint, as in Kubernetes.
//  4. NodeAffinity: spec.nodeSelector and required node affinity
//     (In, NotIn, Exists, DoesNotExist, Gt, Lt; matchFields metadata.name).
//  5. NodePorts: host port conflicts (protocol, port, IP with wildcard).
//  6. NodeResourcesFit: pod count, then cpu, memory, ephemeral storage and
//     extended resources against allocatable minus requested. A pod's
//     request is the sum of its containers, or its largest init container
//     if more (sidecars counted throughout), or its pod-level resources,
//     plus overhead.
//  7. VolumeNodeAffinity: the node affinity of the PVs its claims are
//     bound to, when the snapshot was given claims and volumes.
//  8. PodTopologySpread: DoNotSchedule constraints (maxSkew, minDomains,
//     nodeAffinityPolicy, nodeTaintsPolicy, matchLabelKeys).
//  9. InterPodAffinity: existing pods' required anti-affinity against the
//     incoming pod, then its own required affinity and anti-affinity, per
//     topologyKey (namespaces, namespaceSelector, matchLabelKeys).
//
// Steps a pod cannot fail are not in its pipeline at all; a plain pod runs
// steps 1–3 and 6 fused into one call. The first failing step decides the
// node's reason, which is why the order follows Kubernetes: users read the
// same messages. Steps 8 and 9 need counts over every pod of the cluster;
// they are computed once per cycle, before the node loop, and only for pods
// that have such constraints (or when some existing pod has required
// anti-affinity, in which case only those pods are visited, from an index).
//
// Scores, each 0–100, weighted (DefaultWeights are kube-scheduler's):
// least allocated, balanced allocation (both on requests, with Kubernetes'
// 100m/200Mi for request-less containers), preferred node affinity,
// PreferNoSchedule taints, preferred pod affinity and anti-affinity (also
// existing pods' preferred terms about the incoming pod), ScheduleAnyway
// topology spread, and spreading of pods with the same controller owner.
// Scores that need the whole candidate set (maximum counts, min–max) are
// normalized after the node loop.
//
// Selection takes the highest total. Ties are broken by reservoir sampling
// with a random source seeded from Config.Seed, so equal inputs give equal
// placements, and equal nodes share the load.
//
// # Sampling: why not every node
//
// On a large cluster, checking every node for every pod buys little: any of
// the first few hundred feasible nodes is nearly as good. Like
// kube-scheduler's percentageOfNodesToScore, a cycle stops filtering once
// it has found a share of the nodes feasible — adaptively 50% minus one
// point per 125 nodes, at least 5%, and never fewer than 100 nodes
// (MinFeasibleNodesToFind): 420 of 1,000 nodes, 500 of 5,000. The walk
// strides over the node list (by about n/wanted, coprime with n) so that a
// sample spans zones even when nodes registered zone by zone, and each
// cycle starts where the previous one stopped, so all nodes are visited in
// turn.
// A pod that fits nowhere has been tried on every node, so a FitError
// always covers the whole cluster. Each feasible node is scored right after
// it passes the filters, while it is still in cache.
//
// # What makes it fast
//
//   - Per node, the numbers a plain pod's filters and scores read (free
//     cpu, memory, storage and pod slots; flags for readiness, cordon and
//     taints; reciprocals of allocatable) are copied into one 64-byte row of
//     a dense array, refreshed on every change. The node loop walks that
//     array sequentially and touches the node itself only for what is rare.
//   - Scores multiply by precomputed reciprocals rather than divide.
//   - Pods of one owner per node are found through a presence bitset before
//     a map, since most nodes hold none of a given owner's pods.
//   - Inter-pod terms and spread constraints select pods by an exact label
//     nearly always (app=web), so pods are indexed by label and existing
//     pods' terms by the label they require: a cycle visits a Deployment's
//     replicas, not the cluster. The domains of a topology key are indexed
//     too. Selectors without an exact label fall back to a full walk.
//
// BenchmarkSchedule and BenchmarkScheduleBatch10k measure it; make
// bench-sched (TestBenchSchedE2E) measures the loop end to end through the
// API on hollow nodes (hollow_test.go), which report the pods bound to them
// Running as agents do.
//
// # The loop (Runner)
//
// Everything above is pure. Runner (runner.go) is the one part that talks
// to the cluster, through the client like any outside program: informers
// on Pods, Nodes, Namespaces and volumes feed the Snapshot; unbound pods
// naming this scheduler (default-scheduler or skiff) go through a work
// queue; the loop takes what is queued as one batch (ScheduleBatch, each
// pod assumed before the next) and hands the placements to a few binders.
// A binder takes every placement waiting for it (up to BindBatch) and
// writes them with one Bind call of the API server, so under load the
// placements decided while earlier calls were in flight travel together,
// and a lone pod is bound at once. Each binding in the call is a
// compare-and-swap of its own on the pod's uid and the resourceVersion the
// decision saw, so two schedulers overlapping across a leadership change
// cannot both bind a pod, and one pod that changed fails alone. The API
// server writes the pods of a call together (one Raft append), each at its
// own revision. Against an API server without Bind, the binders fall back
// to one Update per pod. A failed binding forgets its assumption and
// requeues the pod.
//
// Profiles of make bench-sched show why the bindings, not the algorithm,
// were the thing to batch: a decision at 5,000 nodes costs tens of
// microseconds, while an Update of a whole pod cost the API server a
// strict decode, defaulting, validation and several encodings, and the
// client an encoding and a decode, per pod.
//
// A pod that fits nowhere gets PodScheduled=False (reason Unschedulable,
// the FitError message) and a FailedScheduling event, and waits aside until
// a cluster change its reasons say may help (FitError.MayFitAfter; node
// heartbeats that change nothing a filter reads do not count), or a periodic
// retry of all of them. Events are best effort: written by a small pool,
// dropped and counted when it falls behind, never slowing the bindings.
//
// # Not here
//
// Not implemented:
// preemption, image locality, volume count limits and zones, binding of
// unbound claims (a claim the snapshot does not know bound does not
// constrain), and the zone half of owner spreading (zone spreading is
// available through topologySpreadConstraints). Pods with dynamic resource
// claims are refused with ErrUnsupported rather than placed as if they had
// none; pods with scheduling gates with ErrSchedulingGated.
//
// # Concurrency
//
// Snapshot methods are safe for concurrent use; the informer handlers may
// call them from their goroutines. Scheduler.Schedule and ScheduleBatch
// hold the snapshot's lock for each pod's decision, so a decision sees one
// consistent state and a batch can never overcommit a node.
package sched

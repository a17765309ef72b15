// Package controller holds Skiff's level-triggered controllers: ReplicaSet
// and ReplicationController, Deployment, Endpoints, Job, CronJob,
// StatefulSet, DaemonSet, node lifecycle, node IPAM (pod CIDRs), and the
// garbage collector.
//
// # Shape
//
// Every controller is a reconcile function of one key (namespace/name) that
// reads desired and observed state from shared informer caches, writes
// through the cluster API, and is safe to run twice: it looks at the world,
// not at the event that woke it. Informer handlers only enqueue keys. A
// Manager owns one informer per kind (shared by its controllers), one
// rate-limited queue per controller, the worker goroutines and an event
// recorder; `skiff server` runs one Manager on the leader (Manager.Run
// until leadership is lost).
//
// # Vocabulary
//
//   - Cache: what a reconcile reads (an informer's cache, or a fake map in
//     unit tests). Cached objects are shared: DeepCopy before changing.
//   - Writer: what a reconcile writes through (*client.Client, or a fake
//     that records actions in unit tests).
//   - Expectations: names of pods a ReplicaSet created or deleted that its
//     cache has not reflected yet. While any are outstanding (and younger
//     than a timeout) the ReplicaSet does not scale again, so a fast loop
//     never creates duplicates before its own creations show up.
//   - Automatic rollback (Skiff's, opt-in): a Deployment annotated
//     skiff.io/auto-rollback=true whose rollout passes its progress deadline
//     gets the previous revision's template back.
//   - Controller reference: the one ownerReference with controller=true;
//     adoption sets it on a matching orphan, release removes it from a pod
//     that stopped matching.
//
// # Running
//
// `skiff server` runs the controllers on the leader only:
//
//	c, _ := client.New(client.Options{ConfigPath: adminConfig})
//	err := controller.NewManager(c, controller.Options{Logger: log}).Run(leaderCtx)
//
// where leaderCtx is cancelled when this server stops leading. Options
// carry the node lifecycle settings (NodeMonitorGracePeriod, default 40s;
// PodEvictionTimeout, default 300s) and its optional fast input,
// NodeHealth: a gossip.Pool every server starts (see gossip/DESIGN.md for
// the wiring of `skiff server` and `skiff agent`). Run returns
// once every informer and worker it started has stopped, so a new term can
// start a new Manager at once. Two managers overlapping briefly is safe:
// every write is a compare-and-swap on resourceVersion (or a UID
// precondition on deletes), and a surplus pod created by the overlap is
// removed by the next ReplicaSet reconcile.
//
// # Workloads and nodes
//
//   - Job pods are created bare of a node; DaemonSet pods are created with
//     spec.nodeName set (no scheduler involved) and the daemon tolerations.
//   - StatefulSet revisions are template hashes in the
//     controller-revision-hash label; no ControllerRevision objects.
//   - CronJob schedules are parsed here (cron.go): Next is what the
//     controller needs, which validation's parser does not offer.
//   - Node lifecycle takes the later of the Ready condition's
//     lastHeartbeatTime and the kube-node-lease Lease's renewTime as the
//     node's last sign of life. When gossip suspects a node or holds it
//     dead, it pings the node through its Lease (skiff.dev/ping,
//     nodelifecycle_ping.go): a Lease not renewed within
//     HealthPingTimeout is the store's confirmation of gossip's verdict.
//
// # Why the garbage collector checks live
//
// A dependent whose owner is missing from the cache may have an owner that
// the cache has not seen yet (it was created a moment ago). The collector
// therefore confirms with an uncached Get, and compares UIDs, before it
// deletes anything.
package controller

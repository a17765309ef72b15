// Package controlplane assembles one control-plane member, what `skiff
// server` and `skiff up` run: a raftstore member, the cluster API server on
// that member's etcd v3 endpoint, and — on exactly one member at a time,
// the Raft leader — the controller manager and the scheduler.
//
// # Why the Raft leader runs the leader duties
//
// The controllers and the scheduler must run on one member at a time, hand
// over within seconds, and be safe when two overlap briefly (issue 6). The
// member that leads Raft already satisfies the first two: leadership
// changes within an election timeout, and every member learns of it
// without writing anything. Following it costs no store writes (a lease
// key would write every few seconds forever, which the jepsen histories
// and benchmarks would see). Overlap is possible — an old leader learns of
// its loss only after a heartbeat timeout — and harmless: every write the
// controllers and the scheduler make is a compare-and-swap on the object's
// resourceVersion, and every reconcile is idempotent.
//
// The duties talk to the cluster through the client, over the local API
// server, like any outside program (DESIGN.md: they never import raftstore
// or apiserver); only this package, which composes the member, does.
//
// # Start order
//
//  1. The store member starts (bootstrap, restart or join); its etcd port
//     serves from then on, whatever happens next.
//  2. The API server starts against the member's own client endpoint. It
//     needs a store that has a leader and a quorum (it loads or creates the
//     cluster PKI); while there is none — a member restarted inside a
//     minority partition — Start keeps retrying until its context ends,
//     while the store keeps serving.
//  3. A loop watches Raft leadership and starts or stops the duties.
package controlplane

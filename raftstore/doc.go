// Package raftstore is Skiff's replacement for etcd: a Raft-replicated
// multi-version key-value store that serves the etcd v3 gRPC API, so etcdctl,
// the etcd Go client and Skiff's own API server use it unchanged.
//
// A member (Server) is built from:
//   - hashicorp/raft, with raft-boltdb (v2, bbolt; raft.db) as log and
//     stable store by default (Config.LogStore "wal" picks raft-wal), and
//     file snapshots, replicating etcd InternalRaftRequest entries;
//   - an FSM that applies those entries to the pure mvcc.Store and to the
//     lease table, and wakes watchers;
//   - the etcd v3 services (KV, Watch, Lease, Cluster, Maintenance) on the
//     client port;
//   - a peer port shared by Raft's transport and a small gRPC PeerService
//     (join, forwarding proposals and read-index requests to the leader).
//
// The public contract is Config, New and the Server methods (contract.go,
// server.go); everything else is internal. DESIGN.md explains the request
// paths and the read-index reasoning. raftstore imports no Skiff package but its own and the
// generated peer protocol in proto/skiff/v1.
package raftstore

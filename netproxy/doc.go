// Package netproxy is Skiff's service proxy: it turns Services and their
// Endpoints into packet-rewriting rules on a node, so that a connection to
// a Service's cluster IP (or a NodePort on any node address, or an external
// or load-balancer IP) reaches one of the Service's ready pods.
//
// # Why iptables
//
// The proxy programs the kernel with iptables rules in the nat table, the
// way kube-proxy's iptables mode does, and not with nftables or IPVS:
//
//   - It is what the kernels and distributions Skiff runs on all have: the
//     iptables command works with either kernel backend (the nf_tables one
//     through iptables-nft, as on this machine), while the nft command and
//     the IPVS module are not always present.
//   - Its semantics are the ones Kubernetes users debug with every day
//     (`iptables-save | grep SKIFF` reads like `grep KUBE`): random
//     balancing by the statistic match, ClientIP affinity by the recent
//     match, masquerading by a packet mark.
//   - iptables-restore applies a whole table's worth of our chains in one
//     atomic commit, so a sync is a full, idempotent rewrite rather than a
//     diff that can drift. At the scale Skiff targets (hundreds, not tens
//     of thousands, of services) its linear rule walk costs nothing that
//     matters; nftables maps would be the step after that.
//   - No packet passes through user space: the proxy only writes rules, so
//     its own restart or crash never breaks established connections.
//
// # Shape
//
// A Proxier reads Services and Endpoints from two caches (client
// informers), computes every rule it wants from scratch, and writes its own
// chains (all named SKIFF-...) with one `iptables-restore --noflush` per
// sync. Built-in chains get only a few jump rules into those chains. A sync
// runs after a change (coalesced, at most once per MinSyncInterval) and
// every SyncPeriod regardless, which repairs rules someone else flushed.
// Cleanup removes every jump and every SKIFF- chain.
//
// # Pod routes
//
// Routes, the other half of node networking, keeps a route to every other
// node's pod CIDR via that node's address (flannel's host-gw), so pods on
// different nodes talk by pod IP without NAT. Its routes carry their own
// protocol number, which is how it finds (and removes) only its own.
//
// # Vocabulary
//
//   - Service port: one (service, port) pair; it gets a SKIFF-SVC- chain.
//   - Endpoint: one ready address:port serving a service port; it gets a
//     SKIFF-SEP- chain doing the DNAT.
//   - Masquerade mark: packets that must leave with the node's address
//     (from outside the cluster, to a NodePort, or a pod reaching itself
//     through its own service) are marked, and SKIFF-POSTROUTING
//     masquerades marked packets.
package netproxy

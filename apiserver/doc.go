// Package apiserver is Skiff's cluster API server: the gRPC ClusterService
// of proto/skiff/v1, persisting Kubernetes objects in any etcd v3 store
// (Skiff's raftstore or a real etcd) through the etcd client.
//
// # Storage
//
// Objects are JSON at package api's keys (/registry/pods/default/web,
// /registry/apps/deployments/default/web). resourceVersion is the key's
// mod revision: creates compare create_revision == 0, updates and deletes
// compare mod_revision == the version read, so a stale write is a Conflict
// (codes.Aborted). A List reads every page at the first page's revision; a
// Watch follows the store's watch with previous values from
// resourceVersion+1, so a client that reconnects to any API server resumes
// where it stopped; a compacted version is Expired (410, codes.OutOfRange).
//
// # Lifecycle of an object
//
// Create fills uid, creationTimestamp and generation (1 for kinds with a
// spec; bumped when the spec changes). Update never writes status for kinds
// with a status subresource; UpdateStatus writes only status. Delete marks an
// object (deletionTimestamp) instead of removing it while finalizers hold it
// (the Foreground and Orphan policies add theirs for the garbage collector)
// or, for a Pod bound to a node, during its grace period, which the node's
// agent ends with a grace-0 delete. An update that removes the last
// finalizer of a marked object removes it. Deleting a Namespace marks it
// Terminating and a background sweep, resumed after a restart, deletes
// everything in it, then it.
//
// # Allocations
//
// Service ClusterIPs (10.96.0.0/12 by default, never .0 or .1) and NodePorts
// (30000-32767) are keys under /registry/ranges/, claimed with a
// create_revision == 0 compare in the Service's own transaction and
// released in its delete's: unique, persistent, never leaked.
//
// # Security
//
// The cluster CA (ECDSA P-256) and the admin and node-join tokens are
// created on the first start, in one transaction, under /skiff/pki/ in the
// store, so every API server of a cluster shares them. Each server issues
// its own serving certificate (SANs: 127.0.0.1, localhost, ::1, the host
// name and the advertise address) into its data dir and serves TLS only.
// Callers present a client certificate signed by the CA (user = CN, groups =
// O) or a bearer token; anything else is Unauthenticated. Every
// authenticated caller is admin until RBAC exists.
package apiserver

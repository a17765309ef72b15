// Package client is the Go client of Skiff's cluster API, and the only way
// the scheduler, the controllers, the agents and the CLI touch cluster
// state.
//
//   - Config: the kubeconfig-like file (~/.skiff/config, $SKIFFCONFIG):
//     clusters, users (client certificate or token), contexts.
//   - Client: typed Get/List/Create/Update/UpdateStatus/Apply/Delete/Watch
//     for k8s.io/api objects, plus Raw for JSON callers (the CLI).
//   - StatusError: every failed call, with Kubernetes' reason (IsNotFound,
//     IsConflict, IsExpired, ...) and field causes.
//   - Informer: a list+watch cache of one kind with event handlers, resuming
//     from its last resourceVersion and relisting when that is too old.
//   - InformerFactory: one shared informer per kind and namespace.
//   - Queue: a deduplicating, rate-limited work queue of keys for
//     level-triggered reconcilers; RetryOnConflict for read-modify-write.
//   - EventRecorder: core/v1 Events about objects, aggregated by count.
package client

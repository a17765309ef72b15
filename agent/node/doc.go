// Package node is Skiff's node agent (the kubelet's part): it joins a
// node to the cluster and makes the pods bound to it run.
//
//   - Registration: the Node object with labels (kubernetes.io/hostname,
//     os, arch), a pod CIDR (kept from the Node's spec, or claimed from the
//     cluster range with a compare-and-swap update), addresses, capacity and
//     allocatable (cpu, memory, pods, ephemeral-storage), node info, images
//     and conditions (Ready, MemoryPressure, DiskPressure, PIDPressure).
//   - Heartbeat: the Node status, written every HeartbeatInterval. The API
//     serves no coordination.k8s.io Lease kind, so there is no Lease in
//     kube-node-lease: the Ready condition's lastHeartbeatTime is the signal.
//   - Pods: an informer on pods with spec.nodeName == the node feeds a
//     podworker.Manager, which converges containerd to them. Statuses and
//     events the workers report are written back by a small pool of writers,
//     so a slow API server never blocks a pod's worker. A pod being deleted
//     gracefully is stopped by its worker and then deleted for good (grace 0,
//     UID precondition), as the kubelet does.
//   - Cluster data a pod needs (configMaps and secrets for env, envFrom and
//     volumes; downward API volume files) is resolved here, on every worker
//     pass, so a pod waiting for a missing configMap starts by itself once it
//     is created.
//
// The agent keeps no state of its own: containerd's labels are the node's
// memory (see agent/DESIGN.md), so a restarted agent adopts running pods
// without restarting them, and pods keep running while it is down.
package node

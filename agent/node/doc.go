// Package node is Skiff's node agent (the kubelet's part): it joins a
// node to the cluster and makes the pods bound to it run.
//
//   - Registration: the Node object with labels (kubernetes.io/hostname,
//     os, arch), a pod CIDR (kept from the Node's spec, or claimed from the
//     cluster range with a compare-and-swap update), addresses, capacity and
//     allocatable (cpu, memory, pods, ephemeral-storage), node info, images
//     and conditions (Ready, MemoryPressure, DiskPressure, PIDPressure).
//   - Heartbeat (lease.go): the node's Lease in kube-node-lease, renewed
//     every HeartbeatInterval; the Node status is written when it changes,
//     when the API holds the node not Ready, and every
//     NodeStatusReportInterval, as the kubelet does. The node lifecycle
//     controller takes the later of the two as the node's last sign of life.
//   - Fencing (lease.go): while the Lease has not been renewed for longer
//     than its duration, the pods of StatefulSets and pods annotated
//     skiff.dev/fence=true are stopped, so that a partitioned node never
//     runs an identity the control plane has started elsewhere.
//   - Gossip (gossip.go): with Config.Gossip, the agent joins the cluster's
//     memberlist pool as its node, with the key the servers keep in
//     kube-system/skiff-gossip-key, so the control plane hears within
//     seconds that the node is gone. A member watches its own Lease and
//     renews it at once when the node lifecycle controller pings it
//     (skiff.dev/ping, lease.go): that answer, through the store, is what
//     keeps a node cut off from gossip alone from being marked.
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
//   - Local persistent volumes (volumes.go): a claim of a pod bound to the
//     node that is still unbound gets a directory under the data dir and a
//     PersistentVolume pinned to the node (or a matching static volume),
//     and is bound with a compare-and-swap (WaitForFirstConsumer, as k3s's
//     local-path provisioner); the volumes this node provisioned are
//     deleted with their directories once their claims are gone.
//
// The agent keeps no state of its own: containerd's labels are the node's
// memory (see agent/DESIGN.md), so a restarted agent adopts running pods
// without restarting them, and pods keep running while it is down.
package node

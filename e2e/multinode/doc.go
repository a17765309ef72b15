// Package multinode holds Skiff's multi-host end-to-end tests: real `skiff
// server` and `skiff agent` processes on several hosts made of network
// namespaces (internal/netlab), each agent with its own address, private
// containerd, CNI bridge, cgroup parent and pod CIDR, driven through the
// CLI (`skiff apply`, `scale`, `exec`, `rollout`) like a Kubernetes user
// would drive kubectl, and checked through the API and from the hosts.
//
// The tests need root, containerd, runc, the CNI plugins and busybox-static
// (scripts/deps.sh); they skip with a message otherwise. The binary under
// test is $SKIFF_BINARY, else one `go build` of ./cmd/skiff in TestMain.
// Run them with `make test-multinode`.
//
// Layout: host h1 runs the server and the agent of node-a, h2 node-b, h3
// node-c. Everything a run makes is named after the lab id and removed at
// the end, also when a test fails: processes by pid, the pods (skiff
// teardown-node), mounts under the run's directory, cgroups under the
// agents' cgroup parents, the namespaces and the bridge.
package multinode

// Package integration holds black-box tests of raftstore: clusters of members
// started in-process on loopback, driven only through their public Go API and
// the real etcd v3 client, exactly as etcdctl or Skiff's API server would.
//
// The same tests can run against Debian's etcd (SKIFF_IT_BACKEND=etcd), which
// is how their expectations were checked: a test that passes on etcd and fails
// on Skiff points at a Skiff bug, not at a wrong test.
//
// The package has no non-test code besides this comment.
package integration

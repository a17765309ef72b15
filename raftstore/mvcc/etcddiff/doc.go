// Package etcddiff holds only a test: it drives a real etcd server (Debian's
// etcd-server, found on PATH) and an mvcc.Store with the same random
// requests and fails on any difference in what a client would see. It is
// kept apart from package mvcc so that package's tests stay pure and fast.
package etcddiff

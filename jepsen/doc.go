// Package jepsen is Skiff's fault-injection harness. It starts real store
// members (Skiff or Debian's etcd) in network namespaces, drives workloads
// against them while nemeses break the network and the processes, and checks
// the recorded histories.
//
// Vocabulary:
//   - rig: the hosts (network namespaces on a private bridge) and the member
//     processes running in them (package rig).
//   - nemesis: a fault with a start and an end (package nemesis).
//   - workload: clients issuing operations and recording them as a history
//     (package workload).
//   - checker: a pure function over a history that returns an error naming
//     the guarantee broken (package checker).
//   - run: one rig + workloads + one nemesis or a random schedule, for a
//     bounded time, then heal, final reads and checks (package runner).
package jepsen

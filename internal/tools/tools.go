//go:build tools

// Package tools pins the modules Skiff builds on before every package imports them,
// so that parallel work does not fight over go.mod. It is never compiled.
package tools

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/containerd/containerd"
	_ "github.com/containerd/go-cni"
	_ "github.com/google/btree"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/etcd/api/v3/etcdserverpb"
	_ "go.etcd.io/etcd/client/v3"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/apimachinery/pkg/api/resource"
	_ "sigs.k8s.io/yaml"
)

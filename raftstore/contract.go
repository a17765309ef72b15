package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// This file fixes the public shape of a store member so that the server, its
// tests, the benchmarks and the jepsen rig can be written at the same time:
// Config, DefaultConfig, Validate here; New and the Server methods in
// server.go (Start, Close, ClientAddr, PeerAddr, ID, IsLeader, WaitLeader,
// AppliedIndex).

// Config configures one store member.
type Config struct {
	Name            string   // member name (etcdctl member list shows it); required
	DataDir         string   // raft log (bolt), stable store, snapshots; required
	ListenClient    string   // etcd v3 gRPC, default 127.0.0.1:2379; port 0 = pick one
	ListenPeer      string   // raft + PeerService, default 127.0.0.1:2380; port 0 = pick one
	AdvertiseClient string   // default: the resolved ListenClient address
	AdvertisePeer   string   // default: the resolved ListenPeer address
	Join            []string // peer addresses of existing members; empty = bootstrap
	// (ignored when DataDir already holds raft state: restart)

	HeartbeatTimeout   time.Duration // raft; defaults tuned for loopback/LAN
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	SnapshotThreshold uint64        // raft entries between snapshots (default 10000)
	SnapshotInterval  time.Duration // how often raft checks (default 30s)
	TrailingLogs      uint64        // log entries kept after a snapshot (default 10000)

	// LogStore picks the Raft log and stable store: "boltdb" (raft-boltdb
	// v2 on bbolt, one file raft.db; the default) or "wal" (raft-wal
	// segment files, one fsync per append instead of bbolt's two).
	LogStore string

	AutoCompactionRetention time.Duration // 0 = off; etcd's "periodic" mode
	ProgressNotifyInterval  time.Duration // watch progress_notify period (default 10m, as etcd)

	MaxRequestBytes int    // default 1.5 MiB, as etcd
	MaxTxnOps       int    // default 128, as etcd
	ListenMetrics   string // Prometheus /metrics; empty = off
	// EnablePprof also serves net/http/pprof under /debug/pprof/ on the
	// metrics listener (as etcd's --enable-pprof), for profiling a member.
	EnablePprof bool
	Logger      *slog.Logger

	// UnsafeFollowerReads serves linearizable ranges locally without a
	// read-index. It exists only so the jepsen checkers can be shown to
	// catch stale reads; never enable it otherwise.
	UnsafeFollowerReads bool
}

// DefaultConfig returns a Config with every tunable set; callers fill Name
// and DataDir (and usually the addresses).
func DefaultConfig() Config {
	return Config{
		ListenClient:           "127.0.0.1:2379",
		ListenPeer:             "127.0.0.1:2380",
		HeartbeatTimeout:       500 * time.Millisecond,
		ElectionTimeout:        1000 * time.Millisecond,
		LeaderLeaseTimeout:     500 * time.Millisecond,
		SnapshotThreshold:      10000,
		SnapshotInterval:       30 * time.Second,
		TrailingLogs:           10000,
		ProgressNotifyInterval: 10 * time.Minute,
		MaxRequestBytes:        1536 * 1024,
		MaxTxnOps:              128,
		LogStore:               LogStoreBolt,
	}
}

// The log stores Config.LogStore can name.
const (
	LogStoreBolt = "boltdb"
	LogStoreWAL  = "wal"
)

// Validate checks each setting and the relations between them. It fills
// nothing in: New applies defaults for zero values before validating.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required (--name)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data-dir)"))
	}
	for _, a := range []struct{ flag, v string }{
		{"listen-client", c.ListenClient}, {"listen-peer", c.ListenPeer},
	} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: want host:port: %v", a.flag, a.v, err))
		}
	}
	for _, a := range []struct{ flag, v string }{
		{"advertise-client", c.AdvertiseClient}, {"advertise-peer", c.AdvertisePeer}, {"listen-metrics", c.ListenMetrics},
	} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: want host:port: %v", a.flag, a.v, err))
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("--join %q: want host:port of a member's peer address: %v", j, err))
		}
	}
	if c.HeartbeatTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("heartbeat timeout %v is too short (minimum 5ms)", c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election timeout %v must be at least the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %v must be between 5ms and the heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.LogStore != LogStoreBolt && c.LogStore != LogStoreWAL {
		errs = append(errs, fmt.Errorf("--log-store %q: want %q or %q", c.LogStore, LogStoreBolt, LogStoreWAL))
	}
	if c.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("snapshot threshold must be positive"))
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("snapshot interval %v is too short", c.SnapshotInterval))
	}
	if c.AutoCompactionRetention < 0 {
		errs = append(errs, fmt.Errorf("auto-compaction retention %v must not be negative", c.AutoCompactionRetention))
	}
	if c.ProgressNotifyInterval <= 0 {
		errs = append(errs, fmt.Errorf("progress notify interval %v must be positive", c.ProgressNotifyInterval))
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("max request bytes %d is too small (minimum 1024)", c.MaxRequestBytes))
	}
	if c.MaxTxnOps < 1 {
		errs = append(errs, fmt.Errorf("max txn ops %d must be positive", c.MaxTxnOps))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero tunables replaced by DefaultConfig's.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ListenClient == "" {
		c.ListenClient = d.ListenClient
	}
	if c.ListenPeer == "" {
		c.ListenPeer = d.ListenPeer
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = max(d.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(d.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.LogStore == "" {
		c.LogStore = d.LogStore
	}
	if c.ProgressNotifyInterval == 0 {
		c.ProgressNotifyInterval = d.ProgressNotifyInterval
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = d.MaxRequestBytes
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = d.MaxTxnOps
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

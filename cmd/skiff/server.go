package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/raftstore"
)

// defaultDataDir is /var/lib/skiff for root, ~/.skiff/data otherwise.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skiff"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".skiff", "data")
	}
	return ".skiff-data"
}

func newServerCmd() *cobra.Command {
	cfg := raftstore.DefaultConfig()
	var (
		join     string
		joinWait time.Duration
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control-plane member: the Raft key-value store serving the etcd v3 API",
		Long: `Run a store member. Without --join it bootstraps a new cluster; with --join it
asks an existing member (its peer address) to add it. A member restarted with the
same --data-dir rejoins as itself and ignores --join.

Talk to it with etcdctl:
  etcdctl --endpoints=127.0.0.1:2379 put foo bar
  etcdctl --endpoints=127.0.0.1:2379 member list -w table`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Logger = log
			cfg.LeaderLeaseTimeout = min(cfg.LeaderLeaseTimeout, cfg.HeartbeatTimeout)
			if join != "" {
				for _, j := range strings.Split(join, ",") {
					if j = strings.TrimSpace(j); j != "" {
						cfg.Join = append(cfg.Join, strings.TrimPrefix(strings.TrimPrefix(j, "http://"), "https://"))
					}
				}
			}
			if cfg.Name == "" {
				h, _ := os.Hostname()
				cfg.Name = h
			}
			srv, err := raftstore.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			startCtx, cancel := context.WithTimeout(ctx, joinWait)
			err = srv.Start(startCtx)
			cancel()
			if err != nil {
				return err
			}
			log.Info("skiff server ready",
				"name", cfg.Name,
				"client_url", "http://"+srv.ClientAddr(),
				"peer_url", "http://"+srv.PeerAddr(),
				"try", fmt.Sprintf("etcdctl --endpoints=%s put foo bar && etcdctl --endpoints=%s get foo", srv.ClientAddr(), srv.ClientAddr()))
			<-ctx.Done()
			log.Info("shutting down (handing over leadership first if leading)")
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "member name shown by etcdctl member list (default: the hostname)")
	f.StringVar(&cfg.DataDir, "data-dir", defaultDataDir(), "directory for the Raft log and snapshots")
	f.StringVar(&cfg.ListenClient, "listen-client", cfg.ListenClient, "host:port for the etcd v3 gRPC API")
	f.StringVar(&cfg.ListenPeer, "listen-peer", cfg.ListenPeer, "host:port for Raft and member-to-member traffic")
	f.StringVar(&cfg.AdvertiseClient, "advertise-client", "", "client host:port other members and clients should use (default: --listen-client)")
	f.StringVar(&cfg.AdvertisePeer, "advertise-peer", "", "peer host:port other members should use (default: --listen-peer)")
	f.StringVar(&join, "join", "", "peer address(es) of existing members, comma separated; empty bootstraps a new cluster")
	f.DurationVar(&joinWait, "join-timeout", 2*time.Minute, "how long to keep trying --join before giving up")
	f.DurationVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", 0, "keep this much MVCC history (e.g. 1h); 0 disables auto-compaction")
	f.DurationVar(&cfg.ProgressNotifyInterval, "progress-notify-interval", cfg.ProgressNotifyInterval, "period of watch progress notifications")
	f.StringVar(&cfg.ListenMetrics, "listen-metrics", "", "host:port for Prometheus /metrics (empty: off)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "Raft log entries between snapshots")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often Raft checks whether a snapshot is due")
	f.Uint64Var(&cfg.TrailingLogs, "trailing-logs", cfg.TrailingLogs, "Raft log entries kept after a snapshot (a follower further behind catches up by snapshot)")
	f.StringVar(&cfg.LogStore, "log-store", cfg.LogStore, "Raft log and stable store: boltdb (raft-boltdb on bbolt) or wal (raft-wal segments)")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "Raft heartbeat timeout")
	f.DurationVar(&cfg.ElectionTimeout, "election-timeout", cfg.ElectionTimeout, "Raft election timeout")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cfg.UnsafeFollowerReads, "unsafe-follower-reads", false, "serve linearizable reads locally without a read index (a deliberate bug for testing checkers)")
	_ = f.MarkHidden("unsafe-follower-reads")
	return cmd
}

func init() {
	rootCmd.AddCommand(newServerCmd())
}

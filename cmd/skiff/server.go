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
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controller"
	"github.com/skiffhq/skiff/controlplane"
	"github.com/skiffhq/skiff/gossip"
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
	cpCfg := controlplane.DefaultConfig()
	cfg := &cpCfg.Store
	var (
		join        string
		logLevel    string
		adminConfig string
		noAdmin     bool
		gf          gossipFlags
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control-plane member: the Raft store, the cluster API and (on the leader) the controllers and scheduler",
		Long: `Run a control-plane member: a member of the Raft key-value store serving the
etcd v3 API, the cluster API server on top of it (TLS, port 6443 on the
--listen-client host unless --listen-api says otherwise), and, on whichever
member leads Raft, the controllers and the scheduler.

Without --join it bootstraps a new cluster; with --join it asks an existing
member (its peer address) to add it. A member restarted with the same
--data-dir rejoins as itself and ignores --join.

On start it writes the node join token to <data-dir>/node-token (0600) and an
admin client config to --admin-config (default $SKIFFCONFIG or ~/.skiff/config),
so skiff get/apply work at once. --no-api runs the store alone.

Every member joins the cluster's gossip pool (--listen-gossip, encrypted with
a key the first server keeps in kube-system/skiff-gossip-key), so that the
leader's node lifecycle controller hears within seconds that a node is gone;
it marks the node unreachable only once its Lease is overdue too
(--node-health-confirm-age), and evicts its pods after --pod-eviction-timeout.

Talk to the store with etcdctl:
  etcdctl --endpoints=127.0.0.1:2379 put foo bar
  etcdctl --endpoints=127.0.0.1:2379 member list -w table`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cpCfg.Logger = log
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
			if !cpCfg.NoAPI {
				// Servers join each other's gossip: the hosts of --join.
				g, fallback, err := gf.config(cfg.Name, gossip.RoleServer, hostOf(cfg.ListenPeer), gossipAddrsOf(cfg.Join...))
				if err != nil {
					return err
				}
				if g != nil && g.AdvertiseAddr == "" && cfg.AdvertisePeer != "" {
					g.AdvertiseAddr = hostOf(cfg.AdvertisePeer)
				}
				cpCfg.Gossip, cpCfg.GossipPortFallback = g, fallback
			}
			cpCfg.DataDir = cfg.DataDir
			// Several members on one host (tests, scripts) cannot all have
			// port 6443: without an explicit --listen-api, a taken default
			// port falls back to a free one (logged).
			cpCfg.APIPortFallback = cpCfg.ListenAPI == ""
			if !noAdmin {
				cpCfg.AdminConfigPath = client.ConfigPath(adminConfig)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// ctx bounds the start: a member restarted without a quorum
			// keeps serving its store and waits here for the API server's
			// bootstrap until it gets one or is stopped.
			cp, err := controlplane.Start(ctx, cpCfg)
			if err != nil {
				return err
			}
			srv := cp.Store()
			attrs := []any{
				"name", cfg.Name,
				"client_url", "http://" + srv.ClientAddr(),
				"peer_url", "http://" + srv.PeerAddr(),
			}
			if cpCfg.NoAPI {
				attrs = append(attrs, "api", "off (--no-api)",
					"try", fmt.Sprintf("etcdctl --endpoints=%s put foo bar && etcdctl --endpoints=%s get foo", srv.ClientAddr(), srv.ClientAddr()))
			} else {
				attrs = append(attrs, "api_url", cp.APIURL(),
					"node_token_file", filepath.Join(cpCfg.DataDir, "node-token"))
				if cpCfg.AdminConfigPath != "" {
					attrs = append(attrs, "admin_config", cpCfg.AdminConfigPath, "try", "skiff get nodes")
				}
			}
			log.Info("skiff server ready", attrs...)
			// With --no-api there is no API server to watch: cp.Done is
			// closed at once, and the member runs until signalled.
			var apiDone <-chan struct{}
			if !cpCfg.NoAPI {
				apiDone = cp.Done()
			}
			select {
			case <-ctx.Done():
			case <-apiDone:
				log.Error("API server stopped; shutting down", "err", cp.Err())
			}
			log.Info("shutting down (handing over leadership first if leading)")
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			err = cp.Shutdown(sctx)
			if ctx.Err() == nil && cp.Err() != nil {
				return fmt.Errorf("API server: %w", cp.Err())
			}
			return err
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
	f.DurationVar(&cpCfg.JoinTimeout, "join-timeout", cpCfg.JoinTimeout, "how long to keep trying --join before giving up")
	f.DurationVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", 0, "keep this much MVCC history (e.g. 1h); 0 disables auto-compaction")
	f.DurationVar(&cfg.ProgressNotifyInterval, "progress-notify-interval", cfg.ProgressNotifyInterval, "period of watch progress notifications")
	f.StringVar(&cfg.ListenMetrics, "listen-metrics", "", "host:port for Prometheus /metrics (empty: off)")
	f.BoolVar(&cfg.EnablePprof, "enable-pprof", false, "also serve Go profiles under /debug/pprof/ on --listen-metrics")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "Raft log entries between snapshots")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often Raft checks whether a snapshot is due")
	f.Uint64Var(&cfg.TrailingLogs, "trailing-logs", cfg.TrailingLogs, "Raft log entries kept after a snapshot (a follower further behind catches up by snapshot)")
	f.StringVar(&cfg.LogStore, "log-store", cfg.LogStore, "Raft log and stable store: boltdb (raft-boltdb on bbolt) or wal (raft-wal segments)")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "Raft heartbeat timeout")
	f.DurationVar(&cfg.ElectionTimeout, "election-timeout", cfg.ElectionTimeout, "Raft election timeout")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cpCfg.NoAPI, "no-api", false, "run the store alone: no API server, controllers or scheduler")
	f.StringVar(&cpCfg.ListenAPI, "listen-api", "", "host:port for the cluster API (TLS gRPC), e.g. 0.0.0.0:6443 (default: the --listen-client host, port 6443)")
	f.StringVar(&cpCfg.AdvertiseAPI, "advertise-api", "", "host or IP clients and agents reach the API at (certificate SAN, admin config; default: the --listen-api host)")
	f.StringVar(&adminConfig, "admin-config", "", "where to write the admin client config (default $SKIFFCONFIG or ~/.skiff/config)")
	f.BoolVar(&noAdmin, "no-admin-config", false, "do not write an admin client config")
	f.StringVar(&cpCfg.API.ServiceCIDR, "service-cidr", cpCfg.API.ServiceCIDR, "range Service ClusterIPs are allocated from")
	gf.register(f, "the --listen-peer host, port 7946", "the hosts of --join, port 7946")
	registerNodeLifecycleFlags(f, &cpCfg)
	registerNodeIPAMFlags(f, &cpCfg, true)
	f.BoolVar(&cfg.UnsafeFollowerReads, "unsafe-follower-reads", false, "serve linearizable reads locally without a read index (a deliberate bug for testing checkers)")
	_ = f.MarkHidden("unsafe-follower-reads")
	return cmd
}

// registerNodeIPAMFlags adds the flags of the range Node pod CIDRs are
// assigned from. `skiff up` passes clusterCIDR false: its agent's
// --cluster-cidr is the same range and it copies that one over.
func registerNodeIPAMFlags(fs *pflag.FlagSet, cp *controlplane.Config, clusterCIDR bool) {
	if clusterCIDR {
		fs.StringVar(&cp.NodeIPAM.ClusterCIDR, "cluster-cidr", controller.DefaultClusterCIDR,
			"range the leader assigns Node pod CIDRs from (to Nodes whose agent gave no --pod-cidr)")
	}
	fs.IntVar(&cp.NodeIPAM.NodeCIDRMaskSize, "node-cidr-mask-size", controller.DefaultNodeCIDRMaskSize,
		"prefix length of each Node's pod CIDR, carved from --cluster-cidr")
}

func init() {
	rootCmd.AddCommand(newServerCmd())
}

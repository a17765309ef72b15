package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controlplane"
	"github.com/skiffhq/skiff/gossip"
)

func newUpCmd() *cobra.Command {
	var (
		af                                     agentFlags
		cpc                                    = controlplane.DefaultConfig()
		store                                  = &cpc.Store
		listenAPI, dataDir, adminConfig, level string
		gf                                     gossipFlags
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run Skiff all-in-one on this machine: a control plane and an agent with a private containerd",
		Long: `Run a one-member control plane (store, API server, controllers, scheduler) and
a node agent in this process, with the agent's private containerd as a child
in its own process group. The admin client config is written to --admin-config,
so the CLI works at once (skiff get nodes).

Stopping skiff up (SIGINT/SIGTERM) leaves the pods and containerd running; a
new skiff up on the same --data-dir adopts them. 'skiff teardown-node
--data-dir DIR/agent' removes them (make down does both).

Needs root and the Debian packages containerd, runc, containernetworking-plugins
and busybox-static (scripts/deps.sh installs them).`,
		Example: `  sudo skiff up --data-dir /var/lib/skiff
  skiff get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(level)
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("skiff up must run as root (the agent creates containers, network namespaces and cgroups)")
			}
			bin := containerd.DefaultConfig("/").Binary
			if af.socket != "" {
				bin = ""
			}
			if err := containerd.CheckHost(bin, node.DefaultConfig("", "", nil).CNIBinDir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			progress := func(format string, args ...any) {
				fmt.Fprintf(out, "%s skiff up: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
			}
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if store.Name == "" {
				store.Name = af.name
			}
			store.DataDir = filepath.Join(dir, "store")
			store.Logger = log
			af.dataDir = filepath.Join(dir, "agent")
			if adminConfig == "" {
				adminConfig = client.ConfigPath("")
			}
			// One gossip member for the whole process, named as the node (the
			// server and the agent live and die together): the controller
			// reads the node's health from it, and other agents join it.
			g, fallback, err := gf.config(store.Name, gossip.RoleServer, hostOf(store.ListenPeer), nil)
			if err != nil {
				return err
			}
			cpc.Gossip, cpc.GossipPortFallback = g, fallback
			cpc.NodeIPAM.ClusterCIDR = af.clusterCIDR
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			progress("starting the control plane: store %s (etcd API), API server %s", store.ListenClient, listenAPI)
			start := time.Now()
			cpCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			cpc.ListenAPI, cpc.DataDir, cpc.AdminConfigPath, cpc.Logger = listenAPI, filepath.Join(dir, "server"), adminConfig, log
			cp, err := controlplane.Start(cpCtx, cpc)
			cancel()
			if err != nil {
				return fmt.Errorf("control plane: %w", err)
			}
			defer cp.Close()
			progress("control plane ready in %v: API %s, admin config %s", time.Since(start).Round(time.Millisecond), cp.APIURL(), adminConfig)

			c, err := client.Dial(client.Cluster{Server: cp.APIURL(), CertificateAuthorityData: cp.CACertPEM()},
				client.AuthInfo{Token: cp.NodeToken()})
			if err != nil {
				return err
			}
			defer c.Close()
			cfg, err := af.config(c, log)
			if err != nil {
				return err
			}
			cfg.ClusterCA = cp.CACertPEM()
			progress("starting the agent %s (containerd and pods under %s)", cfg.Name, cfg.DataDir)
			start = time.Now()
			aCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			a, err := node.Start(aCtx, cfg)
			cancel()
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			defer a.Close()
			progress("node %s Ready in %v: IP %s, pod CIDR %s, containerd pid %d", cfg.Name, time.Since(start).Round(time.Millisecond),
				a.NodeIP(), a.PodCIDR(), a.Daemon().PID())
			progress("ready. Try: SKIFFCONFIG=%s skiff get nodes -o wide", adminConfig)
			<-ctx.Done()
			progress("stopping (pods and containerd keep running; 'skiff teardown-node --data-dir %s' removes them)", cfg.DataDir)
			return nil
		},
	}
	f := cmd.Flags()
	af.register(f, "")
	f.StringVar(&dataDir, "data-dir", defaultDataDir(), "directory for the store, the API server, the agent and its containerd")
	f.StringVar(&listenAPI, "listen-api", "127.0.0.1:6443", "address of the cluster API (TLS)")
	f.StringVar(&adminConfig, "admin-config", "", "where to write the admin client config (default $SKIFFCONFIG or ~/.skiff/config)")
	f.StringVar(&store.ListenClient, "listen-client", store.ListenClient, "host:port of the store's etcd v3 API")
	f.StringVar(&store.ListenPeer, "listen-peer", store.ListenPeer, "host:port of the store's Raft traffic")
	f.StringVar(&store.ListenMetrics, "listen-metrics", "", "host:port for the store's Prometheus /metrics (empty: off)")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	gf.register(f, "the --listen-peer host, port 7946", "none")
	registerNodeLifecycleFlags(f, &cpc)
	registerNodeIPAMFlags(f, &cpc, false) // --cluster-cidr is the agent's (af)
	return cmd
}

func init() {
	rootCmd.AddCommand(newUpCmd())
}

package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
)

func newAPIServerCmd() *cobra.Command {
	cfg := apiserver.DefaultConfig()
	var (
		endpoints   string
		logLevel    string
		adminConfig string
		noAdmin     bool
	)
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the cluster API server against an etcd v3 store (Skiff's or a real etcd)",
		Long: `Run the cluster API server alone, against any etcd v3 endpoints.

On the cluster's first start it creates the cluster CA and the admin and node
tokens (kept in the store under /skiff/pki/), issues itself a serving
certificate (in --data-dir), and writes an admin client config to
--admin-config (default: $SKIFFCONFIG or ~/.skiff/config). It serves TLS only;
callers authenticate with a client certificate signed by the cluster CA or a
bearer token. The node-join token is written to <data-dir>/node-token.`,
		Example: `  etcd --data-dir /tmp/etcd &
  skiff apiserver --store-endpoints http://127.0.0.1:2379 --listen 127.0.0.1:6443 --data-dir /tmp/apiserver
  skiff get namespaces`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.StoreEndpoints = nil
			for _, e := range strings.Split(endpoints, ",") {
				if e = strings.TrimSpace(e); e != "" {
					cfg.StoreEndpoints = append(cfg.StoreEndpoints, e)
				}
			}
			if !noAdmin {
				cfg.AdminConfigPath = client.ConfigPath(adminConfig)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := apiserver.New(ctx, cfg)
			if err != nil {
				return err
			}
			if cfg.AdminConfigPath != "" {
				cfg.Logger.Info("admin config written", "path", cfg.AdminConfigPath, "server", srv.URL())
			}
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoints, "store-endpoints", strings.Join(cfg.StoreEndpoints, ","), "comma-separated etcd v3 endpoints of the store")
	f.StringVar(&cfg.StorePrefix, "store-prefix", cfg.StorePrefix, "key prefix of cluster objects in the store")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to serve the cluster API on (TLS)")
	f.StringVar(&cfg.AdvertiseAddress, "advertise-address", "", "address clients reach this server at (certificate SAN, admin config); default: the listen host")
	f.StringVar(&cfg.DataDir, "data-dir", filepath.Join(defaultDataDir(), "apiserver"), "directory for the serving certificate, CA copy and node token")
	f.StringVar(&adminConfig, "admin-config", "", "where to write the admin client config (default $SKIFFCONFIG or ~/.skiff/config)")
	f.BoolVar(&noAdmin, "no-admin-config", false, "do not write an admin client config")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", cfg.ServiceCIDR, "range Service ClusterIPs are allocated from")
	f.IntVar(&cfg.NodePortMin, "node-port-min", cfg.NodePortMin, "lowest NodePort")
	f.IntVar(&cfg.NodePortMax, "node-port-max", cfg.NodePortMax, "highest NodePort")
	registerAdmissionFlags(f, &cfg)
	f.DurationVar(&cfg.BookmarkInterval, "bookmark-interval", cfg.BookmarkInterval, "how often watches that allow bookmarks get one")
	f.DurationVar(&cfg.CompactionInterval, "compaction-interval", cfg.CompactionInterval, "how often to compact the store's history (0: never)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func init() { rootCmd.AddCommand(newAPIServerCmd()) }

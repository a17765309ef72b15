package apiserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/skiffhq/skiff/api"
)

// Config is the API server's configuration.
type Config struct {
	// StoreEndpoints are the etcd v3 endpoints (Skiff's store or a real
	// etcd), "http://127.0.0.1:2379" style.
	StoreEndpoints []string
	// StorePrefix is the key prefix of objects, "/registry".
	StorePrefix string
	// StoreDialTimeout bounds connecting to the store.
	StoreDialTimeout time.Duration
	// StoreRequestTimeout bounds each store call made outside a request
	// (bootstrap, namespace sweeps).
	StoreRequestTimeout time.Duration

	// Listen is the TCP address the TLS gRPC server listens on.
	Listen string
	// AdvertiseAddress is the address clients use to reach this server; it
	// goes into the serving certificate's SANs and into the admin config.
	// Empty: the host of Listen (127.0.0.1 when Listen is a wildcard).
	AdvertiseAddress string
	// DataDir holds this server's own files: serving certificate and key,
	// a copy of the CA certificate, and the node-join token.
	DataDir string
	// AdminConfigPath, when set, is where the admin client config
	// (kubeconfig-like) is written or merged at start.
	AdminConfigPath string
	// ContextName names the cluster, user and context in the admin config.
	ContextName string

	// BookmarkInterval is how often a watch that allows bookmarks gets one.
	BookmarkInterval time.Duration
	// CompactionInterval is how often the store's history is compacted to
	// the revision of one interval earlier; 0 leaves it to the store.
	CompactionInterval time.Duration
	// Logger receives the server's logs; nil is slog.Default().
	Logger *slog.Logger
	// Scheme knows the kinds, their defaults and validation; nil uses
	// APIScheme (package api).
	Scheme Scheme
	// ServiceCIDR is the range ClusterIPs come from.
	ServiceCIDR string
	// NodePortMin and NodePortMax bound allocated NodePorts.
	NodePortMin, NodePortMax int
	// Admission is what the default admission plugins add to new pods
	// (service account, priority, and the not-ready / unreachable
	// tolerations that decide how long a pod stays on a lost node); nil
	// is SkiffAdmission().
	Admission *api.AdmissionOptions
}

// SkiffAdmission: Kubernetes' admission defaults but for the tolerations of
// not-ready and unreachable nodes, 5 s instead of 300 s, so that the pods of
// a lost node are replaced within seconds.
func SkiffAdmission() api.AdmissionOptions {
	return api.AdmissionOptions{NotReadyTolerationSeconds: 5, UnreachableTolerationSeconds: 5}
}

// DefaultConfig returns a Config for a local etcd on 127.0.0.1:2379, serving
// on 127.0.0.1:6443.
func DefaultConfig() Config {
	return Config{
		StoreEndpoints:      []string{"http://127.0.0.1:2379"},
		StorePrefix:         "/registry",
		StoreDialTimeout:    5 * time.Second,
		StoreRequestTimeout: 10 * time.Second,
		Listen:              "127.0.0.1:6443",
		DataDir:             "/var/lib/skiff/apiserver",
		ContextName:         "skiff",
		BookmarkInterval:    time.Minute,
		CompactionInterval:  5 * time.Minute,
		ServiceCIDR:         "10.96.0.0/12",
		NodePortMin:         30000,
		NodePortMax:         32767,
	}
}

// Validate checks the configuration and the relations between settings.
func (c *Config) Validate() error {
	var errs []error
	if len(c.StoreEndpoints) == 0 {
		errs = append(errs, errors.New("no store endpoints"))
	}
	if c.Admission != nil {
		if err := c.Admission.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.StorePrefix == "" || c.StorePrefix[0] != '/' || c.StorePrefix[len(c.StorePrefix)-1] == '/' {
		errs = append(errs, fmt.Errorf("store prefix %q must start with / and not end with /", c.StorePrefix))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen address %q: %w", c.Listen, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data dir"))
	}
	if c.StoreDialTimeout <= 0 || c.StoreRequestTimeout <= 0 {
		errs = append(errs, errors.New("store timeouts must be positive"))
	}
	if c.CompactionInterval < 0 {
		errs = append(errs, errors.New("compaction interval must not be negative"))
	}
	if c.BookmarkInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("bookmark interval %s is below 100ms", c.BookmarkInterval))
	}
	if _, n, err := net.ParseCIDR(c.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("service CIDR: %w", err))
	} else if ones, bits := n.Mask.Size(); bits != 32 || ones > 30 {
		errs = append(errs, fmt.Errorf("service CIDR %s must be an IPv4 range of at least 4 addresses", c.ServiceCIDR))
	}
	if c.NodePortMin <= 0 || c.NodePortMax > 65535 || c.NodePortMin > c.NodePortMax {
		errs = append(errs, fmt.Errorf("node port range %d-%d is invalid", c.NodePortMin, c.NodePortMax))
	}
	if c.ContextName == "" {
		errs = append(errs, errors.New("no context name"))
	}
	return errors.Join(errs...)
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

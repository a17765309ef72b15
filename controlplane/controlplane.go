package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controller"
	"github.com/skiffhq/skiff/gossip"
	"github.com/skiffhq/skiff/raftstore"
	"github.com/skiffhq/skiff/sched"
)

// DefaultAPIPort is the port of the cluster API when Config.ListenAPI is
// empty (Kubernetes' own).
const DefaultAPIPort = 6443

// Config is one control-plane member's configuration.
type Config struct {
	// Store configures the raftstore member. Store.DataDir defaults to
	// DataDir, and Store.Logger to Logger.
	Store raftstore.Config
	// JoinTimeout bounds starting the store (joining an existing cluster
	// waits for a member to accept us); 0 leaves it to Start's context.
	JoinTimeout time.Duration

	// NoAPI runs the store alone: no API server, no controllers, no
	// scheduler (what jepsen and the store benchmarks need).
	NoAPI bool
	// ListenAPI is the host:port the cluster API (TLS gRPC) listens on.
	// Empty: the host of Store.ListenClient, port 6443 — so members on
	// separate addresses each get their own API port.
	ListenAPI string
	// APIPortFallback, when ListenAPI is empty and the default port is
	// already taken (several members on one host, as in tests), listens on
	// a free port of the same host instead and logs it. An explicit
	// ListenAPI must be free.
	APIPortFallback bool
	// AdvertiseAPI is the host clients reach the API at (certificate SAN,
	// admin config). Empty: the ListenAPI host, 127.0.0.1 for a wildcard.
	AdvertiseAPI string
	// API tunes the API server (service CIDR, node ports, bookmarks,
	// compaction). Its store endpoints, listen and advertise addresses,
	// data dir, admin config path and logger are set from this Config.
	API apiserver.Config

	// DataDir holds the member's files: the API server's serving
	// certificate, ca.crt and node-token (0600, what agents join with) —
	// and, unless Store.DataDir says otherwise, the Raft log and snapshots.
	DataDir string
	// AdminConfigPath, when set, is where the admin client config is
	// written (merged) at start; `skiff server` uses client.ConfigPath("").
	AdminConfigPath string
	// Logger receives every component's logs; nil discards them.
	Logger *slog.Logger

	// DisableControllers and DisableScheduler keep those leader duties off
	// (tests that play them themselves).
	DisableControllers bool
	DisableScheduler   bool
	// LeaderCheckInterval is how often Raft leadership is checked to start
	// or stop the leader duties (default 200ms).
	LeaderCheckInterval time.Duration
	// RetryInterval is the pause between attempts to start the API server
	// while the store has no quorum (default 1s).
	RetryInterval time.Duration

	// Gossip, when set (and the API runs), joins this member to the
	// cluster's gossip pool once the API server is up: NodeName defaults
	// to Store.Name, Role to server, and the key is the cluster's (the
	// kube-system Secret skiff-gossip-key, made by the first server). On
	// the leader, the node lifecycle controller takes the pool's verdicts
	// as hints (see NodeHealthConfirmAge).
	Gossip *gossip.Config
	// GossipPortFallback: when Gossip's port is taken (several members on
	// one host), listen on a free port instead and log it.
	GossipPortFallback bool
	// NodeMonitorGracePeriod, PodEvictionTimeout, NodeHealthConfirmAge
	// and NodeHealthPingTimeout tune the node lifecycle controller
	// (controller.Options; zero: its defaults).
	NodeMonitorGracePeriod time.Duration
	PodEvictionTimeout     time.Duration
	NodeHealthConfirmAge   time.Duration
	NodeHealthPingTimeout  time.Duration
	// NodeIPAM is the range the leader assigns Node pod CIDRs from
	// (--cluster-cidr, --node-cidr-mask-size; zero: 10.244.0.0/16, /24).
	NodeIPAM controller.NodeIPAMOptions
}

// DefaultConfig returns a Config with the store's and the API server's
// defaults; callers fill DataDir and Store.Name.
func DefaultConfig() Config {
	return Config{
		Store:               raftstore.DefaultConfig(),
		JoinTimeout:         2 * time.Minute,
		API:                 apiserver.DefaultConfig(),
		LeaderCheckInterval: 200 * time.Millisecond,
		RetryInterval:       time.Second,
	}
}

// withDefaults fills derived settings.
func (c Config) withDefaults() Config {
	if c.Store.DataDir == "" {
		c.Store.DataDir = c.DataDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Store.Logger == nil {
		c.Store.Logger = c.Logger
	}
	if c.LeaderCheckInterval <= 0 {
		c.LeaderCheckInterval = 200 * time.Millisecond
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.API.StorePrefix == "" {
		// A zero API config: take every default.
		c.API = apiserver.DefaultConfig()
	}
	return c
}

// Validate checks the settings this package adds; the store and the API
// server validate their own.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data-dir)"))
	}
	if c.ListenAPI != "" {
		if _, port, err := net.SplitHostPort(c.ListenAPI); err != nil {
			errs = append(errs, fmt.Errorf("--listen-api %q: want host:port (e.g. 0.0.0.0:6443): %v", c.ListenAPI, err))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("--listen-api %q: port %q is not a number in 0-65535", c.ListenAPI, port))
		}
	}
	if h := c.AdvertiseAPI; h != "" {
		if _, _, err := net.SplitHostPort(h); err == nil {
			errs = append(errs, fmt.Errorf("--advertise-api %q: want a host or IP without a port (the port is --listen-api's)", h))
		}
	}
	if c.JoinTimeout < 0 {
		errs = append(errs, fmt.Errorf("join timeout %s is negative", c.JoinTimeout))
	}
	if err := c.NodeIPAM.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NodeMonitorGracePeriod < 0 || c.PodEvictionTimeout < 0 || c.NodeHealthConfirmAge < 0 || c.NodeHealthPingTimeout < 0 {
		errs = append(errs, fmt.Errorf("node monitor grace period %s, pod eviction timeout %s, node health confirm age %s and ping timeout %s must not be negative",
			c.NodeMonitorGracePeriod, c.PodEvictionTimeout, c.NodeHealthConfirmAge, c.NodeHealthPingTimeout))
	}
	if c.NodeMonitorGracePeriod > 0 && c.NodeHealthConfirmAge > c.NodeMonitorGracePeriod {
		errs = append(errs, fmt.Errorf("node health confirm age %s is longer than the node monitor grace period %s: gossip could never speed detection up",
			c.NodeHealthConfirmAge, c.NodeMonitorGracePeriod))
	}
	if c.Gossip != nil && !c.NoAPI {
		g := *c.Gossip
		if g.NodeName == "" {
			g.NodeName = c.Store.Name
		}
		if g.Role == "" {
			g.Role = gossip.RoleServer
		}
		if err := g.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// apiListen is the API address: ListenAPI, or the client host at 6443.
func (c *Config) apiListen() (addr string, defaulted bool) {
	if c.ListenAPI != "" {
		return c.ListenAPI, false
	}
	host, _, err := net.SplitHostPort(c.Store.ListenClient)
	if err != nil {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(DefaultAPIPort)), true
}

// ControlPlane is a running member. Its methods are safe for concurrent use.
type ControlPlane struct {
	cfg   Config
	log   *slog.Logger
	store *raftstore.Server
	api   *apiserver.Server // nil with NoAPI
	cli   *client.Client    // the leader duties' client, over the local API
	pool  *gossip.Pool      // nil without Config.Gossip; under mu

	ctx    context.Context // lives until Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
	apiErr chan error // Run's result
	done   chan struct{}

	mu       sync.Mutex
	leading  bool
	runErr   error
	closeErr error
	once     sync.Once
	doneOnce sync.Once
}

// Start starts the member: the store, then (unless NoAPI) the API server,
// then the leadership loop. ctx bounds the start only; the member runs
// until Shutdown or Close. While the store has no quorum, Start waits for
// one (retrying the API server's bootstrap) until ctx ends.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("controlplane config: %w", err)
	}
	cp := &ControlPlane{cfg: cfg, log: cfg.Logger, apiErr: make(chan error, 1), done: make(chan struct{})}
	cp.ctx, cp.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			_ = cp.Close()
		}
	}()

	store, err := raftstore.New(cfg.Store)
	if err != nil {
		return nil, err
	}
	cp.store = store
	sctx := ctx
	if cfg.JoinTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, cfg.JoinTimeout)
		defer cancel()
	}
	if err := store.Start(sctx); err != nil {
		return nil, err
	}
	if cfg.NoAPI {
		ok = true
		return cp, nil
	}

	if cp.api, err = cp.startAPI(ctx); err != nil {
		return nil, err
	}
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		err := cp.api.Run(cp.ctx)
		if err != nil && cp.ctx.Err() == nil {
			cp.log.Error("API server stopped", "err", err)
		}
		cp.mu.Lock()
		cp.runErr = err
		cp.mu.Unlock()
		cp.doneOnce.Do(func() { close(cp.done) })
	}()

	if !cfg.DisableControllers || !cfg.DisableScheduler || cfg.Gossip != nil {
		admin, err := cp.api.AdminConfig()
		if err != nil {
			return nil, fmt.Errorf("admin config for the controllers: %w", err)
		}
		if cp.cli, err = client.New(client.Options{Config: admin}); err != nil {
			return nil, fmt.Errorf("client for the controllers: %w", err)
		}
	}
	if cfg.Gossip != nil {
		if err := cp.startGossip(ctx, cp.cli); err != nil {
			return nil, err
		}
	}
	if !cfg.DisableControllers || !cfg.DisableScheduler {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			cp.leadershipLoop(cp.ctx)
		}()
	}
	ok = true
	return cp, nil
}

// startAPI creates the API server, retrying while the store cannot serve
// its bootstrap (no leader or no quorum yet).
func (cp *ControlPlane) startAPI(ctx context.Context) (*apiserver.Server, error) {
	cfg := cp.cfg.API
	cfg.StoreEndpoints = []string{"http://" + cp.store.ClientAddr()}
	listen, defaulted := cp.cfg.apiListen()
	cfg.Listen = listen
	cfg.AdvertiseAddress = cp.cfg.AdvertiseAPI
	cfg.DataDir = cp.cfg.DataDir
	cfg.AdminConfigPath = cp.cfg.AdminConfigPath
	cfg.Logger = cp.log.With("component", "apiserver")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("API server config: %w", err)
	}
	for attempt := 1; ; attempt++ {
		srv, err := apiserver.New(ctx, cfg)
		if err == nil {
			return srv, nil
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "listen" {
			if defaulted && cp.cfg.APIPortFallback && errors.Is(err, errAddrInUse) {
				host, _, _ := net.SplitHostPort(cfg.Listen)
				cp.log.Warn("default API port is taken (another member on this host?); using a free port instead, choose one with --listen-api",
					"wanted", cfg.Listen)
				cfg.Listen = net.JoinHostPort(host, "0")
				defaulted = false
				continue
			}
			return nil, fmt.Errorf("API server cannot listen on %s: %w (choose another address with --listen-api, or run the store alone with --no-api)", cfg.Listen, err)
		}
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("API server files in %s: %w (choose a writable --data-dir)", cfg.DataDir, err)
		}
		cp.log.Info("API server waiting for the store (no leader or quorum yet?)", "attempt", attempt, "err", err)
		t := time.NewTimer(cp.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("API server did not start: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// duty is work done on the leader only, until ctx ends.
type duty struct {
	name string
	run  func(ctx context.Context) error
}

func (cp *ControlPlane) duties() []duty {
	var ds []duty
	if !cp.cfg.DisableControllers {
		ds = append(ds, duty{"controllers", func(ctx context.Context) error {
			opts := controller.Options{Logger: cp.log.With("component", "controller-manager"),
				NodeMonitorGracePeriod: cp.cfg.NodeMonitorGracePeriod, PodEvictionTimeout: cp.cfg.PodEvictionTimeout,
				NodeHealthConfirmAge: cp.cfg.NodeHealthConfirmAge, NodeHealthPingTimeout: cp.cfg.NodeHealthPingTimeout,
				NodeIPAM: cp.cfg.NodeIPAM}
			if pool := cp.Gossip(); pool != nil {
				opts.NodeHealth = pool
			}
			return controller.NewManager(cp.cli, opts).Run(ctx)
		}})
	}
	if !cp.cfg.DisableScheduler {
		ds = append(ds, duty{"scheduler", func(ctx context.Context) error {
			r, err := sched.NewRunner(cp.cli, sched.RunnerOptions{Logger: cp.log.With("component", "scheduler")})
			if err != nil {
				return err
			}
			return r.Run(ctx)
		}})
	}
	return ds
}

// leadershipLoop starts the leader duties when this member leads Raft and
// stops them (and waits for them) when it no longer does.
func (cp *ControlPlane) leadershipLoop(ctx context.Context) {
	var (
		stop func()
		wg   sync.WaitGroup
	)
	end := func() {
		if stop != nil {
			stop()
			wg.Wait()
			stop = nil
			cp.setLeading(false)
			cp.log.Info("leader duties stopped")
		}
	}
	defer end()
	t := time.NewTicker(cp.cfg.LeaderCheckInterval)
	defer t.Stop()
	for {
		leader := cp.store.IsLeader()
		switch {
		case leader && stop == nil:
			cp.log.Info("this member leads: starting the controllers and the scheduler")
			stop = cp.startDuties(ctx, &wg)
			cp.setLeading(true)
		case !leader && stop != nil:
			cp.log.Info("this member no longer leads: stopping the leader duties")
			end()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startDuties starts every leader duty under a child of ctx and returns
// its cancel.
func (cp *ControlPlane) startDuties(ctx context.Context, wg *sync.WaitGroup) context.CancelFunc {
	lctx, cancel := context.WithCancel(ctx)
	for _, d := range cp.duties() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp.runDuty(lctx, d)
		}()
	}
	return cancel
}

// runDuty runs d until ctx ends, restarting it after a pause when it
// fails (the API server may be briefly unavailable during a failover).
func (cp *ControlPlane) runDuty(ctx context.Context, d duty) {
	for ctx.Err() == nil {
		err := d.run(ctx)
		if ctx.Err() != nil {
			return
		}
		cp.log.Warn("leader duty stopped; restarting", "duty", d.name, "err", err)
		t := time.NewTimer(cp.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (cp *ControlPlane) setLeading(v bool) {
	cp.mu.Lock()
	cp.leading = v
	cp.mu.Unlock()
}

// Leading reports whether this member runs the leader duties now.
func (cp *ControlPlane) Leading() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.leading
}

// Store is the raftstore member.
func (cp *ControlPlane) Store() *raftstore.Server { return cp.store }

// APIServer is the API server, nil with NoAPI.
func (cp *ControlPlane) APIServer() *apiserver.Server { return cp.api }

// APIURL is how clients reach the cluster API (https://host:port); empty
// with NoAPI.
func (cp *ControlPlane) APIURL() string {
	if cp.api == nil {
		return ""
	}
	return cp.api.URL()
}

// NodeToken is the token agents join with (also in DataDir/node-token).
func (cp *ControlPlane) NodeToken() string {
	if cp.api == nil {
		return ""
	}
	return cp.api.NodeToken()
}

// CACertPEM is the cluster CA certificate.
func (cp *ControlPlane) CACertPEM() []byte {
	if cp.api == nil {
		return nil
	}
	return cp.api.CACertPEM()
}

// AdminConfig returns a client config for this member's API with a fresh
// admin client certificate.
func (cp *ControlPlane) AdminConfig() (*client.Config, error) {
	if cp.api == nil {
		return nil, ErrNoAPI
	}
	return cp.api.AdminConfig()
}

// Done is closed when the API server has stopped: after Shutdown, or on
// its own when it failed (Err says why). With NoAPI it is closed by
// Shutdown only.
func (cp *ControlPlane) Done() <-chan struct{} { return cp.done }

// Err is the API server's error once Done is closed.
func (cp *ControlPlane) Err() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.runErr
}

// Shutdown stops the leader duties and the API server, then the store,
// handing Raft leadership to another member first if this one leads
// (bounded by ctx).
func (cp *ControlPlane) Shutdown(ctx context.Context) error {
	cp.once.Do(func() {
		cp.leaveGossip()
		cp.cancel()
		cp.wg.Wait()
		if cp.cli != nil {
			_ = cp.cli.Close()
		}
		if cp.store != nil {
			cp.closeErr = cp.stopStore(ctx)
		}
		cp.doneOnce.Do(func() { close(cp.done) })
	})
	return cp.closeErr
}

// storeStopGrace is how long Shutdown waits for the store to close after
// ctx (which bounds the leadership hand-over) has ended.
const storeStopGrace = 10 * time.Second

// stopStore shuts the store down, but does not wait for it forever: a Raft
// shutdown has been seen to hang (a replication goroutine blocked on a
// dead pipeline after a leadership transfer), and a process stopping must
// still exit. The store is then left to finish in the background.
func (cp *ControlPlane) stopStore(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- cp.store.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(storeStopGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		cp.log.Error("store did not stop; leaving it", "waited", storeStopGrace)
		return fmt.Errorf("%w (waited %s after the hand-over deadline)", ErrStoreStopTimeout, storeStopGrace)
	}
}

// Close is Shutdown with five seconds for the leadership hand-over.
func (cp *ControlPlane) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cp.Shutdown(ctx)
}

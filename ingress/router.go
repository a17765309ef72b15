//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the router reads it.

package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Config tunes a Router.
type Config struct {
	// ClassName is the IngressClass this controller implements (default
	// "skiff").
	ClassName string
	// ClaimUnclassed serves Ingresses that name no class (default true via
	// DefaultConfig).
	ClaimUnclassed bool
	// HTTPAddr and HTTPSAddr are where Run listens (":80", ":443"); an empty
	// HTTPSAddr serves no TLS.
	HTTPAddr, HTTPSAddr string
	// DialTimeout bounds connecting to one endpoint (default 2s).
	DialTimeout time.Duration
	// Retries is how many other endpoints a body-less request tries after a
	// refused connection (default 2).
	Retries int
	// Logger (default: discard).
	Logger *slog.Logger
}

// DefaultConfig serves class "skiff" and unclassed Ingresses on :80/:443.
func DefaultConfig() Config {
	return Config{ClassName: "skiff", ClaimUnclassed: true, HTTPAddr: ":80", HTTPSAddr: ":443", DialTimeout: 2 * time.Second, Retries: 2}
}

// Cache is what the router reads: one kind's objects, all namespaces.
// *client.Informer implements it.
type Cache interface {
	Get(key string) (runtime.Object, bool)
	List(sel labels.Selector) []runtime.Object
}

var _ Cache = (*client.Informer)(nil)

// Router is the proxy. It is an http.Handler; Run also serves it.
type Router struct {
	cfg                                     Config
	ingresses, services, endpoints, secrets Cache
	log                                     *slog.Logger
	proxy                                   *httputil.ReverseProxy
	table                                   atomic.Pointer[table]
	kick                                    chan struct{}

	mu       sync.Mutex // serializes rebuilds
	counters map[string]*uint64Counter
}

var _ http.Handler = (*Router)(nil)

type uint64Counter struct{ atomic.Uint64 }

// New returns a router over the caches; secrets may be nil (no TLS).
func New(cfg Config, ingresses, services, endpoints, secrets Cache) *Router {
	def := DefaultConfig()
	if cfg.ClassName == "" {
		cfg.ClassName = def.ClassName
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = def.DialTimeout
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{cfg: cfg, ingresses: ingresses, services: services, endpoints: endpoints, secrets: secrets,
		log: cfg.Logger, kick: make(chan struct{}, 1), counters: map[string]*uint64Counter{}}
	r.table.Store(&table{})
	base := &http.Transport{
		Proxy:                 nil, // never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0,
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend" // the transport picks the endpoint
			pr.SetXForwarded()
		},
		Transport: &retryTransport{base: base, retries: cfg.Retries},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			name := "?"
			if be, ok := req.Context().Value(backendKey{}).(*backend); ok {
				name = be.name
			}
			r.log.Warn("ingress upstream failed", "host", req.Host, "path", req.URL.Path, "backend", name, "err", err)
			http.Error(w, "bad gateway: "+name+" did not answer", http.StatusBadGateway)
		},
	}
	return r
}

// Handler returns the informer handler that asks for a rebuild on any
// change; add it to every informer the router reads.
func (r *Router) Handler() client.Handler {
	f := func(runtime.Object) { r.Kick() }
	return client.Handler{OnAdd: f, OnDelete: f, OnUpdate: func(_, o runtime.Object) { f(o) }}
}

// Kick asks Run for a rebuild soon. It never blocks.
func (r *Router) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Rebuild recomputes the routing table from the caches now and swaps it
// in. Requests in flight finish on the table they started with.
func (r *Router) Rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ings []*networkingv1.Ingress
	for _, o := range r.ingresses.List(nil) {
		if ing, ok := o.(*networkingv1.Ingress); ok && r.ours(ing) {
			ings = append(ings, ing)
		}
	}
	in := inputs{
		ingresses: ings,
		service: func(ns, name string) *corev1.Service {
			o, _ := r.services.Get(ns + "/" + name)
			s, _ := o.(*corev1.Service)
			return s
		},
		endpoints: func(ns, name string) *corev1.Endpoints {
			o, _ := r.endpoints.Get(ns + "/" + name)
			e, _ := o.(*corev1.Endpoints)
			return e
		},
		counters: r.counters,
	}
	if r.secrets != nil {
		in.secret = func(ns, name string) *corev1.Secret {
			o, _ := r.secrets.Get(ns + "/" + name)
			s, _ := o.(*corev1.Secret)
			return s
		}
	}
	r.table.Store(buildTable(in))
	r.log.Debug("ingress routes rebuilt", "ingresses", len(ings))
}

func (r *Router) ours(ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		return *c == r.cfg.ClassName
	}
	if c, ok := ing.Annotations["kubernetes.io/ingress.class"]; ok {
		return c == r.cfg.ClassName
	}
	return r.cfg.ClaimUnclassed
}

type backendKey struct{}

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	t := r.table.Load()
	be := t.lookup(req.Host, req.URL.Path)
	if be == nil {
		be = t.def
	}
	if be == nil {
		http.Error(w, "404 page not found (no Ingress rule matches "+req.Host+req.URL.Path+")", http.StatusNotFound)
		return
	}
	if len(be.addrs) == 0 {
		http.Error(w, "503 service unavailable: "+be.name+" has no ready endpoints", http.StatusServiceUnavailable)
		return
	}
	r.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), backendKey{}, be)))
}

// retryTransport sends a request to the next endpoint of its backend
// (round-robin) and, when the connection is refused or cannot be made and
// the request has no body, to the next one, up to retries more times.
type retryTransport struct {
	base    http.RoundTripper
	retries int
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	be, _ := req.Context().Value(backendKey{}).(*backend)
	if be == nil || len(be.addrs) == 0 {
		return nil, errors.New("no backend")
	}
	bodyless := req.Body == nil || req.Body == http.NoBody
	attempts := 1
	if bodyless {
		attempts += min(t.retries, len(be.addrs)-1)
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		addr := be.addrs[int(be.rr.Add(1)-1)%len(be.addrs)]
		out := req.Clone(req.Context())
		out.URL.Host = addr
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = fmt.Errorf("%s: %w", addr, err)
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			break // the request may have reached the endpoint: do not repeat it
		}
	}
	return nil, lastErr
}

// TLSConfig is the server TLS configuration, certificates chosen by SNI
// from the Secrets the Ingresses' tls sections name.
func (r *Router) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := r.table.Load().certFor(hello.ServerName); c != nil {
				return c, nil
			}
			return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
		},
	}
}

func (r *Router) synced() bool {
	for _, c := range []Cache{r.ingresses, r.services, r.endpoints, r.secrets} {
		if s, ok := c.(interface{ HasSynced() bool }); ok && !s.HasSynced() {
			return false
		}
	}
	return true
}

// Run serves HTTP (and HTTPS when configured) and rebuilds the table on
// every kick, until ctx ends; then it shuts the servers down (in-flight
// requests get 5s) and returns ctx's error or a listen error.
func (r *Router) Run(ctx context.Context) error {
	var servers []*http.Server
	var lns []net.Listener
	listen := func(addr string, tlsCfg *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("ingress listen %s: %w", addr, err)
		}
		if tlsCfg != nil {
			ln = tls.NewListener(ln, tlsCfg)
		}
		lns = append(lns, ln)
		servers = append(servers, &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg})
		return nil
	}
	if r.cfg.HTTPAddr != "" {
		if err := listen(r.cfg.HTTPAddr, nil); err != nil {
			return err
		}
	}
	if r.cfg.HTTPSAddr != "" {
		if err := listen(r.cfg.HTTPSAddr, r.TLSConfig()); err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
	}
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Serve(lns[i]) }()
	}
	r.log.Info("ingress serving", "http", r.cfg.HTTPAddr, "https", r.cfg.HTTPSAddr, "class", r.cfg.ClassName)
	r.RunRebuilds(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	wg.Wait()
	return ctx.Err()
}

// RunRebuilds rebuilds the table once the caches have synced and after
// every kick, until ctx ends (for callers that serve the Router
// themselves).
func (r *Router) RunRebuilds(ctx context.Context) {
	pending := true
	for {
		if pending && r.synced() {
			r.Rebuild()
			pending = false
		}
		var wait <-chan time.Time
		if pending {
			wait = time.After(50 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			pending = true
		case <-wait:
		}
	}
}

package apiserver

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Version is reported by Discover.
var Version = "skiff-apiserver/0.1"

// Server is the cluster API server. Create it with New, serve with Run.
type Server struct {
	skiffv1.UnimplementedClusterServiceServer

	cfg     Config
	log     *slog.Logger
	scheme  Scheme
	etcd    *clientv3.Client
	pki     *clusterPKI
	lis     net.Listener
	tlsCert tls.Certificate

	kinds  map[schema.GroupResource]Kind
	byKind map[schema.GroupVersionKind]Kind

	alloc *allocator

	mu     sync.Mutex
	sweeps map[string]bool // namespaces being swept
	runCtx context.Context
	wg     sync.WaitGroup
}

var _ skiffv1.ClusterServiceServer = (*Server)(nil)

// New connects to the store, bootstraps the cluster PKI and the default
// namespaces, prepares the serving certificate and binds the listen address.
// Nothing is served until Run. The admin config is written to
// cfg.AdminConfigPath when it is set.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("apiserver config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.logger(), scheme: cfg.Scheme, sweeps: map[string]bool{},
		kinds: map[schema.GroupResource]Kind{}, byKind: map[schema.GroupVersionKind]Kind{}}
	if s.scheme == nil {
		s.scheme = APIScheme{}
	}
	if s.cfg.Admission == nil {
		adm := SkiffAdmission()
		s.cfg.Admission = &adm
	}
	for _, k := range s.scheme.Kinds() {
		s.kinds[k.GroupResource()] = k
		s.byKind[k.GVK()] = k
	}
	var err error
	s.alloc, err = newAllocator(cfg)
	if err != nil {
		return nil, err
	}
	s.etcd, err = clientv3.New(clientv3.Config{
		Endpoints:   cfg.StoreEndpoints,
		DialTimeout: cfg.StoreDialTimeout,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("store %v: %w", cfg.StoreEndpoints, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.etcd.Close()
		}
	}()
	bctx, cancel := context.WithTimeout(ctx, cfg.StoreRequestTimeout)
	defer cancel()
	if s.pki, err = loadOrCreatePKI(bctx, s.etcd); err != nil {
		return nil, err
	}
	if err := s.bootstrapNamespaces(bctx); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	cert, err := s.pki.servingCertificate(cfg.DataDir, servingHosts(s.advertiseHost()))
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(cfg.DataDir, "ca.crt"), s.pki.caPEM, 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(cfg.DataDir, "node-token"), []byte(s.pki.nodeToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	s.lis, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	s.tlsCert = cert
	if cfg.AdminConfigPath != "" {
		if err := s.WriteAdminConfig(cfg.AdminConfigPath); err != nil {
			s.lis.Close()
			return nil, fmt.Errorf("writing admin config: %w", err)
		}
	}
	ok = true
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL is how clients reach the server: https://<advertise>:<port>.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return "https://" + net.JoinHostPort(s.advertiseHost(), port)
}

// CACertPEM is the cluster CA certificate.
func (s *Server) CACertPEM() []byte { return s.pki.caPEM }

// NodeToken is the token agents join with.
func (s *Server) NodeToken() string { return s.pki.nodeToken }

// AdminToken is the bearer token of the admin user.
func (s *Server) AdminToken() string { return s.pki.adminToken }

func (s *Server) advertiseHost() string {
	if s.cfg.AdvertiseAddress != "" {
		return s.cfg.AdvertiseAddress
	}
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}

// IssueClientCertificate signs a client certificate for user in groups.
func (s *Server) IssueClientCertificate(user string, groups []string) (certPEM, keyPEM []byte, err error) {
	return s.pki.issue(user, groups, nil, false)
}

// AdminConfig returns a client config with this server as its cluster and
// a fresh admin client certificate as its user.
func (s *Server) AdminConfig() (*client.Config, error) {
	certPEM, keyPEM, err := s.IssueClientCertificate(AdminUser, []string{AdminGroup})
	if err != nil {
		return nil, err
	}
	c := &client.Config{APIVersion: "v1", Kind: "Config"}
	s.mergeAdmin(c, certPEM, keyPEM)
	return c, nil
}

func (s *Server) mergeAdmin(c *client.Config, certPEM, keyPEM []byte) {
	name := s.cfg.ContextName
	c.SetCluster(name, client.Cluster{Server: s.URL(), CertificateAuthorityData: s.pki.caPEM})
	c.SetUser(name+"-admin", client.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM})
	c.SetContext(name, client.Context{Cluster: name, User: name + "-admin"})
	c.CurrentContext = name
}

// WriteAdminConfig merges this cluster's admin entries into the config at
// path (creating it) and makes its context current.
func (s *Server) WriteAdminConfig(path string) error {
	c, err := client.LoadConfig(path)
	if errors.Is(err, os.ErrNotExist) {
		c, err = &client.Config{}, nil
	}
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := s.IssueClientCertificate(AdminUser, []string{AdminGroup})
	if err != nil {
		return err
	}
	s.mergeAdmin(c, certPEM, keyPEM)
	return c.Save(path)
}

// Run serves until ctx is cancelled, then stops the gRPC server gracefully
// (open watches are ended) and closes the store client.
func (s *Server) Run(ctx context.Context) error {
	defer s.etcd.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.pki.caCert)
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{s.tlsCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	)
	skiffv1.RegisterClusterServiceServer(gs, s)
	skiffv1.RegisterPodStreamServiceServer(gs, &podStreams{s: s})

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.runCtx = runCtx
	s.mu.Unlock()
	s.resumeNamespaceSweeps(runCtx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runCompactor(runCtx)
	}()

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(s.lis) }()
	s.log.Info("apiserver serving", "addr", s.Addr(), "store", strings.Join(s.cfg.StoreEndpoints, ","))
	var err error
	select {
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
	case err = <-errc:
	}
	cancel()
	s.wg.Wait()
	return err
}

// Close releases what New acquired, for a server that will not Run.
func (s *Server) Close() error {
	s.lis.Close()
	return s.etcd.Close()
}

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

type userKey struct{}

// UserFrom returns the authenticated caller of a request.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// authenticate finds the caller: a verified client certificate (user = CN,
// groups = O), else a bearer token (admin or node-join).
func (s *Server) authenticate(ctx context.Context) (User, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			leaf := ti.State.VerifiedChains[0][0]
			return User{Name: leaf.Subject.CommonName, Groups: leaf.Subject.Organization}, nil
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		switch {
		case subtle.ConstantTimeCompare([]byte(tok), []byte(s.pki.adminToken)) == 1:
			return User{Name: AdminUser, Groups: []string{AdminGroup}}, nil
		case subtle.ConstantTimeCompare([]byte(tok), []byte(s.pki.nodeToken)) == 1:
			return User{Name: NodeJoinUser, Groups: []string{NodesGroup}}, nil
		}
		return User{}, client.NewUnauthorized("Unauthorized: invalid bearer token")
	}
	return User{}, client.NewUnauthorized("Unauthorized: no client certificate or bearer token; set up a client config (" + client.ConfigEnv + " or ~/.skiff/config)")
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	u, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return h(context.WithValue(ctx, userKey{}, u), req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	u, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return h(srv, authedStream{ss, context.WithValue(ss.Context(), userKey{}, u)})
}

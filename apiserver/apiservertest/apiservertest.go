// Package apiservertest runs an API server for tests against a store
// backend chosen by $SKIFF_TEST_STORE: "etcd" (the default: a real
// /usr/bin/etcd started per test), "skiff" (a single-member raftstore in the
// test process), or by $SKIFF_TEST_STORE_ENDPOINTS an existing store. One
// suite thus runs against both:
//
//	go test ./apiserver/... ./client/... ./cmd/skiff/
//	SKIFF_TEST_STORE=skiff go test ./apiserver/... ./client/... ./cmd/skiff/
package apiservertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/raftstore"
)

// Environment variables choosing the store backend of tests.
const (
	// BackendEnv is "etcd" (default) or "skiff".
	BackendEnv = "SKIFF_TEST_STORE"
	// StoreEnv holds comma-separated endpoints of an existing store to test
	// against instead; it wins over BackendEnv.
	StoreEnv = "SKIFF_TEST_STORE_ENDPOINTS"
)

// EtcdBinary is the etcd started by Store.
var EtcdBinary = "/usr/bin/etcd"

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Store returns the endpoints of a store for the test: those of
// $SKIFF_TEST_STORE_ENDPOINTS, or of a store of the $SKIFF_TEST_STORE
// backend started now and stopped at the end of the test.
func Store(t testing.TB) []string {
	if env := os.Getenv(StoreEnv); env != "" {
		return strings.Split(env, ",")
	}
	return PrivateStore(t)
}

// PrivateStore starts a store of the $SKIFF_TEST_STORE backend for this
// test alone (for tests that compact it).
func PrivateStore(t testing.TB) []string {
	switch b := os.Getenv(BackendEnv); b {
	case "", "etcd":
		return StartEtcd(t)
	case "skiff":
		return StartSkiffStore(t)
	default:
		t.Fatalf("%s=%q: want etcd or skiff", BackendEnv, b)
		return nil
	}
}

// StartSkiffStore runs a single-member raftstore in the test process on a
// loopback port, with a temporary data dir, until the end of the test.
func StartSkiffStore(t testing.TB) []string {
	t.Helper()
	cfg := raftstore.DefaultConfig()
	cfg.Name = "test"
	cfg.DataDir = filepath.Join(t.TempDir(), "store")
	cfg.ListenClient = "127.0.0.1:0"
	cfg.ListenPeer = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := raftstore.New(cfg)
	if err != nil {
		t.Fatalf("raftstore: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		t.Fatalf("raftstore start: %v", err)
	}
	if _, err := srv.WaitLeader(ctx); err != nil {
		srv.Close()
		t.Fatalf("raftstore leader: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	endpoint := "http://" + srv.ClientAddr()
	if err := waitStore(endpoint, nil); err != nil {
		t.Fatal(err)
	}
	return []string{endpoint}
}

// StartEtcd starts /usr/bin/etcd on loopback ports with a temporary data
// dir, waits until it answers, and stops it (by PID) when the test ends.
// The test is skipped when etcd is not installed.
func StartEtcd(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(EtcdBinary); err != nil {
		t.Skipf("no etcd at %s (apt-get install etcd-server): %v", EtcdBinary, err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("etcd-%d.log", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(EtcdBinary,
			"--name", "test", "--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "test="+peer, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting etcd: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-done
			logf.Close()
		}
		if lastErr = waitStore(client, done); lastErr == nil {
			t.Cleanup(stop)
			return []string{client}
		}
		stop()
		log, _ := os.ReadFile(logf.Name())
		t.Logf("etcd attempt %d failed: %v\n%s", attempt, lastErr, log)
	}
	t.Fatalf("etcd did not start: %v", lastErr)
	return nil
}

func waitStore(endpoint string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd at %s not answering: %w", endpoint, err)
}

// Server is an API server running for a test.
type Server struct {
	*apiserver.Server
	Config     apiserver.Config
	ConfigPath string // the admin client config

	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Option changes the API server config of Start.
type Option func(*apiserver.Config)

// Start runs an API server on a free loopback port against endpoints, with
// a data dir and an admin config in temp dirs. It stops with the test.
func Start(t testing.TB, endpoints []string, opts ...Option) *Server {
	t.Helper()
	cfg := apiserver.DefaultConfig()
	cfg.StoreEndpoints = endpoints
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminConfigPath = filepath.Join(t.TempDir(), "config")
	cfg.BookmarkInterval = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(&testWriter{t: t}, nil))
	}
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs an API server with cfg until Stop or the end of the test.
func StartConfig(t testing.TB, cfg apiserver.Config) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting apiserver: %v", err)
	}
	s := &Server{Server: srv, Config: cfg, ConfigPath: cfg.AdminConfigPath, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server and waits for Run to return.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				s.t.Errorf("apiserver Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			s.t.Errorf("apiserver did not stop within 15s")
		}
	})
}

// Restart stops the server and starts a new one with the same config, data
// dir and listen address (falling back to a new port if it is taken).
func (s *Server) Restart() *Server {
	s.t.Helper()
	s.Stop()
	cfg := s.Config
	cfg.Listen = s.Addr()
	srv := StartConfig(s.t, cfg)
	return srv
}

// Client returns an admin client of the server, closed with the test.
func (s *Server) Client() *client.Client {
	s.t.Helper()
	c, err := client.New(client.Options{ConfigPath: s.ConfigPath})
	if err != nil {
		s.t.Fatalf("client: %v", err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

package containerd_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
)

func TestDaemonImportAndAdopt(t *testing.T) {
	nodetest.RequireNode(t)
	d, dir := nodetest.StartDaemon(t)
	nodetest.ImportTestImages(t, d)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := d.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{images.BusyboxImage: false, images.BusyboxAlias: false, images.HTTPDImage: false, images.NginxAlias: false}
	for _, img := range list {
		if _, ok := want[img.Name]; ok {
			want[img.Name] = true
			if !img.Unpacked {
				t.Errorf("%s is not unpacked for %s", img.Name, containerd.Snapshotter)
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("image %s missing after import; got %+v", name, list)
		}
	}

	// A second Open on the same data dir adopts the running daemon.
	d2, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if !d2.Adopted() || d2.PID() != d.PID() {
		t.Fatalf("second Open: adopted=%v pid=%d, want adoption of pid %d", d2.Adopted(), d2.PID(), d.PID())
	}
	if ok, err := d2.HasImage(ctx, images.NginxAlias); !ok || err != nil {
		t.Fatalf("adopted daemon lacks %s: %v", images.NginxAlias, err)
	}
}

// TestSuperviseRestartsKilledDaemon: after a SIGKILL of the daemon,
// Supervise starts it again and the same client serves again.
func TestSuperviseRestartsKilledDaemon(t *testing.T) {
	nodetest.RequireNode(t)
	d, _ := nodetest.StartDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	restarted := make(chan error, 4)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Supervise(sctx, 50*time.Millisecond, func(pid int, err error) { restarted <- err })
	}()
	defer func() { stop(); <-done }()

	old := d.PID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatalf("restart: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("daemon not restarted within 60s")
	}
	if d.PID() == old || d.PID() == 0 {
		t.Fatalf("pid after restart %d (was %d)", d.PID(), old)
	}
	nodetest.Poll(t, 20*time.Second, "old client serves again", func() (bool, error) {
		return d.Client().IsServing(ctx)
	})
	t.Logf("containerd back %v after SIGKILL (pid %d → %d)", time.Since(start).Round(time.Millisecond), old, d.PID())
}

// TestPullUnreachable: a registry that does not answer gives ErrImagePull
// quickly (no registry is reachable from the test machines).
func TestPullUnreachable(t *testing.T) {
	nodetest.RequireNode(t)
	d, _ := nodetest.StartDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.PullImage(ctx, "127.0.0.1:1/nothing:latest")
	if !errors.Is(err, containerd.ErrImagePull) {
		t.Fatalf("pull from a closed port: %v, want ErrImagePull", err)
	}
	t.Logf("error: %v", err)
}

func TestCheckHostNamesPackages(t *testing.T) {
	err := containerd.CheckHost("/nonexistent/containerd", "/nonexistent/cni")
	if !errors.Is(err, containerd.ErrMissingDependency) {
		t.Fatalf("CheckHost with missing binaries: %v", err)
	}
	for _, want := range []string{"/nonexistent/containerd (Debian package containerd)", "containernetworking-plugins", "apt-get install"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestExistingSocket: with Socket set nothing is started or adopted, and
// Stop leaves the daemon alone.
func TestExistingSocket(t *testing.T) {
	nodetest.RequireNode(t)
	d, _ := nodetest.StartDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := containerd.DefaultConfig("")
	cfg.Socket = d.Address()
	ext, err := containerd.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ext.PID() != 0 || ext.Adopted() {
		t.Errorf("socket mode: pid %d adopted %v, want neither", ext.PID(), ext.Adopted())
	}
	if err := ext.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Client().IsServing(ctx); !ok {
		t.Fatalf("Stop in socket mode stopped the daemon: %v", err)
	}
	cfg.Socket = "/nonexistent/containerd.sock"
	cfg.StartTimeout = 300 * time.Millisecond
	if _, err := containerd.Open(ctx, cfg); err == nil {
		t.Error("Open on a missing socket succeeded")
	}
}

// Package nodetest holds helpers for tests that need a real containerd: skip
// conditions, a private daemon per test with cleanup, and the test images.
package nodetest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
)

// RequireNode skips the test unless it runs as root on a host with
// containerd, runc and the CNI plugins installed.
func RequireNode(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: run `sudo go test ./agent/...` (creates containers, netns, cgroups)")
	}
	if err := containerd.CheckHost("/usr/bin/containerd", "/usr/lib/cni"); err != nil {
		t.Skipf("host cannot run pods: %v", err)
	}
	if _, err := os.Stat(images.DefaultBusybox); err != nil {
		t.Skip("needs /bin/busybox: apt-get install -y busybox-static")
	}
}

// TempDir makes a short-named directory (socket paths must stay under 108
// bytes, which t.TempDir's long names can break) removed at cleanup.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "skt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// StartDaemon starts a private containerd under a fresh data dir and stops
// it (by pid) at cleanup. It returns the daemon and its data dir.
func StartDaemon(t testing.TB) (*containerd.Daemon, string) {
	t.Helper()
	dir := TempDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	d, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Logf("containerd pid %d serving after %v", d.PID(), time.Since(start).Round(time.Millisecond))
	pid := d.PID()
	t.Cleanup(func() {
		// Stop whichever daemon serves this data dir now (a test may have
		// restarted it), by the pid in its pidfile.
		cfg := containerd.DefaultConfig(dir)
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if cur, err := containerd.Open(cctx, cfg); err == nil {
			_ = cur.Stop(cctx)
		}
		_ = d.Close()
		_ = pid
	})
	return d, dir
}

// ImportTestImages builds the test images and imports them into d.
func ImportTestImages(t testing.TB, d *containerd.Daemon) {
	t.Helper()
	shell, httpd, err := images.TestImages(images.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, img := range []images.Image{shell, httpd} {
		var buf bytes.Buffer
		if err := images.WriteLayout(&buf, img); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		names, err := d.ImportImage(ctx, &buf)
		if err != nil {
			t.Fatalf("import %v: %v", img.Names, err)
		}
		t.Logf("imported %v in %v", names, time.Since(start).Round(time.Millisecond))
	}
}

// Poll calls cond every 20 ms until it returns true or the deadline passes,
// then fails the test with msg and cond's last error.
func Poll(t testing.TB, timeout time.Duration, msg string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v (last error: %v)", msg, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HostLeftovers lists netns, mounts, links and cgroup dirs whose names contain
// marker, for assertions that a test cleaned up.
func HostLeftovers(marker string) []string {
	var out []string
	if b, err := exec.Command("ip", "netns").Output(); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, marker) {
				out = append(out, "netns "+l)
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, marker) {
				out = append(out, "mount "+l)
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if strings.Contains(i.Name, marker) {
				out = append(out, "link "+i.Name)
			}
		}
	}
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		sub, _ := os.ReadDir("/sys/fs/cgroup/" + e.Name())
		for _, s := range sub {
			if s.IsDir() && strings.Contains(s.Name(), marker) {
				out = append(out, "cgroup /sys/fs/cgroup/"+e.Name()+"/"+s.Name())
			}
		}
	}
	return out
}

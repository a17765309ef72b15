package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// skiffBinary is the binary under test: $SKIFF_BINARY, or built by TestMain.
var skiffBinary string

// skipReason says why this host cannot run the tests ("" when it can).
var skipReason string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if skipReason = hostProblem(); skipReason != "" {
		return m.Run()
	}
	if b := os.Getenv("SKIFF_BINARY"); b != "" {
		abs, err := filepath.Abs(b)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "SKIFF_BINARY=%s: %v\n", b, err)
			return 2
		}
		skiffBinary = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "skiff-multinode-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	skiffBinary = filepath.Join(dir, "skiff")
	build := exec.Command("go", "build", "-o", skiffBinary, "./cmd/skiff")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/skiff: %v\n%s", err, out)
		return 2
	}
	return m.Run()
}

// hostProblem checks what the tests need on the host.
func hostProblem() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, containerd, cgroups, iptables): run `sudo make test-multinode`"
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("needs %s: run scripts/deps.sh (containerd, runc, containernetworking-plugins, busybox-static)", p)
		}
	}
	for _, b := range []string{"runc", "iptables", "ip", "nsenter"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Sprintf("needs %s in PATH: run scripts/deps.sh", b)
		}
	}
	return ""
}

func requireHost(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

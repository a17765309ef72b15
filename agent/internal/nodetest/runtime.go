package nodetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/runtime"
)

// FreeCIDR picks a /24 in 10.250.0.0/16 that no host interface uses.
func FreeCIDR(t testing.TB) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for i := 0; i < 50; i++ {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		cidr := fmt.Sprintf("10.250.%d.0/24", b[0])
		_, n, _ := net.ParseCIDR(cidr)
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && n.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			return cidr
		}
	}
	t.Fatal("no free pod CIDR")
	return ""
}

// Runtime starts a private containerd with the test images and a runtime on
// it, with a unique bridge/cgroup marker. At cleanup every pod is removed,
// the bridge deleted, and the host checked for leftovers. With logger, the
// shims run the test binary as the CRI logger of each container (see the
// runtime tests' TestMain) instead of the runtime copying logs itself.
func Runtime(t *testing.T, logger bool) (*runtime.Runtime, *containerd.Daemon) {
	t.Helper()
	RequireNode(t)
	d, dir := StartDaemon(t)
	ImportTestImages(t, d)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	marker := "skt" + hex.EncodeToString(b)
	cfg := runtime.DefaultConfig(dir, FreeCIDR(t))
	cfg.BridgeName, cfg.CgroupParent = marker, marker
	if logger {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cfg.LoggerBinary = exe
	}
	t.Cleanup(func() {
		if left := HostLeftovers(marker); len(left) > 0 {
			t.Errorf("left behind on the host:\n%s", strings.Join(left, "\n"))
		}
	})
	rt, err := runtime.New(context.Background(), d.Client(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := rt.Teardown(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
		rt.Close()
	})
	return rt, d
}

package node

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inFreshNetns runs f on a goroutine whose OS thread has a network
// namespace of its own (commands it starts inherit it); the thread is
// never reused, so the namespace goes with it.
func inFreshNetns(t *testing.T, f func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func bridgeMAC(t *testing.T, name string) string {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Errorf("bridge %s: %v", name, err) // not Fatal: off the test goroutine
		return ""
	}
	return ifc.HardwareAddr.String()
}

func ipCmd(ctx context.Context, t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestEnsureBridgeKeepsMAC: the pod gateway's MAC does not change as pod
// veths come and go (an unpinned bridge takes the lowest port MAC, and
// pods that cached the old one lose their traffic to the gateway), nor
// when the agent ensures the bridge again after a restart.
func TestEnsureBridgeKeepsMAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := inFreshNetns(t, func() error {
		const br = "skiffbrtest"
		if err := ensureBridge(ctx, br, "10.99.0.1/24"); err != nil {
			return err
		}
		mac := bridgeMAC(t, br)
		// A port with a MAC lower than any random one (locally
		// administered addresses have 0x02 set in the first byte).
		ipCmd(ctx, t, "link", "add", "vtest0", "type", "veth", "peer", "name", "vtest1")
		ipCmd(ctx, t, "link", "set", "vtest0", "address", "00:00:00:00:00:01")
		ipCmd(ctx, t, "link", "set", "vtest0", "master", br, "up")
		if got := bridgeMAC(t, br); got != mac {
			t.Errorf("bridge MAC changed from %s to %s when a port was added", mac, got)
		}
		ipCmd(ctx, t, "link", "del", "vtest0")
		if got := bridgeMAC(t, br); got != mac {
			t.Errorf("bridge MAC changed from %s to %s when a port was removed", mac, got)
		}
		// The agent restarts: the bridge exists, keeps its MAC and address.
		if err := ensureBridge(ctx, br, "10.99.0.1/24"); err != nil {
			return err
		}
		if got := bridgeMAC(t, br); got != mac {
			t.Errorf("bridge MAC changed from %s to %s when ensured again", mac, got)
		}
		ifc, err := net.InterfaceByName(br)
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return err
		}
		var v4 []string
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok && p.IP.To4() != nil {
				v4 = append(v4, a.String())
			}
		}
		if len(v4) != 1 || v4[0] != "10.99.0.1/24" {
			t.Errorf("bridge IPv4 addresses %v, want [10.99.0.1/24]", v4)
		}
		// A bridge made before (by the CNI plugin or an older agent),
		// unpinned, whose last port went: its MAC is all zeros.
		const old = "skiffbrold"
		ipCmd(ctx, t, "link", "add", old, "type", "bridge")
		ipCmd(ctx, t, "link", "add", "vtest2", "type", "veth", "peer", "name", "vtest3")
		ipCmd(ctx, t, "link", "set", "vtest2", "master", old, "up")
		ipCmd(ctx, t, "link", "del", "vtest2")
		if err := ensureBridge(ctx, old, "10.98.0.1/24"); err != nil {
			return err
		}
		mac = bridgeMAC(t, old)
		if hw, err := net.ParseMAC(mac); err != nil || hw[0]&0x01 != 0 || bytes.Equal(hw, make([]byte, 6)) {
			t.Errorf("bridge %s MAC %q, want a unicast non-zero address", old, mac)
		}
		ipCmd(ctx, t, "link", "add", "vtest4", "type", "veth", "peer", "name", "vtest5")
		ipCmd(ctx, t, "link", "set", "vtest4", "address", "00:00:00:00:00:01")
		ipCmd(ctx, t, "link", "set", "vtest4", "master", old, "up")
		ipCmd(ctx, t, "link", "del", "vtest4")
		if got := bridgeMAC(t, old); got != mac {
			t.Errorf("bridge %s MAC changed from %s to %s as a port came and went", old, mac, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

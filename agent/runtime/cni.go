package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// network attaches pods to a node bridge with host-local addresses from the
// node's pod CIDR (their loopback is brought up by pinNetns). It calls libcni directly
// (the library go-cni wraps) so that the result cache and host-local's
// allocations live under the agent's data dir, not in /var/lib/cni.
type network struct {
	cni      *libcni.CNIConfig
	bridge   *libcni.NetworkConfigList
	loopback *libcni.NetworkConfigList
	bridgeIf string
}

const podIfName = "eth0"

func newNetwork(cfg Config) (*network, error) {
	dataDir := filepath.Join(cfg.DataDir, "cni")
	bridgeConf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "skiff-" + cfg.BridgeName,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      cfg.BridgeName,
			"isGateway":   true,
			"ipMasq":      cfg.IPMasq,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": filepath.Join(dataDir, "ipam"),
				"ranges":  [][]map[string]string{{{"subnet": cfg.PodCIDR}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	b, err := json.Marshal(bridgeConf)
	if err != nil {
		return nil, err
	}
	bridge, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("bridge conflist: %w", err)
	}
	lo, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"skiff-loopback","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		return nil, err
	}
	return &network{
		// An explicit exec: with nil, libcni sets one lazily on first use,
		// which races when pods are set up concurrently.
		cni: libcni.NewCNIConfigWithCacheDir([]string{cfg.CNIBinDir}, filepath.Join(dataDir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		bridge:   bridge,
		loopback: lo,
		bridgeIf: cfg.BridgeName,
	}, nil
}

// setup attaches the pinned netns to the bridge and returns the pod IP.
// The netns's loopback is already up (pinNetns).
func (n *network) setup(ctx context.Context, id, netnsPath string) (net.IP, error) {
	res, err := n.cni.AddNetworkList(ctx, n.bridge, &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: podIfName})
	if err != nil {
		return nil, fmt.Errorf("cni bridge: %w", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, err
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP, nil
		}
	}
	return nil, fmt.Errorf("cni bridge gave no IPv4 address: %+v", r.IPs)
}

// teardown releases the pod's address and veth. It must run while the
// netns still exists; it tolerates a netns that is already gone.
func (n *network) teardown(ctx context.Context, id, netnsPath string) error {
	if _, err := os.Stat(netnsPath); err != nil {
		netnsPath = "" // plugins then only release IPAM state
	}
	if err := n.cni.DelNetworkList(ctx, n.bridge, &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: podIfName}); err != nil {
		return fmt.Errorf("cni del bridge: %w", err)
	}
	// Pods made by agents that still ran the loopback plugin have its
	// result cached: its DEL clears that.
	lo := &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: "lo"}
	if b, _, err := n.cni.GetNetworkListCachedConfig(n.loopback, lo); netnsPath != "" && err == nil && len(b) > 0 {
		if err := n.cni.DelNetworkList(ctx, n.loopback, lo); err != nil {
			return fmt.Errorf("cni del loopback: %w", err)
		}
	}
	return nil
}

// deleteBridge removes the node bridge (CNI DEL never does).
func (n *network) deleteBridge(ctx context.Context) error {
	if _, err := net.InterfaceByName(n.bridgeIf); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "ip", "link", "del", n.bridgeIf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip link del %s: %v: %s", n.bridgeIf, err, out)
	}
	return nil
}

package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/client"
)

// A host without containerd or the CNI plugins gets an error naming the
// Debian packages, before anything is started.
func TestStartNamesMissingPackages(t *testing.T) {
	c, err := client.Dial(client.Cluster{Server: "https://127.0.0.1:1"}, client.AuthInfo{Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := DefaultConfig("n1", t.TempDir(), c)
	cfg.ContainerdBinary = "/nonexistent/containerd"
	cfg.CNIBinDir = "/nonexistent/cni"
	_, err = Start(context.Background(), cfg)
	if !errors.Is(err, containerd.ErrMissingDependency) {
		t.Fatalf("Start: %v, want ErrMissingDependency", err)
	}
	for _, pkg := range []string{"Debian package containerd", "containernetworking-plugins", "apt-get install"} {
		if !strings.Contains(err.Error(), pkg) {
			t.Errorf("error %q does not name %q", err, pkg)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := &client.Client{}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"relative dir", func(c *Config) { c.DataDir = "data" }, "absolute"},
		{"long bridge", func(c *Config) { c.BridgeName = "a-very-long-bridge" }, "1..15 bytes"},
		{"bad pod cidr", func(c *Config) { c.PodCIDR = "10.0.0.0" }, "pod CIDR"},
		{"no pod cidr wait", func(c *Config) { c.PodCIDRTimeout = 0 }, "pod CIDR timeout"},
		{"pod cidr given, no wait needed", func(c *Config) { c.PodCIDR, c.PodCIDRTimeout = "10.1.0.0/24", 0 }, ""},
		{"cluster cidr unused with pod cidr and no proxy", func(c *Config) { c.PodCIDR, c.ClusterCIDR, c.Proxy = "10.1.0.0/24", "bad", false }, ""},
		{"proxy needs the cluster cidr", func(c *Config) { c.PodCIDR, c.ClusterCIDR = "10.1.0.0/24", "bad" }, "cluster CIDR"},
		{"dns needs a domain", func(c *Config) { c.ClusterDomain = "" }, "cluster domain"},
		{"no client", func(c *Config) { c.Client = nil }, "client is required"},
		{"bad node ip", func(c *Config) { c.NodeIP = "x" }, "node IP"},
		{"ingress ok", func(c *Config) { c.Ingress = true }, ""},
		{"ingress without https", func(c *Config) { c.Ingress, c.IngressHTTPSPort = true, 0 }, ""},
		{"ingress http port 0", func(c *Config) { c.Ingress, c.IngressHTTPPort = true, 0 }, "ingress HTTP port 0 is not in 1..65535"},
		{"ingress https port too big", func(c *Config) { c.Ingress, c.IngressHTTPSPort = true, 70000 }, "ingress HTTPS port 70000"},
		{"ingress same ports", func(c *Config) { c.Ingress, c.IngressHTTPSPort = true, 80 }, "both 80"},
		{"ingress on the stream port", func(c *Config) { c.Ingress, c.IngressHTTPPort = true, 10250 }, "log and exec endpoint"},
		{"ingress ports unchecked when off", func(c *Config) { c.IngressHTTPPort = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig("n", "/data", c)
			tc.mod(&cfg)
			err := cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

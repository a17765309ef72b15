package netlab

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLab builds two hosts, checks that they reach each other and the
// bridge, that Cut isolates a host and Heal brings it back, and that Close
// leaves no namespace, link or owner file behind.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veth pairs, bridges)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := New(ctx, Config{Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := l.ID()
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		links, _ := exec.Command("ip", "-o", "link", "show").Output()
		nss, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(links), id) || strings.Contains(string(nss), id) {
			t.Errorf("leftovers of lab %s after Close:\n%s\n%s", id, links, nss)
		}
		if _, err := os.Stat(stateDir + "/" + id + ".pid"); !os.IsNotExist(err) {
			t.Errorf("owner file of %s still there (stat: %v)", id, err)
		}
	}()
	h1, h2 := l.Hosts[0], l.Hosts[1]
	ping := func(from *Host, to string) error {
		_, err := from.Run(ctx, "busybox", "ping", "-c", "1", "-W", "1", to)
		return err
	}
	if err := ping(h1, h2.IP); err != nil {
		t.Fatalf("h1 -> h2: %v", err)
	}
	if err := ping(h2, l.Subnet()+".1"); err != nil {
		t.Fatalf("h2 -> bridge: %v", err)
	}
	if err := h2.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ping(h1, h2.IP); err == nil {
		t.Fatal("h1 reached h2 after h2 was cut off")
	}
	if err := h2.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ping(h1, h2.IP) != nil {
		if time.Now().After(deadline) {
			t.Fatal("h1 does not reach h2 10s after heal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Processes run in the host's namespace see its address.
	out, err := h1.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, h1.IP+"/24") {
		t.Errorf("h1 eth0: want %s/24, got %q", h1.IP, out)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ID: "toolongid9", Hosts: 1}, "at most 8"},
		{Config{ID: "Bad", Hosts: 1}, "only [a-z0-9]"},
		{Config{ID: "ok", Hosts: 0}, "hosts = 0"},
		{Config{ID: "ok", Hosts: 10}, "hosts = 10"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	c := Config{Hosts: 3}
	if err := c.Validate(); err != nil || !strings.HasPrefix(c.ID, DefaultPrefix) || len(c.ID) != 8 {
		t.Errorf("defaults: id %q err %v", c.ID, err)
	}
}

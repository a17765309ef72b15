// Package netlab makes "hosts" out of network namespaces on one machine:
// each host is a namespace with its own address on a private bridge in the
// root namespace, the way the jepsen rig (jepsen/rig) builds its members'
// hosts. It is the network half of that rig without the store members, for
// end-to-end tests that run their own processes (skiff server, skiff agent)
// on each host.
//
// Processes run on a host through nsenter --net only: they share the root
// mount namespace (unlike `ip netns exec`, which remounts /sys and so hides
// /sys/fs/cgroup, which runc needs), so containerd's mounts, pinned pod
// namespaces and cgroups stay visible to, and removable by, the test.
//
// Every object is named after the lab id ("<id>-h1" namespaces, "<id>br"
// bridge, "<id>v1" host-side veths), and any network namespace whose name
// starts with the id (for instance pod namespaces an agent pinned with a
// bridge name of "<id>b1") belongs to the lab too: Close removes them all,
// and CleanupStale removes the leftovers of labs whose owner process died.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Sentinel errors.
var (
	// ErrNotRoot: namespaces, veths and bridges need root.
	ErrNotRoot = errors.New("netlab needs root (network namespaces, veth pairs, bridges)")
	// ErrNoFreeSubnet: every candidate 10.214.x.0/24 is routed already.
	ErrNoFreeSubnet = errors.New("no free 10.214.x.0/24 subnet for the lab's bridge")
)

// DefaultPrefix starts every generated lab id, so leftovers are recognisable
// (and never confused with the jepsen rig's "sj" runs).
const DefaultPrefix = "nl"

// stateDir holds one owner file per live lab: "<id>.pid".
const stateDir = "/run/skiff-netlab"

// Config describes a lab.
type Config struct {
	// ID names every object; at most 8 characters of [a-z0-9]. Empty:
	// DefaultPrefix + 6 random hex digits.
	ID string
	// Hosts is the number of namespaces, 1..9.
	Hosts int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Validate checks the settings and fills defaults.
func (c *Config) Validate() error {
	if c.ID == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		c.ID = DefaultPrefix + hex.EncodeToString(b[:])
	}
	if len(c.ID) > 8 {
		return fmt.Errorf("lab id %q: at most 8 characters (interface names are limited to 15 bytes)", c.ID)
	}
	for _, r := range c.ID {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("lab id %q: only [a-z0-9] allowed", c.ID)
		}
	}
	if c.Hosts < 1 || c.Hosts > 9 {
		return fmt.Errorf("hosts = %d: want 1..9", c.Hosts)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// Host is one network namespace with an address on the lab's bridge.
type Host struct {
	Name string // "h1"
	NS   string // namespace name, "<id>-h1"
	IP   string // address on the lab bridge
	Veth string // host-side veth in the root namespace
}

// NetnsPath is the namespace's bind mount, for nsenter --net.
func (h *Host) NetnsPath() string { return "/var/run/netns/" + h.NS }

// Command returns a command that runs name inside the host's network
// namespace (nsenter execs in place: the command's pid is the program's).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h.NetnsPath(), "--", name}, args...)...)
}

// Run runs a command in the host's namespace and returns its combined
// output; the error carries the output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s on %s: %v: %s", name, strings.Join(args, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Cut takes the host off the lab network (its bridge port goes down), as
// if its cable were pulled. Heal plugs it back in.
func (h *Host) Cut(ctx context.Context) error { return ip(ctx, "link", "set", h.Veth, "down") }

// Heal undoes Cut.
func (h *Host) Heal(ctx context.Context) error { return ip(ctx, "link", "set", h.Veth, "up") }

// Lab is a bridge and its hosts.
type Lab struct {
	cfg    Config
	subnet string // "10.214.x"
	Bridge string
	Hosts  []*Host

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, removes stale labs and builds the network. On error
// everything built so far is removed.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := CleanupStale(ctx, DefaultPrefix, cfg.Log); err != nil {
		fmt.Fprintf(cfg.Log, "netlab: cleanup of stale labs: %v\n", err)
	}
	l := &Lab{cfg: cfg, Bridge: cfg.ID + "br"}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stateDir, cfg.ID+".pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if err := l.build(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("netlab %s: %w", cfg.ID, err), l.Close())
	}
	return l, nil
}

// ID returns the lab id every object is named after.
func (l *Lab) ID() string { return l.cfg.ID }

// Subnet returns the lab's /24 prefix, e.g. "10.214.7"; the bridge in the
// root namespace holds .1.
func (l *Lab) Subnet() string { return l.subnet }

// Logf writes a progress line.
func (l *Lab) Logf(format string, args ...any) {
	fmt.Fprintf(l.cfg.Log, "%s [%s] %s\n", time.Now().UTC().Format("15:04:05.000"), l.cfg.ID, fmt.Sprintf(format, args...))
}

func (l *Lab) build(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show").Output()
	if err != nil {
		return fmt.Errorf("ip route: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(l.cfg.ID))
	start := int(h.Sum32() % 250)
	for k := 0; k < 250 && l.subnet == ""; k++ {
		s := fmt.Sprintf("10.214.%d", 1+(start+k)%250)
		if !strings.Contains(string(out), s+".") {
			l.subnet = s
		}
	}
	if l.subnet == "" {
		return ErrNoFreeSubnet
	}
	for _, s := range [][]string{
		{"link", "add", l.Bridge, "type", "bridge"},
		{"addr", "add", l.subnet + ".1/24", "dev", l.Bridge},
		{"link", "set", l.Bridge, "up"},
	} {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	for i := 0; i < l.cfg.Hosts; i++ {
		host := &Host{
			Name: fmt.Sprintf("h%d", i+1),
			NS:   fmt.Sprintf("%s-h%d", l.cfg.ID, i+1),
			IP:   fmt.Sprintf("%s.%d", l.subnet, 11+i),
			Veth: fmt.Sprintf("%sv%d", l.cfg.ID, i+1),
		}
		for _, s := range [][]string{
			{"netns", "add", host.NS},
			{"link", "add", host.Veth, "type", "veth", "peer", "name", "eth0", "netns", host.NS},
			{"link", "set", host.Veth, "master", l.Bridge},
			{"link", "set", host.Veth, "up"},
			{"-n", host.NS, "addr", "add", host.IP + "/24", "dev", "eth0"},
			{"-n", host.NS, "link", "set", "eth0", "up"},
			{"-n", host.NS, "link", "set", "lo", "up"},
			// The bridge is every host's way out (a default route, as a
			// real host has; agents take their node IP from it).
			{"-n", host.NS, "route", "add", "default", "via", l.subnet + ".1"},
		} {
			if err := ip(ctx, s...); err != nil {
				return err
			}
		}
		l.Hosts = append(l.Hosts, host)
	}
	l.Logf("network up: bridge %s %s.1/24, %d hosts", l.Bridge, l.subnet, l.cfg.Hosts)
	return nil
}

// Close kills every process left in the lab's namespaces (by pid), removes
// the namespaces (also those pinned by programs under the lab id), links
// and owner file. It has its own deadline, so it works after the caller's
// context ended; safe to call twice.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l.closeErr = removeLab(ctx, l.cfg.ID)
		l.Logf("lab removed")
	})
	return l.closeErr
}

// removeLab deletes everything named after id.
func removeLab(ctx context.Context, id string) error {
	var errs []error
	nss, err := listNetns(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if !strings.HasPrefix(ns, id) {
			continue
		}
		// Processes still inside a namespace of the lab were started in it
		// by the lab's owner: kill them by pid before the namespace goes.
		if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := ip(ctx, "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	links, err := listLinks(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range links {
		if strings.HasPrefix(name, id) {
			if err := ip(ctx, "link", "del", name); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	_ = os.Remove(filepath.Join(stateDir, id+".pid"))
	return errors.Join(errs...)
}

// CleanupStale removes the leftovers of labs whose id starts with prefix
// and whose owner process is gone. Live labs are left alone.
func CleanupStale(ctx context.Context, prefix string, log io.Writer) error {
	ids := map[string]bool{}
	nss, err := listNetns(ctx)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		if i := strings.Index(ns, "-h"); i > 0 && strings.HasPrefix(ns, prefix) {
			ids[ns[:i]] = true
		}
	}
	links, _ := listLinks(ctx)
	for _, name := range links {
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, "br") {
			ids[strings.TrimSuffix(name, "br")] = true
		}
	}
	var errs []error
	for id := range ids {
		if ownerAlive(id) {
			continue
		}
		if log != nil {
			fmt.Fprintf(log, "netlab: removing leftovers of stale lab %s\n", id)
		}
		errs = append(errs, removeLab(ctx, id))
	}
	return errors.Join(errs...)
}

// Live reports whether the lab id belongs to a live owner process (this
// one or another), so that users of the lab's name for their own leftovers
// (directories, cgroups) know whether those are stale.
func Live(id string) bool { return ownerAlive(id) }

func ownerAlive(id string) bool {
	b, err := os.ReadFile(filepath.Join(stateDir, id+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return pid == os.Getpid() || syscall.Kill(pid, 0) == nil
}

func listNetns(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func listLinks(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip link show: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		names = append(names, name)
	}
	return names, nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

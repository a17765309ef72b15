package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdBackend runs Debian's /usr/bin/etcd as child processes. It exists to
// check the tests' expectations against the reference implementation.
type etcdBackend struct{}

func init() { backends["etcd"] = etcdBackend{} }

func (etcdBackend) Name() string { return "etcd" }

type etcdNode struct {
	t       *testing.T
	name    string
	dir     string
	client  string
	peer    string
	cluster string // --initial-cluster at first start
	state   string // new or existing
	o       opts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func etcdBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		bin = "/usr/bin/etcd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("etcd backend needs %s (Debian etcd-server): %v", bin, err)
	}
	return bin
}

func (etcdBackend) Bootstrap(t *testing.T, n int, o opts) []node {
	etcdBinary(t)
	var nodes []*etcdNode
	var initial []string
	for i := 0; i < n; i++ {
		en := &etcdNode{
			t: t, name: fmt.Sprintf("m%d", i), dir: filepath.Join(t.TempDir(), "data"),
			client: freePort(t), peer: freePort(t), state: "new", o: o,
		}
		nodes = append(nodes, en)
		initial = append(initial, en.name+"=http://"+en.peer)
	}
	var out []node
	for _, en := range nodes {
		en.cluster = strings.Join(initial, ",")
		if err := en.start(); err != nil {
			t.Fatalf("start etcd %s: %v", en.name, err)
		}
		out = append(out, en)
	}
	return out
}

func (etcdBackend) Join(t *testing.T, cli *clientv3.Client, peers []node, o opts) node {
	en := &etcdNode{
		t: t, name: fmt.Sprintf("m%d", time.Now().UnixNano()%100000), dir: filepath.Join(t.TempDir(), "data"),
		client: freePort(t), peer: freePort(t), state: "existing", o: o,
	}
	// etcd refuses a member add until every member has been connected for
	// a few seconds ("unhealthy cluster"); retry until it accepts.
	var resp *clientv3.MemberAddResponse
	eventually(t, 30*time.Second, "etcd accepting member add", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		resp, err = cli.MemberAdd(ctx, []string{"http://" + en.peer})
		return err
	})
	var initial []string
	for _, m := range resp.Members {
		name := m.Name
		if m.ID == resp.Member.ID {
			name = en.name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	en.cluster = strings.Join(initial, ",")
	if err := en.start(); err != nil {
		t.Fatalf("start etcd %s: %v", en.name, err)
	}
	return en
}

func (n *etcdNode) start() error {
	args := []string{
		"--name", n.name, "--data-dir", n.dir,
		"--listen-client-urls", "http://" + n.client, "--advertise-client-urls", "http://" + n.client,
		"--listen-peer-urls", "http://" + n.peer, "--initial-advertise-peer-urls", "http://" + n.peer,
		"--initial-cluster", n.cluster, "--initial-cluster-state", n.state,
		"--initial-cluster-token", "skiff-it",
		"--heartbeat-interval", "100", "--election-timeout", "1000",
		"--logger", "zap", "--log-level", "error",
	}
	if n.o.SnapshotThreshold > 0 {
		args = append(args, "--snapshot-count", fmt.Sprint(n.o.SnapshotThreshold))
	}
	if n.o.AutoCompactionRetention > 0 {
		args = append(args, "--auto-compaction-mode", "periodic", "--auto-compaction-retention", n.o.AutoCompactionRetention.String())
	}
	if n.o.ProgressNotifyInterval > 0 {
		args = append(args, "--experimental-watch-progress-notify-interval", n.o.ProgressNotifyInterval.String())
	}
	cmd := exec.Command(etcdBinary(n.t), args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(n.dir), "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	// Return once the client port serves, as raftstore.Server.Start does.
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("etcd exited early; log in %s", filepath.Dir(n.dir))
		default:
		}
		if c, err := dialOK(n.client); err == nil && c {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd client port %s not serving after 20s", n.client)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *etcdNode) ClientAddr() string { return n.client }
func (n *etcdNode) PeerAddr() string   { return n.peer }

func (n *etcdNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func (n *etcdNode) Stop() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("etcd pid %d did not exit", cmd.Process.Pid)
	}
}

func (n *etcdNode) Restart(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("%s is running", n.name)
	}
	return n.start()
}

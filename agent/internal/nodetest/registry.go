package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
)

// RegistryBinary is Debian's docker-registry (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// Registry is a docker-registry process on loopback with its own storage,
// stopped by its PID at cleanup.
type Registry struct {
	// Host is where it listens, "127.0.0.1:port": the host part of the
	// references of its images.
	Host string

	t        *testing.T
	dir      string
	htpasswd string
	cmd      *exec.Cmd
	done     chan struct{}
	stopped  bool
	logMu    sync.Mutex
	logBuf   bytes.Buffer
}

// Write collects the registry's output (its access log among it).
func (r *Registry) Write(p []byte) (int, error) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.Write(p)
}

// Log is everything the registry printed so far.
func (r *Registry) Log() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.String()
}

// ManifestRequests counts the requests for repo's manifests in the access
// log (containerd resolves with HEAD, then GETs).
func (r *Registry) ManifestRequests(repo string) int {
	re := regexp.MustCompile(`"(HEAD|GET) /v2/` + regexp.QuoteMeta(repo) + `/manifests/`)
	return len(re.FindAllString(r.Log(), -1))
}

// StartRegistry runs docker-registry on a free loopback port, plain HTTP;
// with an htpasswd line ("user:bcrypt hash") it asks every client for that
// login. It skips the test without the binary.
func StartRegistry(t *testing.T, htpasswd string) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skipf("needs %s (Debian package docker-registry; scripts/deps.sh installs it)", RegistryBinary)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	_ = l.Close()
	r := &Registry{t: t, Host: host, dir: TempDir(t), htpasswd: htpasswd}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (again, after Stop) serves the same storage on the same port.
func (r *Registry) Start() {
	t := r.t
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: skiff-test
`, filepath.Join(r.dir, "data"), r.Host)
	if r.htpasswd != "" {
		pw := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(r.htpasswd+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += "auth:\n  htpasswd:\n    realm: skiff-test\n    path: " + pw + "\n"
	}
	path := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(RegistryBinary, "serve", path)
	r.cmd.Stdout, r.cmd.Stderr = r, r
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", RegistryBinary, err)
	}
	r.stopped = false
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	Poll(t, 15*time.Second, "registry answers /v2/ on "+r.Host, func() (bool, error) {
		select {
		case <-r.done:
			return false, fmt.Errorf("registry exited: %s", r.Log())
		default:
		}
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		ok := resp.StatusCode == http.StatusOK || (r.htpasswd != "" && resp.StatusCode == http.StatusUnauthorized)
		return ok, fmt.Errorf("status %s", resp.Status)
	})
	t.Logf("registry pid %d on %s", r.cmd.Process.Pid, r.Host)
}

// Stop ends the registry (its PID only) and waits for it.
func (r *Registry) Stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// PushImage writes a busybox image whose config carries SKIFF_BUILD=build
// (each build has its own digest) to ref, through a containerd namespace of
// its own so the node's namespace never sees it; login is user, password
// for a registry that wants one. It returns the manifest digest.
func PushImage(t testing.TB, d *containerd.Daemon, ref, build string, login ...string) string {
	t.Helper()
	shell, _, err := images.TestImages(images.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	img := images.Image{Names: []string{ref}, Layers: shell.Layers, Config: ocispec.ImageConfig{
		Env: append(append([]string{}, shell.Config.Env...), "SKIFF_BUILD="+build), Cmd: shell.Config.Cmd}}
	var buf bytes.Buffer
	if err := images.WriteLayout(&buf, img); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), "skiff-test-push"), time.Minute)
	defer cancel()
	if _, err := d.ImportImage(ctx, &buf); err != nil {
		t.Fatalf("import %s for pushing: %v", ref, err)
	}
	stored, err := d.Client().GetImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	opts := []docker.RegistryOpt{docker.WithPlainHTTP(docker.MatchAllHosts)}
	if len(login) == 2 {
		opts = append(opts, docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(
			func(string) (string, string, error) { return login[0], login[1], nil }))))
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
	if err := d.Client().Push(ctx, ref, stored.Target(), client.WithResolver(resolver)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	t.Logf("pushed %s (SKIFF_BUILD=%s) as %s", ref, build, stored.Target().Digest)
	return stored.Target().Digest.String()
}

// The login of test registries that want one: user "skiff", password
// "pull-s3cret" (bcrypt cost 5, made with Python's crypt module).
const (
	RegistryUser     = "skiff"
	RegistryPassword = "pull-s3cret"
	RegistryHtpasswd = RegistryUser + ":$2b$05$f8kCpAAJmHGv05t1voCWiu7MHTWw8KY2zydNwf5qQjOd99yJqj1EW"
)

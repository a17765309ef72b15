package containerd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
)

// Snapshotter is the snapshotter images are unpacked into and containers
// run on. overlayfs works on the target machines; "native" copies the whole
// rootfs per container.
const Snapshotter = "overlayfs"

// ImageInfo is one image as the node sees it.
type ImageInfo struct {
	Name     string // full reference, e.g. docker.io/library/nginx:latest
	Digest   string // manifest (or index) digest
	Size     int64  // bytes of content (compressed)
	Unpacked bool   // ready for containers on Snapshotter
}

// ImportImage loads an OCI image layout or `docker save` tarball and unpacks
// every image in it for Snapshotter. It returns the full references loaded.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	ctx = d.nsContext(ctx)
	imgs, err := d.client.Import(ctx, r,
		client.WithAllPlatforms(false),
		client.WithImportCompression(),
		client.WithDigestRef(archive.DigestTranslator("import")),
		client.WithSkipDigestRef(func(name string) bool { return name != "" }),
	)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	var names []string
	for _, meta := range imgs {
		img := client.NewImageWithPlatform(d.client, meta, platformMatcher())
		if err := img.Unpack(ctx, Snapshotter); err != nil {
			return names, fmt.Errorf("unpack %s: %w", meta.Name, err)
		}
		names = append(names, meta.Name)
	}
	sort.Strings(names)
	return names, nil
}

// ListImages lists the images in Skiff's namespace, sorted by name.
func (d *Daemon) ListImages(ctx context.Context) ([]ImageInfo, error) {
	ctx = d.nsContext(ctx)
	imgs, err := d.client.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		info := ImageInfo{Name: img.Name(), Digest: img.Target().Digest.String()}
		if size, err := img.Size(ctx); err == nil {
			info.Size = size
		}
		if ok, err := img.IsUnpacked(ctx, Snapshotter); err == nil {
			info.Unpacked = ok
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// HasImage reports whether ref (already normalised) is present.
func (d *Daemon) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := d.client.GetImage(d.nsContext(ctx), ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// ErrImagePull: the image could not be pulled from its registry.
var ErrImagePull = errors.New("image pull failed")

// Image describes the image ref (already normalised) as stored, or fails
// with an errdefs NotFound error.
func (d *Daemon) Image(ctx context.Context, ref string) (ImageInfo, error) {
	ctx = d.nsContext(ctx)
	img, err := d.client.GetImage(ctx, ref)
	if err != nil {
		return ImageInfo{}, err
	}
	info := ImageInfo{Name: img.Name(), Digest: img.Target().Digest.String()}
	if size, err := img.Size(ctx); err == nil {
		info.Size = size
	}
	if ok, err := img.IsUnpacked(ctx, Snapshotter); err == nil {
		info.Unpacked = ok
	}
	return info, nil
}

// PullOption adjusts one pull.
type PullOption func(*pullSettings)

type pullSettings struct {
	registries Registries
	creds      func(host string) (user, secret string, err error)
}

// WithRegistries pulls by the node's registry settings (which hosts may be
// reached without verified TLS).
func WithRegistries(r Registries) PullOption {
	return func(s *pullSettings) { s.registries = r }
}

// WithCredentials answers the registry's authentication challenges: creds
// is asked, per registry host, for a user name and password (or identity
// token); "", "" means anonymous.
func WithCredentials(creds func(host string) (user, secret string, err error)) PullOption {
	return func(s *pullSettings) { s.creds = creds }
}

// PullImage pulls ref (already normalised) from its registry and unpacks
// it for Snapshotter; an image already stored under ref is moved to what
// the registry has now. Any failure (no registry reachable, unknown tag,
// refused credentials) is an ErrImagePull whose message says how to get the
// image onto the node without a registry.
func (d *Daemon) PullImage(ctx context.Context, ref string, opts ...PullOption) error {
	var s pullSettings
	for _, o := range opts {
		o(&s)
	}
	_, err := d.client.Pull(d.nsContext(ctx), ref,
		client.WithResolver(s.registries.resolver(s.creds)),
		client.WithPullUnpack,
		client.WithPullSnapshotter(Snapshotter),
		client.WithPlatformMatcher(platformMatcher()),
	)
	if err != nil {
		return fmt.Errorf("%w: %v%s", ErrImagePull, err, pullHint(ref, err))
	}
	return nil
}

// pullHint tells the user what to do about a failed pull: a registry that
// speaks plain HTTP or has a certificate the node does not trust needs
// --insecure-registry; otherwise the image can be imported by hand.
func pullHint(ref string, err error) string {
	host := ""
	if named, perr := reference.ParseNormalizedNamed(ref); perr == nil {
		host = reference.Domain(named)
	}
	msg := err.Error()
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if strings.Contains(msg, "server gave HTTP response to HTTPS client") ||
		errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || strings.Contains(msg, "x509: ") {
		return fmt.Sprintf(" (registry %s is plain HTTP or its certificate is not trusted: start the agent with --insecure-registry %s, or import the image on the node with `skiff image import FILE`)", host, host)
	}
	if strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "403 Forbidden") || strings.Contains(msg, "authorization failed") {
		return fmt.Sprintf(" (registry %s wants a login, or refused the one given: give the pod imagePullSecrets naming a kubernetes.io/dockerconfigjson Secret with a login for %s, or import the image on the node with `skiff image import FILE`)", host, host)
	}
	return " (no registry serves it? import it on the node with `skiff image import FILE`; `skiff image build-test` writes the test images)"
}

// Credentials are registry logins by registry host ("registry.lan:5000",
// "docker.io"), as a node gets them from a pod's imagePullSecrets.
type Credentials map[string]Login

// Login is one registry login: a user name and password, or an identity
// token (OAuth refresh token) without a user.
type Login struct {
	Username, Password, IdentityToken string
}

// dockerAuth is one entry of a docker config's auths.
type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"` // base64 of "user:password"
	IdentityToken string `json:"identitytoken"`
}

// ParseDockerConfig reads the data of a kubernetes.io/dockerconfigjson
// Secret (.dockerconfigjson: {"auths": {HOST: {...}}}) or, with legacy, of
// a kubernetes.io/dockercfg Secret (.dockercfg: the auths map alone). Keys
// may be written as docker login writes them (https://index.docker.io/v1/).
func ParseDockerConfig(data []byte, legacy bool) (Credentials, error) {
	var auths map[string]dockerAuth
	if legacy {
		if err := json.Unmarshal(data, &auths); err != nil {
			return nil, fmt.Errorf(".dockercfg: %w", err)
		}
	} else {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf(".dockerconfigjson: %w", err)
		}
		auths = cfg.Auths
	}
	out := Credentials{}
	for key, a := range auths {
		l := Login{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			user, pass, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("auths[%q].auth: want base64 of user:password", key)
			}
			if l.Username == "" {
				l.Username, l.Password = user, pass
			}
		}
		out[registryKey(key)] = l
	}
	return out, nil
}

// registryKey is the host a docker config key or a registry host names:
// scheme and path dropped, Docker Hub's names folded into docker.io.
func registryKey(s string) string {
	s = strings.ToLower(s)
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// Lookup answers a registry's challenge for host (WithCredentials):
// the login for it, or anonymous.
func (c Credentials) Lookup(host string) (user, secret string, err error) {
	l, ok := c[registryKey(host)]
	switch {
	case !ok:
		return "", "", nil
	case l.IdentityToken != "" && l.Password == "":
		return "", l.IdentityToken, nil
	}
	return l.Username, l.Password, nil
}

// Registries are the node's settings for reaching image registries.
//
// As Docker and containerd do, a registry on a loopback address or
// "localhost" needs no TLS. Every other registry is reached over HTTPS
// with a verified certificate, unless it is listed in Insecure: then its
// certificate is not verified, and a registry that answers HTTPS with
// plain HTTP is asked again over HTTP (Docker's insecure-registries).
type Registries struct {
	// Insecure are "host" or "host:port" entries, as they appear in image
	// references (a port must match the reference's).
	Insecure []string
}

// Validate checks that every insecure registry is a bare host[:port], as
// the host part of an image reference is written.
func (r Registries) Validate() error {
	for _, h := range r.Insecure {
		named, err := reference.ParseNormalizedNamed(h + "/image")
		if h == "" || strings.Contains(h, "/") || err != nil || reference.Domain(named) != h {
			return fmt.Errorf("insecure registry %q: want host or host:port as in image references, without scheme or path (e.g. registry.lan:5000)", h)
		}
	}
	return nil
}

func (r Registries) insecure(host string) bool {
	if docker.IsLocalhost(host) {
		return true
	}
	for _, h := range r.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// The two transports every pull shares (their connection pools with them):
// one verifying TLS, one not (for insecure and loopback registries).
var (
	secureTransport   = sync.OnceValue(func() *http.Transport { return newTransport(nil) })
	insecureTransport = sync.OnceValue(func() *http.Transport {
		return newTransport(&tls.Config{InsecureSkipVerify: true})
	})
)

// resolver is a docker resolver that reaches each registry as Registries
// says, with a fresh fallback state per pull.
func (r Registries) resolver(creds func(string) (string, string, error)) remotes.Resolver {
	secure := &http.Client{Transport: secureTransport()}
	hosts := func(host string) ([]docker.RegistryHost, error) {
		c := secure
		if r.insecure(host) {
			c = &http.Client{Transport: docker.NewHTTPFallback(insecureTransport())}
		}
		h := docker.RegistryHost{
			Client:       c,
			Authorizer:   docker.NewDockerAuthorizer(docker.WithAuthClient(c), docker.WithAuthCreds(creds)),
			Host:         host,
			Scheme:       "https",
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush,
		}
		if host == "docker.io" {
			h.Host = "registry-1.docker.io"
		}
		return []docker.RegistryHost{h}, nil
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// newTransport is http.DefaultTransport's setup with bounded connection
// and header waits (a registry that accepts and never answers must not
// hold a pod's worker forever), and tlsConfig when given.
func newTransport(tlsConfig *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig
	}
	return t
}

// NodeImages is the node's image store as the pod workers use it: whether
// an image is present, and pulls by the node's registry settings.
type NodeImages struct {
	Daemon     *Daemon
	Registries Registries
}

// HasImage reports whether ref (already normalised) is present.
func (n NodeImages) HasImage(ctx context.Context, ref string) (bool, error) {
	return n.Daemon.HasImage(ctx, ref)
}

// PullImage pulls ref (already normalised) and describes what was stored.
func (n NodeImages) PullImage(ctx context.Context, ref string, opts ...PullOption) (ImageInfo, error) {
	if err := n.Daemon.PullImage(ctx, ref, append([]PullOption{WithRegistries(n.Registries)}, opts...)...); err != nil {
		return ImageInfo{}, err
	}
	return n.Daemon.Image(ctx, ref)
}

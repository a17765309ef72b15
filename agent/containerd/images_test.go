package containerd

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestRegistriesValidate(t *testing.T) {
	for _, tc := range []struct {
		hosts []string
		bad   string // part of the error, "" for valid
	}{
		{hosts: []string{"registry.lan:5000", "10.0.0.7", "reg.example.com", "localhost:5000", "[::1]:5000"}},
		{hosts: []string{"http://registry.lan"}, bad: `"http://registry.lan"`},
		{hosts: []string{"registry.lan/path"}, bad: "without scheme or path"},
		{hosts: []string{""}, bad: `insecure registry ""`},
		{hosts: []string{"reg lan"}, bad: `"reg lan"`},
		{hosts: []string{"registry.lan:port"}, bad: `"registry.lan:port"`},
	} {
		err := Registries{Insecure: tc.hosts}.Validate()
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v, want valid", tc.hosts, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%q: error %v, want one with %q", tc.hosts, err, tc.bad)
		}
	}
}

func TestRegistriesInsecure(t *testing.T) {
	r := Registries{Insecure: []string{"registry.lan:5000", "Other.Lan"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000":    true, // loopback needs no TLS, as in Docker and containerd
		"localhost":         true,
		"[::1]:5000":        true,
		"registry.lan:5000": true,
		"other.lan":         true,
		"registry.lan":      false, // the port is part of the entry
		"registry.lan:5001": false,
		"docker.io":         false,
		"10.0.0.7:5000":     false,
	} {
		if got := r.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
}

// fakeRegistry answers a manifest HEAD/GET for x/y:1 as a v2 registry.
func fakeRegistry(t *testing.T) http.Handler {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	dgst := digest.FromBytes(manifest)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v2/x/y/manifests/1":
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", dgst.String())
			w.Header().Set("Content-Length", strconv.Itoa(len(manifest)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(manifest)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

// TestResolverLoopback: a registry on loopback is reached whether it serves
// plain HTTP or HTTPS with a certificate nobody signed.
func TestResolverLoopback(t *testing.T) {
	for name, start := range map[string]func(http.Handler) *httptest.Server{
		"plain HTTP":      httptest.NewServer,
		"self-signed TLS": httptest.NewTLSServer,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(fakeRegistry(t))
			defer srv.Close()
			host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, desc, err := Registries{}.resolver(nil).Resolve(ctx, host+"/x/y:1")
			if err != nil {
				t.Fatalf("resolve on %s: %v", srv.URL, err)
			}
			if desc.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("media type %q", desc.MediaType)
			}
		})
	}
}

func TestPullHint(t *testing.T) {
	plain := pullHint("registry.lan:5000/app:1", errors.New(`Head "https://registry.lan:5000/v2/app/manifests/1": http: server gave HTTP response to HTTPS client`))
	if !strings.Contains(plain, "--insecure-registry registry.lan:5000") {
		t.Errorf("plain HTTP registry hint %q should name --insecure-registry registry.lan:5000", plain)
	}
	cert := pullHint("registry.lan/app:1", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"))
	if !strings.Contains(cert, "--insecure-registry registry.lan") {
		t.Errorf("untrusted certificate hint %q should name --insecure-registry", cert)
	}
	missing := pullHint("docker.io/library/app:1", errors.New("not found"))
	if !strings.Contains(missing, "skiff image import") || strings.Contains(missing, "insecure") {
		t.Errorf("not-found hint %q should say how to import, nothing about TLS", missing)
	}
}

func TestParseDockerConfig(t *testing.T) {
	cfg := `{"auths": {
		"https://index.docker.io/v1/": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("hub:pa:ss")) + `"},
		"registry.lan:5000": {"username": "u", "password": "p"},
		"token.lan": {"identitytoken": "tok"}}}`
	c, err := ParseDockerConfig([]byte(cfg), false)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][2]string{
		"registry-1.docker.io": {"hub", "pa:ss"}, // the host the resolver asks for docker.io
		"docker.io":            {"hub", "pa:ss"},
		"registry.lan:5000":    {"u", "p"},
		"REGISTRY.lan:5000":    {"u", "p"},
		"registry.lan":         {"", ""}, // another port is another registry
		"token.lan":            {"", "tok"},
		"other.example":        {"", ""},
	} {
		u, s, err := c.Lookup(host)
		if err != nil || u != want[0] || s != want[1] {
			t.Errorf("Lookup(%q) = %q, %q, %v; want %q, %q", host, u, s, err, want[0], want[1])
		}
	}
	legacy, err := ParseDockerConfig([]byte(`{"registry.lan:5000": {"username": "u", "password": "p"}}`), true)
	if err != nil || legacy["registry.lan:5000"].Username != "u" {
		t.Errorf("legacy .dockercfg: %v, %+v", err, legacy)
	}
	for _, bad := range []string{`{"auths": []}`, `{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}`, `not json`} {
		if _, err := ParseDockerConfig([]byte(bad), false); err == nil {
			t.Errorf("ParseDockerConfig(%s): no error", bad)
		}
	}
}

func TestPullHintLogin(t *testing.T) {
	h := pullHint("registry.lan:5000/app:1", errors.New(`unexpected status from HEAD request to https://registry.lan:5000/v2/app/manifests/1: 401 Unauthorized`))
	if !strings.Contains(h, "imagePullSecrets") || !strings.Contains(h, "registry.lan:5000") {
		t.Errorf("401 hint %q should name imagePullSecrets and the registry", h)
	}
}

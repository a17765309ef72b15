//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func TestPrefixMatch(t *testing.T) {
	for _, tc := range []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/anything", true},
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo", "/foo/bar", true},
		{"/foo/", "/foo", true},
		{"/foo", "/foobar", false},
		{"/foo/bar", "/foo", false},
		{"/aaa/bb", "/aaa/bbb", false},
	} {
		if got := prefixMatch(tc.prefix, tc.path); got != tc.want {
			t.Errorf("prefixMatch(%q, %q) = %v, want %v", tc.prefix, tc.path, got, tc.want)
		}
	}
}

func pathType(p networkingv1.PathType) *networkingv1.PathType { return &p }

func ingPath(path string, pt networkingv1.PathType, svc string, port networkingv1.ServiceBackendPort) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: pathType(pt), Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

var port80 = networkingv1.ServiceBackendPort{Number: 80}

func TestTableLookup(t *testing.T) {
	older := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "old", CreationTimestamp: metav1.NewTime(time.Unix(100, 0))},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "def", Port: port80}},
			Rules: []networkingv1.IngressRule{
				rule("foo.example.com",
					ingPath("/", networkingv1.PathTypePrefix, "root", port80),
					ingPath("/api", networkingv1.PathTypePrefix, "api", port80),
					ingPath("/api/v2", networkingv1.PathTypeImplementationSpecific, "v2", port80),
					ingPath("/exact", networkingv1.PathTypeExact, "exact", port80)),
				rule("*.example.com", ingPath("/", networkingv1.PathTypePrefix, "wild", port80)),
				rule("", ingPath("/", networkingv1.PathTypePrefix, "any", port80)),
			}}}
	newer := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "new", CreationTimestamp: metav1.NewTime(time.Unix(200, 0))},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "def2", Port: port80}},
			Rules: []networkingv1.IngressRule{rule("foo.example.com",
				ingPath("/api", networkingv1.PathTypePrefix, "conflict", port80),
				ingPath("/other", networkingv1.PathTypePrefix, "other", port80))}}}
	tbl := buildTable(inputs{
		ingresses: []*networkingv1.Ingress{newer, older},
		service:   func(ns, name string) *corev1.Service { return nil },
		endpoints: func(ns, name string) *corev1.Endpoints { return nil },
		counters:  map[string]*uint64Counter{},
	})
	for _, tc := range []struct{ host, path, want string }{
		{"foo.example.com", "/api", "api"},
		{"FOO.example.com:8080", "/api/x", "api"},
		{"foo.example.com", "/api/v2/x", "v2"},
		{"foo.example.com", "/apix", "root"},
		{"foo.example.com", "/exact", "exact"},
		{"foo.example.com", "/exact/", "root"},
		{"foo.example.com", "/other/1", "other"},
		{"bar.example.com", "/x", "wild"},
		{"a.bar.example.com", "/x", "any"},
		{"elsewhere", "/", "any"},
	} {
		be := tbl.lookup(tc.host, tc.path)
		got := "<nil>"
		if be != nil {
			got = strings.TrimPrefix(strings.TrimSuffix(be.name, ":80"), "a/")
		}
		if got != tc.want {
			t.Errorf("lookup(%s, %s) = %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	if tbl.def == nil || tbl.def.name != "a/def:80" {
		t.Errorf("default backend %+v, want the older Ingress's a/def:80", tbl.def)
	}
}

// backendServer answers its name on 127.0.0.1 and returns its port.
func backendServer(t *testing.T, name string) (port int32, stop func()) {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.Header.Get("X-Forwarded-Host"))
	}))
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	var once sync.Once
	stop = func() { once.Do(s.Close) }
	t.Cleanup(stop)
	return int32(n), stop
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestRouterIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	create := func(objs ...runtime.Object) {
		t.Helper()
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("create %T: %v", o, err)
			}
		}
	}
	ports := map[string]int32{}
	stops := map[string]func(){}
	for _, name := range []string{"api-1", "api-2", "web-1", "exact-1", "def-1", "wild-1", "tls-1"} {
		ports[name], stops[name] = backendServer(t, name)
	}
	// service creates a Service with one TCP port (named portName) and
	// Endpoints with one subset per backend (each on its own port).
	service := func(name, portName string, port int32, backends ...string) {
		t.Helper()
		create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: portName, Port: port}}}})
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		for _, b := range backends {
			ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: "127.0.0.1"}},
				Ports: []corev1.EndpointPort{{Name: portName, Port: ports[b]}}})
		}
		if len(backends) > 0 {
			create(ep)
		}
	}
	service("api", "http", 80, "api-1", "api-2")
	service("web", "", 8080, "web-1")
	service("exact", "", 80, "exact-1")
	service("def", "", 80, "def-1")
	service("wild", "", 80, "wild-1")
	service("secure", "", 80, "tls-1")
	service("empty", "", 80)
	certPEM, keyPEM := selfSigned(t, "secure.example.com")
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}})

	main := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "main"},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "def", Port: port80}},
			TLS:            []networkingv1.IngressTLS{{Hosts: []string{"secure.example.com"}, SecretName: "secure-tls"}},
			Rules: []networkingv1.IngressRule{
				rule("foo.example.com",
					ingPath("/api", networkingv1.PathTypePrefix, "api", networkingv1.ServiceBackendPort{Name: "http"}),
					ingPath("/exact", networkingv1.PathTypeExact, "exact", port80),
					ingPath("/empty", networkingv1.PathTypePrefix, "empty", port80)),
				rule("*.bar.example.com", ingPath("/", networkingv1.PathTypePrefix, "wild", port80)),
				rule("secure.example.com", ingPath("/", networkingv1.PathTypePrefix, "secure", port80)),
				rule("", ingPath("/", networkingv1.PathTypeImplementationSpecific, "web", networkingv1.ServiceBackendPort{Number: 8080})),
			}}}
	otherClass := "nginx"
	foreign := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "foreign"},
		Spec: networkingv1.IngressSpec{IngressClassName: &otherClass, Rules: []networkingv1.IngressRule{
			rule("foo.example.com", ingPath("/exact", networkingv1.PathTypeExact, "def", port80))}}}
	create(main, foreign)

	infs := map[string]*client.Informer{}
	for name, ex := range map[string]runtime.Object{"ing": &networkingv1.Ingress{}, "svc": &corev1.Service{}, "ep": &corev1.Endpoints{}, "secret": &corev1.Secret{}} {
		i, err := client.NewInformer(c, "", ex, client.ListOptions{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		infs[name] = i
	}
	r := New(DefaultConfig(), infs["ing"], infs["svc"], infs["ep"], infs["secret"])
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, i := range infs {
		i.AddHandler(r.Handler())
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.RunRebuilds(ctx) }()
	front := httptest.NewServer(r)
	defer front.Close()

	get := func(host, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// who answers: the backend name (first word), or "<status>".
	who := func(host, path string) string {
		code, body := get(host, path)
		if code != http.StatusOK {
			return strconv.Itoa(code)
		}
		return strings.Fields(body)[0]
	}
	eventually(t, 10*time.Second, "routes loaded", func() error {
		if got := who("foo.example.com", "/exact"); got != "exact-1" {
			return fmt.Errorf("foo.example.com/exact answered by %s", got)
		}
		return nil
	})
	for _, tc := range []struct{ host, path, want string }{
		{"foo.example.com", "/exact", "exact-1"}, // not the foreign class's
		{"foo.example.com", "/exact/", "def-1"},
		{"foo.example.com", "/apix", "def-1"},
		{"foo.example.com", "/empty/x", "503"},
		{"a.bar.example.com", "/x", "wild-1"},
		{"a.b.bar.example.com", "/x", "web-1"},
		{"unknown.test", "/anything", "web-1"},
	} {
		if got := who(tc.host, tc.path); got != tc.want {
			t.Errorf("%s%s answered by %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	code, body := get("foo.example.com", "/api/v1")
	if f := strings.Fields(body); code != 200 || len(f) != 3 || !strings.HasPrefix(f[0], "api-") || f[1] != "foo.example.com" || f[2] != "foo.example.com" {
		t.Errorf("proxied request: %d %q; want an api backend seeing Host and X-Forwarded-Host foo.example.com", code, body)
	}
	spread := func(n int) map[string]int {
		m := map[string]int{}
		for i := 0; i < n; i++ {
			m[who("foo.example.com", "/api")]++
		}
		return m
	}
	if m := spread(20); m["api-1"] == 0 || m["api-2"] == 0 || len(m) != 2 {
		t.Errorf("requests to /api: %v, want both api-1 and api-2", m)
	}

	t.Run("a dead endpoint costs no error for body-less requests", func(t *testing.T) {
		stops["api-1"]()
		if m := spread(20); m["api-2"] != 20 {
			t.Errorf("with api-1 down: %v, want all on api-2", m)
		}
	})
	t.Run("live reload of endpoints and rules", func(t *testing.T) {
		err := client.RetryOnConflict(ctx, 5, func() error {
			ep := &corev1.Endpoints{}
			if err := c.Get(ctx, "default", "api", ep); err != nil {
				return err
			}
			ep.Subsets[0].Ports[0].Port = ports["exact-1"] // api-1's slot now points at exact-1
			return c.Update(ctx, ep)
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "new endpoint gets traffic", func() error {
			if m := spread(10); m["exact-1"] == 0 || m["api-2"] == 0 {
				return fmt.Errorf("spread %v", m)
			}
			return nil
		})
		err = client.RetryOnConflict(ctx, 5, func() error {
			ing := &networkingv1.Ingress{}
			if err := c.Get(ctx, "default", "main", ing); err != nil {
				return err
			}
			ing.Spec.Rules[0].HTTP.Paths = append(ing.Spec.Rules[0].HTTP.Paths,
				ingPath("/wild", networkingv1.PathTypePrefix, "wild", port80))
			return c.Update(ctx, ing)
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "new path routes", func() error {
			if got := who("foo.example.com", "/wild/1"); got != "wild-1" {
				return fmt.Errorf("answered by %s", got)
			}
			return nil
		})
	})
	t.Run("TLS with the certificate of the Secret, chosen by SNI", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = hs.Serve(tls.NewListener(ln, r.TLSConfig())) }()
		defer func() { hs.Close(); <-done }()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.example.com", MinVersion: tls.VersionTLS12}}}
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+ln.Addr().String()+"/", nil)
		req.Host = "secure.example.com"
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(b), "tls-1 ") {
			t.Errorf("https answered %q, want tls-1", b)
		}
	})
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

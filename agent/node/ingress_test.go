//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the agent reads it (proxy, DNS, Ingress).

package node_test

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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/client"
)

// ingressAgentConfig is startAgent's config with the Ingress router on the given
// ports and the proxy and DNS off (the router needs neither: it goes to
// pod IPs, and the proxy's chains are global to the host).
func (e *env) ingressAgentConfig(name string, httpPort, httpsPort int) node.Config {
	cfg := node.DefaultConfig(name, e.dir, e.c)
	cfg.BridgeName, cfg.CgroupParent, cfg.PodCIDR = e.marker, e.marker, e.podCIDR
	cfg.HeartbeatInterval, cfg.Resync = time.Second, time.Second
	cfg.StreamListen = ":0"
	cfg.Proxy, cfg.DNS = false, false
	cfg.ClusterCIDR = "10.250.0.0/16"
	cfg.Ingress, cfg.IngressHTTPPort, cfg.IngressHTTPSPort = true, httpPort, httpsPort
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// freePort is a TCP port nothing listens on (on any address) right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// portFree reports whether port can be listened on, on every address.
func portFree(port int) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	return ln.Close()
}

func selfSignedCert(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
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

// ingressGet sends GET url with the Host header host (and, for https, SNI
// host checked against roots) on a new connection, and returns the status
// and the body.
func ingressGet(url, host string, roots *x509.CertPool) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 3 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestIngress: through Skiff's control plane, an agent with the Ingress
// router on (free high ports) routes by host and path to two Deployments
// of the HTTP image behind two Services: a.example.test/ goes to web-a,
// b.example.test/cgi-bin to web-b, anything else is a 404; on 127.0.0.1
// and on the node IP. A new path added to the Ingress is routed live; a
// TLS Secret named in spec.tls is served by SNI on the HTTPS port. A port
// taken by another program fails Start with an error naming the port and
// the flag, and leaves nothing listening; Close frees both ports.
func TestIngress(t *testing.T) {
	e := newControlPlaneEnv(t)
	httpPort, httpsPort := freePort(t), freePort(t)
	for httpsPort == httpPort {
		httpsPort = freePort(t)
	}

	// A taken HTTPS port: Start fails, naming it and the flag, and lets go
	// of the HTTP port it had already taken.
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	takenPort := taken.Addr().(*net.TCPAddr).Port
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	a, err := node.Start(sctx, e.ingressAgentConfig("n1", httpPort, takenPort))
	cancel()
	taken.Close()
	if err == nil {
		a.Close()
		t.Fatalf("Start with HTTPS port %d taken: no error", takenPort)
	}
	for _, want := range []string{fmt.Sprintf("ingress HTTPS port %d is already in use", takenPort), "--ingress-https-port", "--disable-ingress"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start with the HTTPS port taken: error %q lacks %q", err, want)
		}
	}
	if err := portFree(httpPort); err != nil {
		t.Errorf("HTTP port %d still taken after the failed Start: %v", httpPort, err)
	}

	sctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	a, err = node.Start(sctx, e.ingressAgentConfig("n1", httpPort, httpsPort))
	cancel()
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	if got := a.IngressAddrs(); len(got) != 2 {
		t.Errorf("IngressAddrs() = %v, want the HTTP and HTTPS addresses", got)
	} else {
		for i, port := range []int{httpPort, httpsPort} {
			h, p, err := net.SplitHostPort(got[i])
			if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsUnspecified() || p != strconv.Itoa(port) {
				t.Errorf("IngressAddrs()[%d] = %q, want port %d on every address of the node", i, got[i], port)
			}
		}
	}
	ctx := e.ctx()

	var objs []k8sruntime.Object
	for _, name := range []string{"web-a", "web-b"} {
		one := int32(1)
		labels := map[string]string{"app": name}
		objs = append(objs, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						TerminationGracePeriodSeconds: int64Ptr(1),
						Containers: []corev1.Container{{Name: "httpd", Image: "skiff.local/httpd:latest",
							ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/healthz", Port: intstrFromInt(80)}}, PeriodSeconds: 1}}},
					},
				},
			},
		}, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 8080,
				TargetPort: intstrFromInt(80), Protocol: corev1.ProtocolTCP}}},
		})
	}
	prefix := networkingv1.PathTypePrefix
	path := func(p, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: &prefix, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example.test"}, SecretName: "a-tls"}},
			Rules: []networkingv1.IngressRule{
				rule("a.example.test", path("/", "web-a")),
				rule("b.example.test", path("/cgi-bin", "web-b")),
			},
		},
	}
	objs = append(objs, ing)
	for _, o := range objs {
		if err := e.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Poll(t, 90*time.Second, "web-a and web-b each with a ready endpoint", func() (bool, error) {
		for _, name := range []string{"web-a", "web-b"} {
			ep := &corev1.Endpoints{}
			if err := e.c.Get(context.Background(), "default", name, ep); err != nil {
				return false, err
			}
			ready := 0
			for _, s := range ep.Subsets {
				ready += len(s.Addresses)
			}
			if ready != 1 {
				return false, fmt.Errorf("%s has %d ready endpoints", name, ready)
			}
		}
		return true, nil
	})

	// expect polls until GET url with Host host answers status with a body
	// naming a pod of the Deployment want (when want is not "").
	expect := func(base, host, path string, roots *x509.CertPool, status int, want string) {
		t.Helper()
		nodetest.Poll(t, 20*time.Second, fmt.Sprintf("GET %s%s Host %s → %d %s", base, path, host, status, want), func() (bool, error) {
			code, body, err := ingressGet(base+path, host, roots)
			if err != nil {
				return false, err
			}
			if code != status || (want != "" && !strings.Contains(body, want+"-")) {
				return false, fmt.Errorf("got %d %q", code, body)
			}
			return true, nil
		})
	}
	for _, ip := range []string{"127.0.0.1", a.NodeIP()} {
		base := "http://" + net.JoinHostPort(ip, strconv.Itoa(httpPort))
		expect(base, "a.example.test", "/", nil, 200, "web-a")
		expect(base, "a.example.test", "/cgi-bin/info", nil, 200, "web-a")
		expect(base, "b.example.test", "/cgi-bin/info", nil, 200, "web-b")
		expect(base, "b.example.test", "/", nil, 404, "")
		expect(base, "c.example.test", "/", nil, 404, "")
	}
	base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))

	// Live: a longer prefix on a.example.test now goes to web-b.
	if err := client.RetryOnConflict(ctx, 5, func() error {
		cur := &networkingv1.Ingress{}
		if err := e.c.Get(ctx, "default", "web", cur); err != nil {
			return err
		}
		cur.Spec.Rules[0].HTTP.Paths = append(cur.Spec.Rules[0].HTTP.Paths, path("/cgi-bin", "web-b"))
		return e.c.Update(ctx, cur)
	}); err != nil {
		t.Fatal(err)
	}
	expect(base, "a.example.test", "/cgi-bin/info", nil, 200, "web-b")
	expect(base, "a.example.test", "/", nil, 200, "web-a")

	// TLS: no certificate until the Secret exists, then it is served by SNI.
	httpsBase := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort))
	if _, _, err := ingressGet(httpsBase+"/", "a.example.test", x509.NewCertPool()); err == nil {
		t.Errorf("HTTPS before the TLS Secret exists: the handshake succeeded")
	}
	certPEM, keyPEM := selfSignedCert(t, "a.example.test")
	if err := e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "a-tls", Namespace: "default"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	expect(httpsBase, "a.example.test", "/", roots, 200, "web-a")
	expect(httpsBase, "a.example.test", "/cgi-bin/info", roots, 200, "web-b")
	// Another name gets no certificate (the handshake fails).
	if _, _, err := ingressGet(httpsBase+"/", "b.example.test", roots); err == nil {
		t.Errorf("HTTPS with SNI b.example.test (no TLS entry): the handshake succeeded")
	}

	// Close lets go of both ports.
	a.Close()
	for _, p := range []int{httpPort, httpsPort} {
		if err := portFree(p); err != nil {
			t.Errorf("ingress port %d still taken after Close: %v", p, err)
		}
	}
}

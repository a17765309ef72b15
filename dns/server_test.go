//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
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

// query asks addr over network ("udp" or "tcp") and renders the answer as
// "RCODE; rr rr ...; extra ..." with names and data only, sorted.
func query(addr, network, name string, qtype uint16) (string, *mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		return "", nil, err
	}
	render := func(rrs []mdns.RR) string {
		var out []string
		for _, rr := range rrs {
			if rr.Header().Rrtype == mdns.TypeOPT {
				continue
			}
			f := strings.Fields(rr.String())
			// name ttl class type data...: drop ttl and class
			out = append(out, f[0]+" "+strings.Join(f[3:], " "))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	s := mdns.RcodeToString[in.Rcode] + "; " + render(in.Answer)
	if x := render(in.Extra); x != "" {
		s += "; extra " + x
	}
	return s, in, nil
}

func TestServer(t *testing.T) {
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
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "web", Port: 80}}}}
	headlessEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx"},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.244.0.10", Hostname: "web-0"}, {IP: "10.244.0.11"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.12", Hostname: "web-2"}},
			Ports:             []corev1.EndpointPort{{Name: "web", Port: 8080}},
		}}}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	alias := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "alias"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.default.svc.cluster.local"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "web:1"}}}}
	create(web, headless, headlessEP, ext, alias, pod)
	pod.Status.PodIP, pod.Status.PodIPs = "10.244.0.10", []corev1.PodIP{{IP: "10.244.0.10"}}
	if err := c.UpdateStatus(ctx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}

	infs := map[string]*client.Informer{}
	for name, ex := range map[string]runtime.Object{"svc": &corev1.Service{}, "ep": &corev1.Endpoints{}, "pod": &corev1.Pod{}} {
		i, err := client.NewInformer(c, "", ex, client.ListOptions{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		infs[name] = i
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = testLogger(t)
	s, err := New(cfg, infs["svc"], infs["ep"], infs["pod"])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, i := range infs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = i.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run(ctx) }()
	for _, i := range infs {
		if !i.WaitForSync(ctx) {
			t.Fatal("caches did not sync")
		}
	}

	z := ".default.svc.cluster.local."
	cip := web.Spec.ClusterIP
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web" + z, mdns.TypeA, "NOERROR; web" + z + " A " + cip},
		{"WEB.Default.svc.cluster.local.", mdns.TypeA, "NOERROR; web" + z + " A " + cip},
		{"web" + z, mdns.TypeAAAA, "NOERROR; "},
		{"nginx" + z, mdns.TypeA, "NOERROR; nginx" + z + " A 10.244.0.10, nginx" + z + " A 10.244.0.11"},
		{"web-0.nginx" + z, mdns.TypeA, "NOERROR; web-0.nginx" + z + " A 10.244.0.10"},
		{"10-244-0-11.nginx" + z, mdns.TypeA, "NOERROR; 10-244-0-11.nginx" + z + " A 10.244.0.11"},
		{"web-2.nginx" + z, mdns.TypeA, "NXDOMAIN; "}, // not ready
		{"_http._tcp.web" + z, mdns.TypeSRV, "NOERROR; _http._tcp.web" + z + " SRV 0 100 80 web" + z + "; extra web" + z + " A " + cip},
		{"_dns._udp.web" + z, mdns.TypeSRV, "NOERROR; _dns._udp.web" + z + " SRV 0 100 53 web" + z + "; extra web" + z + " A " + cip},
		{"_dns._tcp.web" + z, mdns.TypeSRV, "NXDOMAIN; "},
		{"_web._tcp.nginx" + z, mdns.TypeSRV, "NOERROR; _web._tcp.nginx" + z + " SRV 0 100 8080 10-244-0-11.nginx" + z +
			", _web._tcp.nginx" + z + " SRV 0 100 8080 web-0.nginx" + z +
			"; extra 10-244-0-11.nginx" + z + " A 10.244.0.11, web-0.nginx" + z + " A 10.244.0.10"},
		{"web" + z, mdns.TypeSRV, "NOERROR; web" + z + " SRV 0 100 53 web" + z + ", web" + z + " SRV 0 100 80 web" + z +
			"; extra web" + z + " A " + cip + ", web" + z + " A " + cip},
		{"db" + z, mdns.TypeA, "NOERROR; db" + z + " CNAME db.example.com."},
		{"alias" + z, mdns.TypeA, "NOERROR; alias" + z + " CNAME web" + z + ", web" + z + " A " + cip},
		{"10-244-0-10.default.pod.cluster.local.", mdns.TypeA, "NOERROR; 10-244-0-10.default.pod.cluster.local. A 10.244.0.10"},
		{"10-244-0-99.default.pod.cluster.local.", mdns.TypeA, "NXDOMAIN; "}, // no such pod
		{"10-244-0-10.other.pod.cluster.local.", mdns.TypeA, "NXDOMAIN; "},   // not in that namespace
		{"missing" + z, mdns.TypeA, "NXDOMAIN; "},
		{"web.other.svc.cluster.local.", mdns.TypeA, "NXDOMAIN; "},
		{"default.svc.cluster.local.", mdns.TypeA, "NOERROR; "},
		{"example.com.", mdns.TypeA, "NXDOMAIN; "}, // no upstream
		{reverseName(cip), mdns.TypePTR, "NOERROR; " + reverseName(cip) + " PTR web" + z},
		{"10.0.244.10.in-addr.arpa.", mdns.TypePTR, "NOERROR; 10.0.244.10.in-addr.arpa. PTR web-0.nginx" + z},
		{"12.0.244.10.in-addr.arpa.", mdns.TypePTR, "NXDOMAIN; "}, // not ready: not ours
	} {
		for _, network := range []string{"udp", "tcp"} {
			got, in, err := query(addr, network, tc.name, tc.qtype)
			if err != nil {
				t.Errorf("%s %s over %s: %v", mdns.TypeToString[tc.qtype], tc.name, network, err)
				continue
			}
			if got != tc.want {
				t.Errorf("%s %s over %s:\n got %s\nwant %s", mdns.TypeToString[tc.qtype], tc.name, network, got, tc.want)
			}
			inZone := mdns.IsSubDomain("cluster.local.", strings.ToLower(tc.name)) || strings.HasPrefix(got, "NOERROR")
			if inZone && !in.Authoritative {
				t.Errorf("%s: answer not authoritative", tc.name)
			}
			if inZone && len(in.Answer) == 0 && (len(in.Ns) != 1 || in.Ns[0].Header().Rrtype != mdns.TypeSOA) {
				t.Errorf("%s: negative answer without the zone's SOA: %v", tc.name, in.Ns)
			}
		}
	}

	t.Run("changes are served live", func(t *testing.T) {
		late := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "late"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		create(late)
		eventually(t, 10*time.Second, "late resolves", func() error {
			got, _, err := query(addr, "udp", "late"+z, mdns.TypeA)
			if want := "NOERROR; late" + z + " A " + late.Spec.ClusterIP; err != nil || got != want {
				return fmt.Errorf("got %q (%v), want %q", got, err, want)
			}
			return nil
		})
		if _, err := c.Delete(ctx, late, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "late gone", func() error {
			got, _, err := query(addr, "udp", "late"+z, mdns.TypeA)
			if err != nil || !strings.HasPrefix(got, "NXDOMAIN") {
				return fmt.Errorf("got %q (%v), want NXDOMAIN", got, err)
			}
			return nil
		})
	})

	t.Run("large answers truncate over UDP and come whole over TCP", func(t *testing.T) {
		big := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "big"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}
		bigEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "big"},
			Subsets: []corev1.EndpointSubset{{}}}
		for i := 0; i < 100; i++ {
			bigEP.Subsets[0].Addresses = append(bigEP.Subsets[0].Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.244.1.%d", i+1)})
		}
		create(big, bigEP)
		eventually(t, 10*time.Second, "big resolves whole over TCP", func() error {
			_, in, err := query(addr, "tcp", "big"+z, mdns.TypeA)
			if err != nil || len(in.Answer) != 100 {
				return fmt.Errorf("%v answers (%v)", in, err)
			}
			return nil
		})
		c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
		m := new(mdns.Msg)
		m.SetQuestion("big"+z, mdns.TypeA)
		in, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Truncated || len(in.Answer) >= 100 {
			t.Errorf("UDP answer of %d records, truncated=%v: want a truncated answer", len(in.Answer), in.Truncated)
		}
	})

	t.Run("forwarding only when configured", func(t *testing.T) {
		up := startUpstream(t)
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Upstreams = []string{up}
		fs, err := New(cfg, infs["svc"], infs["ep"], nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Listen(); err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = fs.Run(fctx) }()
		defer func() { fcancel(); <-done }()
		got, _, err := query(fs.Addr(), "udp", "example.com.", mdns.TypeA)
		if want := "NOERROR; example.com. A 192.0.2.1"; err != nil || got != want {
			t.Errorf("forwarded: got %q (%v), want %q", got, err, want)
		}
		// In-zone names are never forwarded; pods: from the name alone.
		got, _, err = query(fs.Addr(), "udp", "10-244-0-99.default.pod.cluster.local.", mdns.TypeA)
		if want := "NOERROR; 10-244-0-99.default.pod.cluster.local. A 10.244.0.99"; err != nil || got != want {
			t.Errorf("pod without a pods cache: got %q (%v), want %q", got, err, want)
		}
	})
}

func reverseName(ip string) string {
	r, _ := mdns.ReverseAddr(ip)
	return r
}

// startUpstream runs a DNS server answering example.com. A 192.0.2.1.
func startUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.com." {
			rr, _ := mdns.NewRR("example.com. 60 IN A 192.0.2.1")
			m.Answer = []mdns.RR{rr}
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	bad := DefaultConfig()
	bad.Domain, bad.TTL, bad.Upstreams = "cluster.local.", 0, []string{"8.8.8.8"}
	err := bad.Validate()
	for _, want := range []string{"domain", "TTL", "upstream"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error about %s", err, want)
		}
	}
}

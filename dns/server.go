//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; DNS reads it.

package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Config tunes a Server.
type Config struct {
	// Domain is the cluster domain (default "cluster.local").
	Domain string
	// Listen is the UDP and TCP address to serve on (default ":53").
	Listen string
	// TTL of answers (default 5s).
	TTL time.Duration
	// Upstreams are "host:port" servers names outside Domain are forwarded
	// to, tried in order. Empty: no forwarding (NXDOMAIN).
	Upstreams []string
	// UpstreamTimeout bounds one forwarded exchange (default 2s).
	UpstreamTimeout time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
}

// DefaultConfig is the configuration of the agent's DNS but for Listen.
func DefaultConfig() Config {
	return Config{Domain: "cluster.local", Listen: ":53", TTL: 5 * time.Second, UpstreamTimeout: 2 * time.Second}
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if _, ok := mdns.IsDomainName(c.Domain); !ok || c.Domain == "" || strings.HasSuffix(c.Domain, ".") {
		errs = append(errs, fmt.Errorf("domain %q: want a domain name without the final dot", c.Domain))
	}
	if c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("TTL %v: want at least 1s", c.TTL))
	}
	for _, u := range c.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			errs = append(errs, fmt.Errorf("upstream %q: want host:port", u))
		}
	}
	if len(c.Upstreams) > 0 && c.UpstreamTimeout <= 0 {
		errs = append(errs, errors.New("upstream timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Cache is what the server reads from: one kind's objects by
// "namespace/name", all namespaces. *client.Informer implements it.
// Objects are shared and never modified.
type Cache interface {
	Get(key string) (runtime.Object, bool)
	List(sel labels.Selector) []runtime.Object
}

var _ Cache = (*client.Informer)(nil)

// Server answers DNS queries for the cluster domain. It implements
// miekg/dns's Handler, so it can also be mounted in another DNS server.
type Server struct {
	cfg                       Config
	zone                      string // "cluster.local."
	services, endpoints, pods Cache
	log                       *slog.Logger

	mu  sync.Mutex
	udp net.PacketConn
	tcp net.Listener
}

var _ mdns.Handler = (*Server)(nil)

// New returns a server answering from the caches. pods may be nil: pod
// names are then answered from the name alone, as CoreDNS's "pods
// insecure" mode does.
func New(cfg Config, services, endpoints, pods Cache) (*Server, error) {
	def := DefaultConfig()
	if cfg.Domain == "" {
		cfg.Domain = def.Domain
	}
	if cfg.Listen == "" {
		cfg.Listen = def.Listen
	}
	if cfg.TTL == 0 {
		cfg.TTL = def.TTL
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = def.UpstreamTimeout
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, zone: cfg.Domain + ".", services: services, endpoints: endpoints, pods: pods, log: cfg.Logger}, nil
}

// Listen opens the UDP and TCP sockets on cfg.Listen (the same port for
// both; with port 0, the one the kernel picks for UDP). Serve then serves
// them. Splitting the two lets a caller learn the address first.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	host, wantPort, _ := net.SplitHostPort(s.cfg.Listen)
	// With port 0 the kernel picks a free UDP port, which TCP may already
	// use: pick again a few times before giving up.
	tries := 1
	if wantPort == "0" {
		tries = 10
	}
	var err error
	for range tries {
		var udp net.PacketConn
		udp, err = net.ListenPacket("udp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("dns listen udp %s: %w", s.cfg.Listen, err)
		}
		_, port, _ := net.SplitHostPort(udp.LocalAddr().String())
		var tcp net.Listener
		tcp, err = net.Listen("tcp", net.JoinHostPort(host, port))
		if err == nil {
			s.udp, s.tcp = udp, tcp
			return nil
		}
		udp.Close()
		err = fmt.Errorf("dns listen tcp %s: %w", net.JoinHostPort(host, port), err)
	}
	return err
}

// Addr is the address served on (after Listen), "host:port".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return ""
	}
	return s.udp.LocalAddr().String()
}

// Run serves (calling Listen first if needed) until ctx ends, then closes
// the sockets and returns ctx's error, or the error that stopped serving.
func (s *Server) Run(ctx context.Context) error {
	if s.Addr() == "" {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	udpSrv := &mdns.Server{PacketConn: s.udp, Handler: s, UDPSize: 65535}
	tcpSrv := &mdns.Server{Listener: s.tcp, Handler: s}
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()

	errc := make(chan error, 2)
	for _, srv := range []*mdns.Server{udpSrv, tcpSrv} {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	s.log.Info("cluster DNS serving", "addr", udp.LocalAddr().String(), "domain", s.cfg.Domain, "upstreams", s.cfg.Upstreams)
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-errc:
		err = fmt.Errorf("dns serve: %w", err)
		errc <- nil // the loop below waits for two
	}
	// Shutdown fails when a server has not started yet; closing the
	// sockets stops it either way.
	_ = udpSrv.Shutdown()
	_ = tcpSrv.Shutdown()
	udp.Close()
	tcp.Close()
	<-errc
	<-errc
	return err
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := s.answer(req)
	size := mdns.MinMsgSize
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		size = mdns.MaxMsgSize
	} else if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), mdns.MinMsgSize)
	}
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dns write failed", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// answer computes the response to req.
func (s *Server) answer(req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	if len(req.Question) != 1 || req.Opcode != mdns.OpcodeQuery {
		return resp.SetRcode(req, mdns.RcodeNotImplemented)
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		return resp.SetRcode(req, mdns.RcodeNotImplemented)
	}
	if !mdns.IsSubDomain(s.zone, name) {
		if ptr := s.reverse(name); ptr != nil {
			resp.SetReply(req)
			resp.Authoritative = true
			if q.Qtype == mdns.TypePTR || q.Qtype == mdns.TypeANY {
				resp.Answer = []mdns.RR{ptr}
			}
			return resp
		}
		return s.forward(req)
	}
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = len(s.cfg.Upstreams) > 0
	rrs, extra, exists := s.lookup(q.Qtype, name)
	resp.Answer, resp.Extra = rrs, extra
	if !exists {
		resp.Rcode = mdns.RcodeNameError
	}
	if len(rrs) == 0 {
		resp.Ns = []mdns.RR{s.soa()}
	}
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(max(opt.UDPSize(), mdns.MinMsgSize), false)
	}
	return resp
}

func (s *Server) soa() mdns.RR {
	ttl := uint32(s.cfg.TTL / time.Second)
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: s.zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: ttl},
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl,
	}
}

func (s *Server) hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: uint32(s.cfg.TTL / time.Second)}
}

func (s *Server) a(name, ip string) mdns.RR {
	p := net.ParseIP(ip)
	if p == nil || p.To4() == nil {
		if p == nil {
			return nil
		}
		return &mdns.AAAA{Hdr: s.hdr(name, mdns.TypeAAAA), AAAA: p}
	}
	return &mdns.A{Hdr: s.hdr(name, mdns.TypeA), A: p.To4()}
}

// addrRRs are the A/AAAA records of ips that answer qtype.
func (s *Server) addrRRs(qtype uint16, name string, ips ...string) []mdns.RR {
	var out []mdns.RR
	for _, ip := range ips {
		rr := s.a(name, ip)
		if rr == nil {
			continue
		}
		if t := rr.Header().Rrtype; qtype == t || qtype == mdns.TypeANY {
			out = append(out, rr)
		}
	}
	return out
}

// lookup answers a name inside the zone: the records of type qtype, the
// additional records, and whether the name exists at all.
func (s *Server) lookup(qtype uint16, name string) (rrs, extra []mdns.RR, exists bool) {
	rel := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	if rel == "" {
		if qtype == mdns.TypeSOA || qtype == mdns.TypeANY {
			return []mdns.RR{s.soa()}, nil, true
		}
		return nil, nil, true
	}
	labels := strings.Split(rel, ".")
	n := len(labels)
	switch labels[n-1] {
	case "svc":
		switch n {
		case 1, 2: // svc.<zone>, <ns>.svc.<zone>: empty non-terminals
			return nil, nil, true
		case 3:
			return s.service(qtype, name, labels[1], labels[0])
		case 4:
			return s.endpointHost(qtype, name, labels[2], labels[1], labels[0])
		case 5:
			if strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_") {
				return s.srv(qtype, name, labels[3], labels[2], labels[0][1:], labels[1][1:])
			}
		}
	case "pod":
		switch n {
		case 1, 2:
			return nil, nil, true
		case 3:
			return s.pod(qtype, name, labels[1], labels[0])
		}
	}
	return nil, nil, false
}

func (s *Server) getService(ns, name string) *corev1.Service {
	o, ok := s.services.Get(ns + "/" + name)
	if !ok {
		return nil
	}
	svc, _ := o.(*corev1.Service)
	return svc
}

func (s *Server) getEndpoints(ns, name string) *corev1.Endpoints {
	o, ok := s.endpoints.Get(ns + "/" + name)
	if !ok {
		return nil
	}
	ep, _ := o.(*corev1.Endpoints)
	return ep
}

func isHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// readyIPs are the distinct ready addresses of ep, in order.
func readyIPs(ep *corev1.Endpoints) []string {
	if ep == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			if !seen[a.IP] {
				seen[a.IP] = true
				out = append(out, a.IP)
			}
		}
	}
	return out
}

// hostLabel is the name of an endpoint under its headless service: its
// hostname, or its IP with dashes.
func hostLabel(a corev1.EndpointAddress) string {
	if a.Hostname != "" {
		return strings.ToLower(a.Hostname)
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(a.IP)
}

func (s *Server) service(qtype uint16, name, ns, svcName string) ([]mdns.RR, []mdns.RR, bool) {
	svc := s.getService(ns, svcName)
	if svc == nil {
		return nil, nil, false
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		target := mdns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
		cname := &mdns.CNAME{Hdr: s.hdr(name, mdns.TypeCNAME), Target: target}
		rrs := []mdns.RR{cname}
		// A target inside the zone is answered here too (one hop), so a
		// client need not ask again.
		if target != name && mdns.IsSubDomain(s.zone, target) && qtype != mdns.TypeCNAME {
			more, _, _ := s.lookup(qtype, target)
			for _, rr := range more {
				if _, isCNAME := rr.(*mdns.CNAME); !isCNAME {
					rrs = append(rrs, rr)
				}
			}
		}
		return rrs, nil, true
	case qtype == mdns.TypeSRV:
		return s.srv(qtype, name, ns, svcName, "", "")
	case isHeadless(svc):
		return s.addrRRs(qtype, name, readyIPs(s.getEndpoints(ns, svcName))...), nil, true
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{svc.Spec.ClusterIP}
		}
		return s.addrRRs(qtype, name, ips...), nil, true
	}
}

// endpointHost answers <host>.<svc>.<ns>.svc.<zone>.
func (s *Server) endpointHost(qtype uint16, name, ns, svcName, host string) ([]mdns.RR, []mdns.RR, bool) {
	svc := s.getService(ns, svcName)
	ep := s.getEndpoints(ns, svcName)
	if svc == nil || ep == nil {
		return nil, nil, false
	}
	var ips []string
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			if hostLabel(a) == host {
				ips = append(ips, a.IP)
			}
		}
	}
	if len(ips) == 0 {
		return nil, nil, false
	}
	return s.addrRRs(qtype, name, ips[:1]...), nil, true
}

// srv answers _<port>._<proto>.<svc>.<ns>.svc.<zone> (port and proto
// empty: the service name itself, every named port).
func (s *Server) srv(qtype uint16, name, ns, svcName, port, proto string) ([]mdns.RR, []mdns.RR, bool) {
	svc := s.getService(ns, svcName)
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil, false
	}
	svcFQDN := svcName + "." + ns + ".svc." + s.zone
	var rrs, extra []mdns.RR
	found := false
	for _, sp := range svc.Spec.Ports {
		pproto := strings.ToLower(string(sp.Protocol))
		if pproto == "" {
			pproto = "tcp"
		}
		if sp.Name == "" || (port != "" && (strings.ToLower(sp.Name) != port || pproto != proto)) {
			continue
		}
		found = true
		if qtype != mdns.TypeSRV && qtype != mdns.TypeANY {
			continue
		}
		if !isHeadless(svc) {
			rrs = append(rrs, &mdns.SRV{Hdr: s.hdr(name, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: svcFQDN})
			extra = append(extra, s.addrRRs(mdns.TypeANY, svcFQDN, svc.Spec.ClusterIP)...)
			continue
		}
		ep := s.getEndpoints(ns, svcName)
		if ep == nil {
			continue
		}
		for _, ss := range ep.Subsets {
			for _, epp := range ss.Ports {
				if epp.Name != sp.Name || (epp.Protocol != "" && !strings.EqualFold(string(epp.Protocol), pproto)) {
					continue
				}
				for _, a := range ss.Addresses {
					target := hostLabel(a) + "." + svcFQDN
					rrs = append(rrs, &mdns.SRV{Hdr: s.hdr(name, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(epp.Port), Target: target})
					extra = append(extra, s.addrRRs(mdns.TypeANY, target, a.IP)...)
				}
			}
		}
	}
	return rrs, extra, found
}

// pod answers <a-b-c-d>.<ns>.pod.<zone>.
func (s *Server) pod(qtype uint16, name, ns, dashed string) ([]mdns.RR, []mdns.RR, bool) {
	ip := net.ParseIP(strings.ReplaceAll(dashed, "-", "."))
	if ip == nil || ip.To4() == nil {
		// An IPv6 pod name has its colons dashed: try that form.
		ip = net.ParseIP(strings.ReplaceAll(dashed, "-", ":"))
		if ip == nil {
			return nil, nil, false
		}
	}
	if s.pods != nil && !s.podHasIP(ns, ip) {
		return nil, nil, false
	}
	return s.addrRRs(qtype, name, ip.String()), nil, true
}

func (s *Server) podHasIP(ns string, ip net.IP) bool {
	for _, o := range s.pods.List(nil) {
		p, ok := o.(*corev1.Pod)
		if !ok || p.Namespace != ns {
			continue
		}
		if q := net.ParseIP(p.Status.PodIP); q != nil && q.Equal(ip) {
			return true
		}
		for _, pip := range p.Status.PodIPs {
			if q := net.ParseIP(pip.IP); q != nil && q.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// reverse answers a PTR name (d.c.b.a.in-addr.arpa.) of a cluster IP
// (the service's name) or of a ready endpoint of a headless service (its
// name under the service); nil when the address is not the cluster's, so
// the query goes upstream.
func (s *Server) reverse(name string) mdns.RR {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa.")
	if !ok {
		return nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return nil
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	ip := net.ParseIP(strings.Join(parts, "."))
	if ip == nil {
		return nil
	}
	addr := ip.String()
	ptr := func(target string) mdns.RR {
		return &mdns.PTR{Hdr: s.hdr(name, mdns.TypePTR), Ptr: target}
	}
	for _, o := range s.services.List(nil) {
		svc, ok := o.(*corev1.Service)
		if !ok {
			continue
		}
		for _, cip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if cip == addr {
				return ptr(ServiceFQDN(svc.Name, svc.Namespace, s.zone))
			}
		}
	}
	for _, o := range s.endpoints.List(nil) {
		ep, ok := o.(*corev1.Endpoints)
		if !ok {
			continue
		}
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				if a.IP != addr {
					continue
				}
				if svc := s.getService(ep.Namespace, ep.Name); svc != nil && isHeadless(svc) {
					return ptr(hostLabel(a) + "." + ServiceFQDN(ep.Name, ep.Namespace, s.zone))
				}
			}
		}
	}
	return nil
}

// forward sends a query outside the zone to the upstreams, in order, and
// returns the first answer; without upstreams (or when all fail) it
// answers NXDOMAIN or SERVFAIL.
func (s *Server) forward(req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	if len(s.cfg.Upstreams) == 0 {
		resp.SetRcode(req, mdns.RcodeNameError)
		return resp
	}
	c := &mdns.Client{Net: "udp", Timeout: s.cfg.UpstreamTimeout}
	for _, u := range s.cfg.Upstreams {
		in, _, err := c.Exchange(req, u)
		if err == nil && in != nil && in.Truncated {
			tc := &mdns.Client{Net: "tcp", Timeout: s.cfg.UpstreamTimeout}
			in, _, err = tc.Exchange(req, u)
		}
		if err != nil {
			s.log.Debug("dns upstream failed", "upstream", u, "name", req.Question[0].Name, "err", err)
			continue
		}
		in.Id = req.Id
		return in
	}
	return resp.SetRcode(req, mdns.RcodeServerFailure)
}

// ServiceFQDN is the DNS name of a service: web.default.svc.cluster.local.
func ServiceFQDN(name, namespace, domain string) string {
	return name + "." + namespace + ".svc." + domain
}

// PodFQDN is the DNS name of a pod by IP: 10-244-0-5.default.pod.cluster.local.
func PodFQDN(ip, namespace, domain string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip) + "." + namespace + ".pod." + domain
}

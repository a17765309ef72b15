//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the router reads it.

package ingress

import (
	"crypto/tls"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// backend is one Service port an Ingress path sends to, resolved to the
// ready endpoints serving it.
type backend struct {
	name  string   // ns/svc:port, for logs and errors
	addrs []string // host:port of ready endpoints, sorted
	rr    *uint64Counter
}

// route is one path of one host.
type route struct {
	path    string
	exact   bool
	backend *backend
	// age orders conflicts: the oldest Ingress wins.
	age ingressAge
}

// hostRoutes are the routes of one host, Exact ones first, then prefixes
// longest first.
type hostRoutes []route

// table is an immutable routing table; a new one replaces it on every
// change.
type table struct {
	exact    map[string]hostRoutes // "foo.example.com"
	wildcard map[string]hostRoutes // "example.com" for "*.example.com"
	any      hostRoutes            // rules without a host
	def      *backend              // default backend, or nil
	certs    map[string]*tls.Certificate
	wildCert map[string]*tls.Certificate // by parent domain
	anyCert  *tls.Certificate            // a TLS entry without hosts
}

type ingressAge struct {
	created int64 // unix nanos
	key     string
}

func (a ingressAge) before(b ingressAge) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.key < b.key
}

// lookup finds the backend of host and path: exact host, else wildcard,
// else host-less rules; within the host, Exact paths, then the longest
// matching prefix. nil when nothing matches (the default backend's turn).
func (t *table) lookup(host, path string) *backend {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if rs, ok := t.exact[host]; ok {
		return rs.match(path)
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if rs, ok := t.wildcard[host[i+1:]]; ok {
			return rs.match(path)
		}
	}
	return t.any.match(path)
}

func (rs hostRoutes) match(path string) *backend {
	if path == "" {
		path = "/"
	}
	for _, r := range rs {
		if r.exact {
			if r.path == path {
				return r.backend
			}
			continue
		}
		if prefixMatch(r.path, path) {
			return r.backend
		}
	}
	return nil
}

// prefixMatch: path elements of prefix are a prefix of those of path. A
// trailing slash in either is ignored ("/foo/" matches "/foo").
func prefixMatch(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// sortRoutes orders routes for match: Exact first, then prefixes by
// length, longest first; ties by path then age.
func sortRoutes(rs hostRoutes) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.exact != b.exact {
			return a.exact
		}
		la, lb := len(strings.TrimSuffix(a.path, "/")), len(strings.TrimSuffix(b.path, "/"))
		if la != lb {
			return la > lb
		}
		if a.path != b.path {
			return a.path < b.path
		}
		return a.age.before(b.age)
	})
}

// dedupe drops routes with the same path and type as an older one (the
// input is sorted, so the older comes first).
func dedupe(rs hostRoutes) hostRoutes {
	var out hostRoutes
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].exact == r.exact && out[n-1].path == r.path {
			continue
		}
		out = append(out, r)
	}
	return out
}

// inputs are the objects a table is built from.
type inputs struct {
	ingresses []*networkingv1.Ingress
	service   func(ns, name string) *corev1.Service
	endpoints func(ns, name string) *corev1.Endpoints
	secret    func(ns, name string) *corev1.Secret
	counters  map[string]*uint64Counter // kept across rebuilds so round-robin continues
}

// buildTable computes the routing table of in.
func buildTable(in inputs) *table {
	t := &table{exact: map[string]hostRoutes{}, wildcard: map[string]hostRoutes{},
		certs: map[string]*tls.Certificate{}, wildCert: map[string]*tls.Certificate{}}
	ings := append([]*networkingv1.Ingress(nil), in.ingresses...)
	ageOf := func(ing *networkingv1.Ingress) ingressAge {
		return ingressAge{ing.CreationTimestamp.UnixNano(), ing.Namespace + "/" + ing.Name}
	}
	sort.Slice(ings, func(i, j int) bool { return ageOf(ings[i]).before(ageOf(ings[j])) })
	backends := map[string]*backend{}
	resolve := func(ns string, b *networkingv1.IngressBackend) *backend {
		if b == nil || b.Service == nil {
			return nil // resource backends are not supported
		}
		port := b.Service.Port.Name
		if port == "" {
			port = strconv.Itoa(int(b.Service.Port.Number))
		}
		key := ns + "/" + b.Service.Name + ":" + port
		if be, ok := backends[key]; ok {
			return be
		}
		c := in.counters[key]
		if c == nil {
			c = new(uint64Counter)
			in.counters[key] = c
		}
		be := &backend{name: key, rr: c}
		be.addrs = endpointAddrs(in.service(ns, b.Service.Name), in.endpoints(ns, b.Service.Name), b.Service.Port)
		backends[key] = be
		return be
	}
	for _, ing := range ings {
		age := ageOf(ing)
		if t.def == nil && ing.Spec.DefaultBackend != nil {
			t.def = resolve(ing.Namespace, ing.Spec.DefaultBackend)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			var rs hostRoutes
			for _, p := range rule.HTTP.Paths {
				be := resolve(ing.Namespace, &p.Backend)
				if be == nil {
					continue
				}
				path := p.Path
				if path == "" {
					path = "/"
				}
				exact := p.PathType != nil && *p.PathType == networkingv1.PathTypeExact
				rs = append(rs, route{path: path, exact: exact, backend: be, age: age})
			}
			host := strings.ToLower(rule.Host)
			switch {
			case host == "":
				t.any = append(t.any, rs...)
			case strings.HasPrefix(host, "*."):
				t.wildcard[host[2:]] = append(t.wildcard[host[2:]], rs...)
			default:
				t.exact[host] = append(t.exact[host], rs...)
			}
		}
		for _, tl := range ing.Spec.TLS {
			if tl.SecretName == "" || in.secret == nil {
				continue
			}
			cert := certFrom(in.secret(ing.Namespace, tl.SecretName))
			if cert == nil {
				continue
			}
			if len(tl.Hosts) == 0 && t.anyCert == nil {
				t.anyCert = cert
			}
			for _, h := range tl.Hosts {
				h = strings.ToLower(h)
				if strings.HasPrefix(h, "*.") {
					if t.wildCert[h[2:]] == nil {
						t.wildCert[h[2:]] = cert
					}
				} else if t.certs[h] == nil {
					t.certs[h] = cert
				}
			}
		}
	}
	for _, m := range []map[string]hostRoutes{t.exact, t.wildcard} {
		for h, rs := range m {
			sortRoutes(rs)
			m[h] = dedupe(rs)
		}
	}
	sortRoutes(t.any)
	t.any = dedupe(t.any)
	return t
}

// endpointAddrs lists host:port of the ready endpoints of svc serving the
// service port p (by number or by name).
func endpointAddrs(svc *corev1.Service, ep *corev1.Endpoints, p networkingv1.ServiceBackendPort) []string {
	if svc == nil || ep == nil {
		return nil
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		x := &svc.Spec.Ports[i]
		if (p.Name != "" && x.Name == p.Name) || (p.Name == "" && x.Port == p.Number) {
			sp = x
			break
		}
	}
	if sp == nil || (sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, ss := range ep.Subsets {
		for _, epp := range ss.Ports {
			if epp.Name != sp.Name || (epp.Protocol != "" && epp.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, a := range ss.Addresses {
				hp := net.JoinHostPort(a.IP, strconv.Itoa(int(epp.Port)))
				if !seen[hp] {
					seen[hp] = true
					out = append(out, hp)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// certFrom parses a kubernetes.io/tls Secret; nil if it is missing or bad.
func certFrom(s *corev1.Secret) *tls.Certificate {
	if s == nil {
		return nil
	}
	c, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil
	}
	return &c
}

// certFor picks the certificate for an SNI name.
func (t *table) certFor(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c := t.certs[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := t.wildCert[name[i+1:]]; c != nil {
			return c
		}
	}
	return t.anyCert
}

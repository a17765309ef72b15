package dns

import (
	"bufio"
	"bytes"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ResolvConfig is what a pod's resolv.conf is made from besides the pod.
type ResolvConfig struct {
	// ClusterDNS are the addresses of the cluster DNS server(s) pods use.
	ClusterDNS []string
	// ClusterDomain (default "cluster.local").
	ClusterDomain string
	// Host is the node's own /etc/resolv.conf (for dnsPolicy Default,
	// hostNetwork pods, and the search domains appended after the
	// cluster's). May be empty.
	Host []byte
}

// Limits of the resolver in glibc and musl: more nameservers are ignored.
const maxNameservers = 3

// resolv is a parsed resolv.conf.
type resolv struct {
	nameservers, searches []string
	options               []string // "ndots:5", "edns0"
}

func parseResolv(data []byte) resolv {
	var r resolv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			r.nameservers = append(r.nameservers, f[1])
		case "search", "domain": // the last of either wins, as in glibc
			r.searches = append([]string(nil), f[1:]...)
		case "options":
			r.options = mergeOptions(r.options, f[1:])
		}
	}
	return r
}

// mergeOptions adds opts to base; an option of the same name (before ':')
// replaces the earlier one in place.
func mergeOptions(base, opts []string) []string {
	out := append([]string(nil), base...)
	for _, o := range opts {
		name, _, _ := strings.Cut(o, ":")
		replaced := false
		for i, b := range out {
			if bn, _, _ := strings.Cut(b, ":"); bn == name {
				out[i], replaced = o, true
				break
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

func appendUnique(base []string, more ...string) []string {
	out := append([]string(nil), base...)
	for _, m := range more {
		dup := false
		for _, b := range out {
			if b == m {
				dup = true
				break
			}
		}
		if !dup && m != "" {
			out = append(out, m)
		}
	}
	return out
}

// ResolvConf renders the /etc/resolv.conf of pod, as the kubelet does for
// its dnsPolicy:
//
//   - ClusterFirst (the default): the cluster DNS, searching
//     <ns>.svc.<domain> svc.<domain> <domain> then the host's search list,
//     with ndots:5 so that "backend" and "backend.other" are tried as
//     cluster names first. A hostNetwork pod gets Default instead, and so
//     does every pod when no cluster DNS is configured.
//   - ClusterFirstWithHostNet: ClusterFirst, hostNetwork or not.
//   - Default: the node's resolv.conf.
//   - None: only what spec.dnsConfig says.
//
// spec.dnsConfig is then merged in: nameservers and searches appended
// (without duplicates), options replacing those of the same name. At most
// three nameservers are written.
func ResolvConf(pod *corev1.Pod, cfg ResolvConfig) []byte {
	domain := strings.TrimSuffix(cfg.ClusterDomain, ".")
	if domain == "" {
		domain = "cluster.local"
	}
	host := parseResolv(cfg.Host)
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	var r resolv
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		ns := pod.Namespace
		if ns == "" {
			ns = "default"
		}
		r.nameservers = append([]string(nil), cfg.ClusterDNS...)
		r.searches = appendUnique([]string{ns + ".svc." + domain, "svc." + domain, domain}, host.searches...)
		r.options = []string{"ndots:5"}
	case corev1.DNSDefault:
		r = host
	case corev1.DNSNone:
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		r.nameservers = appendUnique(r.nameservers, dc.Nameservers...)
		r.searches = appendUnique(r.searches, dc.Searches...)
		var opts []string
		for _, o := range dc.Options {
			if o.Value != nil {
				opts = append(opts, o.Name+":"+*o.Value)
			} else {
				opts = append(opts, o.Name)
			}
		}
		r.options = mergeOptions(r.options, opts)
	}
	if len(r.nameservers) > maxNameservers {
		r.nameservers = r.nameservers[:maxNameservers]
	}
	var b bytes.Buffer
	for _, n := range r.nameservers {
		b.WriteString("nameserver " + n + "\n")
	}
	if len(r.searches) > 0 {
		b.WriteString("search " + strings.Join(r.searches, " ") + "\n")
	}
	if len(r.options) > 0 {
		b.WriteString("options " + strings.Join(r.options, " ") + "\n")
	}
	return b.Bytes()
}

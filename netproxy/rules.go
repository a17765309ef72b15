//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the proxy reads it.

package netproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Chains the proxy owns. Every chain it creates starts with ChainPrefix,
// which is how Cleanup and the stale-chain sweep find them.
const (
	ChainPrefix       = "SKIFF-"
	chainServices     = "SKIFF-SERVICES"          // nat and filter: per service port matches
	chainExternal     = "SKIFF-EXTERNAL-SERVICES" // filter: NodePort/external rejects
	chainNodePorts    = "SKIFF-NODEPORTS"         // nat: NodePort matches
	chainPostrouting  = "SKIFF-POSTROUTING"       // nat: masquerade marked packets
	chainMarkMasq     = "SKIFF-MARK-MASQ"         // nat: set the masquerade mark
	chainForward      = "SKIFF-FORWARD"           // filter: accept proxied forwarded traffic
	prefixServiceSvc  = "SKIFF-SVC-"              // one service port: balance over endpoints
	prefixServiceExt  = "SKIFF-EXT-"              // one service port, from outside: masquerade then SVC
	prefixServiceLocl = "SKIFF-SVL-"              // one service port, node-local endpoints only
	prefixEndpoint    = "SKIFF-SEP-"              // one endpoint: DNAT
)

// jump is a rule in a built-in chain sending packets into ours.
type jump struct {
	table Table
	chain string
	rule  []string
}

// jumps are the only rules the proxy adds outside its own chains, in the
// order they should end up (each is inserted at the top, so they are
// ensured in reverse). The filter jumps come before anything else's DROP
// so that a service with no endpoints is rejected at once and proxied
// traffic is forwarded under a default-drop FORWARD policy.
var jumps = []jump{
	{TableNAT, "PREROUTING", []string{"-m", "comment", "--comment", "skiff-service-portals", "-j", chainServices}},
	{TableNAT, "OUTPUT", []string{"-m", "comment", "--comment", "skiff-service-portals", "-j", chainServices}},
	{TableNAT, "POSTROUTING", []string{"-m", "comment", "--comment", "skiff-postrouting", "-j", chainPostrouting}},
	{TableFilter, "INPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "skiff-services", "-j", chainServices}},
	{TableFilter, "INPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "skiff-external-services", "-j", chainExternal}},
	{TableFilter, "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "skiff-services", "-j", chainServices}},
	{TableFilter, "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "skiff-services", "-j", chainServices}},
	{TableFilter, "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "skiff-external-services", "-j", chainExternal}},
	{TableFilter, "FORWARD", []string{"-m", "comment", "--comment", "skiff-forward", "-j", chainForward}},
}

// servicePort is one port of one proxied Service with its ready endpoints.
type servicePort struct {
	name        string // ns/svc:port, for comments and chain names
	proto       string // tcp, udp, sctp
	clusterIP   string
	port        int32
	nodePort    int32
	externalIPs []string // spec.externalIPs and status.loadBalancer.ingress IPs
	affinity    int32    // ClientIP affinity timeout in seconds; 0: none
	extLocal    bool     // externalTrafficPolicy: Local
	intLocal    bool     // internalTrafficPolicy: Local
	endpoints   []endpoint
}

type endpoint struct {
	ip    string
	port  int32
	local bool // on this node
}

func (e endpoint) String() string { return net.JoinHostPort(e.ip, strconv.Itoa(int(e.port))) }

// servicePorts builds the proxy's view of services and their endpoints,
// sorted by name. Headless and ExternalName services are skipped (DNS
// handles them), as are non-IPv4 addresses (the proxy writes iptables, not
// ip6tables).
func servicePorts(services []*corev1.Service, endpoints map[string]*corev1.Endpoints, nodeName string) []*servicePort {
	var out []*servicePort
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || !isIPv4(svc.Spec.ClusterIP) {
			continue
		}
		var ext []string
		for _, ip := range svc.Spec.ExternalIPs {
			if isIPv4(ip) {
				ext = append(ext, ip)
			}
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if isIPv4(ing.IP) {
				ext = append(ext, ing.IP)
			}
		}
		var affinity int32
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			affinity = corev1.DefaultClientIPServiceAffinitySeconds
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				affinity = *c.ClientIP.TimeoutSeconds
			}
		}
		ep := endpoints[svc.Namespace+"/"+svc.Name]
		for _, p := range svc.Spec.Ports {
			proto := strings.ToLower(string(p.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			pname := p.Name
			if pname == "" {
				pname = strconv.Itoa(int(p.Port))
			}
			sp := &servicePort{
				name:        svc.Namespace + "/" + svc.Name + ":" + pname,
				proto:       proto,
				clusterIP:   svc.Spec.ClusterIP,
				port:        p.Port,
				externalIPs: ext,
				affinity:    affinity,
				extLocal:    svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
				intLocal: svc.Spec.InternalTrafficPolicy != nil &&
					*svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
				sp.nodePort = p.NodePort
			}
			if ep != nil {
				sp.endpoints = endpointsFor(ep, p, nodeName)
			}
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return out[i].proto < out[j].proto
	})
	return out
}

// endpointsFor lists the ready addresses of ep serving service port sp:
// the Endpoints port of the same name and protocol. Sorted, deduplicated.
func endpointsFor(ep *corev1.Endpoints, sp corev1.ServicePort, nodeName string) []endpoint {
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	seen := map[string]bool{}
	var out []endpoint
	for _, ss := range ep.Subsets {
		for _, pp := range ss.Ports {
			pproto := pp.Protocol
			if pproto == "" {
				pproto = corev1.ProtocolTCP
			}
			if pp.Name != sp.Name || pproto != proto {
				continue
			}
			for _, a := range ss.Addresses {
				if !isIPv4(a.IP) {
					continue
				}
				e := endpoint{ip: a.IP, port: pp.Port, local: a.NodeName != nil && *a.NodeName == nodeName && nodeName != ""}
				if !seen[e.String()] {
					seen[e.String()] = true
					out = append(out, e)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func isIPv4(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() != nil
}

// chainName is prefix + 16 base32 characters of a hash of parts: unique
// per service port (or endpoint), stable across restarts, and within
// iptables' 28-character limit.
func chainName(prefix string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + base32.StdEncoding.EncodeToString(h[:])[:16]
}

func (sp *servicePort) svcChain() string   { return chainName(prefixServiceSvc, sp.name, sp.proto) }
func (sp *servicePort) extChain() string   { return chainName(prefixServiceExt, sp.name, sp.proto) }
func (sp *servicePort) localChain() string { return chainName(prefixServiceLocl, sp.name, sp.proto) }
func (sp *servicePort) sepChain(e endpoint) string {
	return chainName(prefixEndpoint, sp.name, sp.proto, e.String())
}

// ruleParams are the settings rules depend on.
type ruleParams struct {
	masqMark      string // "0x4000/0x4000"
	clusterCIDR   string // pod network; "" when unknown
	masqueradeAll bool
	nodeIPs       []string // NodePort addresses; empty: every local address
}

// buildRules renders the iptables-restore input of one full sync: every
// chain of ours, declared (which flushes it) and filled, and every stale
// chain of ours in existing (by table) flushed and deleted.
func buildRules(prm ruleParams, ports []*servicePort, existing map[Table][]string) []byte {
	var filter, nat rulesBuf
	filterChains := []string{chainServices, chainExternal, chainForward}
	natChains := []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq}

	// nat: masquerading is decided by a mark so that several rules can ask
	// for it and one rule (in POSTROUTING, after routing chose the output
	// interface) does it. The mark is cleared so that a packet re-entering
	// the stack (a tunnel) is not masqueraded twice.
	nat.add(chainPostrouting, "-m", "mark", "!", "--mark", prm.masqMark, "-j", "RETURN")
	nat.add(chainPostrouting, "-j", "MARK", "--xor-mark", strings.SplitN(prm.masqMark, "/", 2)[0])
	nat.add(chainPostrouting, "-m", "comment", "--comment", `"skiff service traffic requiring SNAT"`, "-j", "MASQUERADE")
	nat.add(chainMarkMasq, "-j", "MARK", "--or-mark", strings.SplitN(prm.masqMark, "/", 2)[0])
	// filter: forward what the proxy DNATed (marked, or part of a tracked
	// connection), whatever the FORWARD policy.
	filter.add(chainForward, "-m", "mark", "--mark", prm.masqMark, "-m", "comment", "--comment", `"skiff forwarding rules"`, "-j", "ACCEPT")
	filter.add(chainForward, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-m", "comment", "--comment", `"skiff forwarding conntrack rule"`, "-j", "ACCEPT")

	for _, sp := range ports {
		comment := func(what string) []string { return []string{"-m", "comment", "--comment", `"` + sp.name + what + `"`} }
		match := func(dst string, port int32) []string {
			r := []string{"-p", sp.proto}
			if dst != "" {
				r = append(r, "-d", dst+"/32")
			}
			return append(r, "-m", sp.proto, "--dport", strconv.Itoa(int(port)))
		}
		if len(sp.endpoints) == 0 {
			// Nothing serves it: refuse at once (ICMP port unreachable, which
			// a TCP client sees as "connection refused") instead of letting
			// connections to a VIP nobody answers time out.
			filter.add(chainServices, cat(comment(" has no endpoints"), match(sp.clusterIP, sp.port), "-j", "REJECT")...)
			for _, ip := range sp.externalIPs {
				filter.add(chainExternal, cat(comment(" has no endpoints"), match(ip, sp.port), "-j", "REJECT")...)
			}
			if sp.nodePort != 0 {
				filter.add(chainExternal, cat(comment(" has no endpoints"), []string{"-m", "addrtype", "--dst-type", "LOCAL"},
					match("", sp.nodePort), "-j", "REJECT")...)
			}
			continue
		}
		svc := sp.svcChain()
		natChains = append(natChains, svc)
		var locals []endpoint
		for _, e := range sp.endpoints {
			if e.local {
				locals = append(locals, e)
			}
		}
		local := sp.localChain()
		hasExt := sp.nodePort != 0 || len(sp.externalIPs) > 0
		if sp.intLocal || (sp.extLocal && hasExt) {
			natChains = append(natChains, local)
		}
		// internalTrafficPolicy Local: cluster IP traffic goes to this
		// node's endpoints only.
		cip := svc
		if sp.intLocal {
			cip = local
			if len(locals) == 0 {
				filter.add(chainServices, cat(comment(" has no local endpoints"), match(sp.clusterIP, sp.port), "-j", "DROP")...)
			}
		}
		nat.add(chainServices, cat(comment(" cluster IP"), match(sp.clusterIP, sp.port), "-j", cip)...)
		// Traffic to the VIP from outside the pod network (the node itself,
		// another host routing to the VIP) must come back through this
		// node: masquerade it. (The rule matches the VIP, so external
		// traffic sharing a local chain is not affected.)
		switch {
		case prm.masqueradeAll:
			nat.add(cip, cat(comment(" cluster IP"), match(sp.clusterIP, sp.port), "-j", chainMarkMasq)...)
		case prm.clusterCIDR != "":
			nat.add(cip, cat(comment(" cluster IP"), []string{"!", "-s", prm.clusterCIDR}, match(sp.clusterIP, sp.port), "-j", chainMarkMasq)...)
		}
		writeBalance(&nat, svc, sp, sp.endpoints)
		if sp.intLocal || (sp.extLocal && hasExt) {
			writeBalance(&nat, local, sp, locals)
		}
		for _, e := range sp.endpoints {
			sep := sp.sepChain(e)
			natChains = append(natChains, sep)
			// A pod reaching itself through its service: without SNAT its
			// reply would skip the conntrack entry (hairpin).
			nat.add(sep, cat(comment(""), []string{"-s", e.ip + "/32", "-j", chainMarkMasq})...)
			dnat := cat(comment(""), []string{"-p", sp.proto})
			if sp.affinity > 0 {
				dnat = append(dnat, "-m", "recent", "--name", sep, "--set", "--rsource")
			}
			nat.add(sep, cat(dnat, "-m", sp.proto, "-j", "DNAT", "--to-destination", e.String())...)
		}

		if !hasExt {
			continue
		}
		ext := sp.extChain()
		natChains = append(natChains, ext)
		for _, ip := range sp.externalIPs {
			nat.add(chainServices, cat(comment(" external IP"), match(ip, sp.port), "-j", ext)...)
		}
		if sp.nodePort != 0 {
			nat.add(chainNodePorts, cat(comment(" node port"), match("", sp.nodePort), "-j", ext)...)
		}
		if !sp.extLocal {
			// From outside: replies must return through this node.
			nat.add(ext, cat(comment(" masquerade traffic from outside"), "-j", chainMarkMasq)...)
			nat.add(ext, "-j", svc)
			continue
		}
		// externalTrafficPolicy Local: no SNAT (the client address is
		// kept), only this node's endpoints. Pods and the node itself still
		// get every endpoint, as in Kubernetes.
		if prm.clusterCIDR != "" {
			nat.add(ext, cat(comment(" pod traffic for a local-policy port goes to the service"), "-s", prm.clusterCIDR, "-j", svc)...)
		}
		nat.add(ext, cat(comment(" masquerade node-local traffic"), "-m", "addrtype", "--src-type", "LOCAL", "-j", chainMarkMasq)...)
		nat.add(ext, cat(comment(" route node-local traffic to the service"), "-m", "addrtype", "--src-type", "LOCAL", "-j", svc)...)
		nat.add(ext, "-j", local)
		if len(locals) == 0 {
			// Left un-DNATed, such packets reach filter INPUT still
			// addressed to the node port or external IP: drop them there.
			for _, ip := range sp.externalIPs {
				filter.add(chainExternal, cat(comment(" has no local endpoints"), match(ip, sp.port), "-j", "DROP")...)
			}
			if sp.nodePort != 0 {
				filter.add(chainExternal, cat(comment(" has no local endpoints"), []string{"-m", "addrtype", "--dst-type", "LOCAL"},
					match("", sp.nodePort), "-j", "DROP")...)
			}
		}
	}

	// NodePorts last: only packets that matched no VIP, and are addressed to
	// this node, look at them.
	if len(prm.nodeIPs) == 0 {
		nat.add(chainServices, "-m", "comment", "--comment", `"skiff service nodeports; NOTE: this must be the last rule in this chain"`,
			"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePorts)
	} else {
		for _, ip := range prm.nodeIPs {
			nat.add(chainServices, "-m", "comment", "--comment", `"skiff service nodeports"`, "-d", ip+"/32", "-j", chainNodePorts)
		}
	}

	var out bytes.Buffer
	writeTable(&out, TableFilter, filterChains, &filter, existing[TableFilter])
	writeTable(&out, TableNAT, natChains, &nat, existing[TableNAT])
	return out.Bytes()
}

// writeBalance sends packets of chain to one of eps: by ClientIP affinity
// first (the endpoint this source used within the timeout), else at
// random. The i-th of n rules matches with probability 1/(n-i), so each
// endpoint gets 1/n of new connections.
func writeBalance(nat *rulesBuf, chain string, sp *servicePort, eps []endpoint) {
	if sp.affinity > 0 {
		for _, e := range eps {
			sep := sp.sepChain(e)
			nat.add(chain, "-m", "comment", "--comment", `"`+sp.name+` -> `+e.String()+`"`,
				"-m", "recent", "--name", sep, "--rcheck", "--seconds", strconv.Itoa(int(sp.affinity)), "--reap", "--rsource", "-j", sep)
		}
	}
	for i, e := range eps {
		r := []string{"-m", "comment", "--comment", `"` + sp.name + ` -> ` + e.String() + `"`}
		if n := len(eps) - i; n > 1 {
			r = append(r, "-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(1/float64(n), 'f', 10, 64))
		}
		nat.add(chain, cat(r, "-j", sp.sepChain(e))...)
	}
}

func writeTable(out *bytes.Buffer, t Table, chains []string, rules *rulesBuf, existing []string) {
	want := map[string]bool{}
	fmt.Fprintf(out, "*%s\n", t)
	for _, c := range chains {
		if !want[c] {
			want[c] = true
			fmt.Fprintf(out, ":%s - [0:0]\n", c)
		}
	}
	var stale []string
	for _, c := range existing {
		if !want[c] {
			stale = append(stale, c)
			fmt.Fprintf(out, ":%s - [0:0]\n", c)
		}
	}
	out.Write(rules.Bytes())
	for _, c := range stale {
		fmt.Fprintf(out, "-X %s\n", c)
	}
	out.WriteString("COMMIT\n")
}

// rulesBuf accumulates "-A chain args..." lines.
type rulesBuf struct{ bytes.Buffer }

func (b *rulesBuf) add(chain string, args ...string) {
	b.WriteString("-A " + chain + " " + strings.Join(args, " ") + "\n")
}

func cat(a []string, rest ...any) []string {
	out := append([]string{}, a...)
	for _, r := range rest {
		switch v := r.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

// ourChains lists the chains of ours in iptables-save output.
func ourChains(save []byte) []string {
	var out []string
	for _, line := range strings.Split(string(save), "\n") {
		if strings.HasPrefix(line, ":"+ChainPrefix) {
			if f := strings.Fields(line[1:]); len(f) > 0 {
				out = append(out, f[0])
			}
		}
	}
	sort.Strings(out)
	return out
}

// splitRule splits one iptables-save rule line into arguments, honouring
// double quotes (comments).
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote, have = !inQuote, true
		case ch == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

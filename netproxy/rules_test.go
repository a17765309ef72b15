//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package netproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func ptrTo[T any](v T) *T { return &v }

func testServices() ([]*corev1.Service, map[string]*corev1.Endpoints) {
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	}
	local := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "local"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.11", ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			SessionAffinity: corev1.ServiceAffinityClientIP,
			Ports:           []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30081}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.50"}}}},
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "headless"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	extName := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}
	empty := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "empty"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.12", Ports: []corev1.ServicePort{{Port: 8080}}},
	}
	eps := map[string]*corev1.Endpoints{
		"default/web": {Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.244.0.11"}, {IP: "10.244.0.10"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.99"}},
			Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080}, {Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}},
		}}},
		"default/local": {Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5", NodeName: ptrTo("other")}, {IP: "10.244.0.5", NodeName: ptrTo("me")}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080}},
		}}},
		"default/headless": {Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}, Ports: []corev1.EndpointPort{{Port: 80}},
		}}},
	}
	return []*corev1.Service{web, local, headless, extName, empty}, eps
}

func TestServicePorts(t *testing.T) {
	svcs, eps := testServices()
	var got []string
	for _, sp := range servicePorts(svcs, eps, "me") {
		var e []string
		for _, x := range sp.endpoints {
			s := x.String()
			if x.local {
				s += "(local)"
			}
			e = append(e, s)
		}
		got = append(got, sp.name+"/"+sp.proto+" -> "+strings.Join(e, ","))
	}
	want := []string{
		"default/local:http/tcp -> 10.244.0.5:8080(local),10.244.1.5:8080",
		"default/web:dns/udp -> 10.244.0.10:5353,10.244.0.11:5353",
		"default/web:http/tcp -> 10.244.0.10:8080,10.244.0.11:8080",
		"other/empty:8080/tcp -> ",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("service ports:\n got %q\nwant %q", got, want)
	}
}

func TestBuildRules(t *testing.T) {
	svcs, eps := testServices()
	ports := servicePorts(svcs, eps, "me")
	prm := ruleParams{masqMark: "0x4000/0x4000", clusterCIDR: "10.244.0.0/16"}
	stale := chainName(prefixServiceSvc, "default/gone:http", "tcp")
	rules := string(buildRules(prm, ports, map[Table][]string{TableNAT: {chainServices, stale}}))
	web := ports[2]
	local := ports[0]
	for _, want := range []string{
		// cluster IP, masquerade from outside the pod network, balance
		"-A SKIFF-SERVICES -m comment --comment \"default/web:http cluster IP\" -p tcp -d 10.96.0.10/32 -m tcp --dport 80 -j " + web.svcChain(),
		"-A " + web.svcChain() + " -m comment --comment \"default/web:http cluster IP\" ! -s 10.244.0.0/16 -p tcp -d 10.96.0.10/32 -m tcp --dport 80 -j SKIFF-MARK-MASQ",
		"-m statistic --mode random --probability 0.5000000000 -j " + web.sepChain(endpoint{ip: "10.244.0.10", port: 8080}),
		"-A " + web.sepChain(endpoint{ip: "10.244.0.11", port: 8080}) + " -m comment --comment \"default/web:http\" -p tcp -m tcp -j DNAT --to-destination 10.244.0.11:8080",
		"-A " + web.sepChain(endpoint{ip: "10.244.0.11", port: 8080}) + " -m comment --comment \"default/web:http\" -s 10.244.0.11/32 -j SKIFF-MARK-MASQ",
		"-p udp -m udp -j DNAT --to-destination 10.244.0.10:5353",
		// node port: masquerade, then the service
		"-A SKIFF-NODEPORTS -m comment --comment \"default/web:http node port\" -p tcp -m tcp --dport 30080 -j " + web.extChain(),
		"-A " + web.extChain() + " -j " + web.svcChain(),
		"-m addrtype --dst-type LOCAL -j SKIFF-NODEPORTS",
		// local policy: load-balancer IP, only the local endpoint, affinity
		"-d 192.0.2.50/32 -m tcp --dport 80 -j " + local.extChain(),
		"-A " + local.extChain() + " -j " + local.localChain(),
		"-A " + local.localChain() + " -m comment --comment \"default/local:http -> 10.244.0.5:8080\" -j " + local.sepChain(endpoint{ip: "10.244.0.5", port: 8080}),
		"-m recent --name " + local.sepChain(endpoint{ip: "10.244.1.5", port: 8080}) + " --rcheck --seconds 10800 --reap --rsource",
		"-m recent --name " + local.sepChain(endpoint{ip: "10.244.0.5", port: 8080}) + " --set --rsource",
		// no endpoints: reject
		"-A SKIFF-SERVICES -m comment --comment \"other/empty:8080 has no endpoints\" -p tcp -d 10.96.0.12/32 -m tcp --dport 8080 -j REJECT",
		// stale chains are flushed and deleted
		":" + stale + " - [0:0]",
		"-X " + stale + "\n",
		"-A SKIFF-POSTROUTING -j MASQUERADE",
	} {
		if !strings.Contains(strings.ReplaceAll(rules, " -m comment --comment \"skiff service traffic requiring SNAT\"", ""), want) {
			t.Errorf("rules lack %q", want)
		}
	}
	for _, unwanted := range []string{"10.244.0.99", "10.244.0.7", "headless", "db.example.com", "-X SKIFF-SERVICES"} {
		if strings.Contains(rules, unwanted) {
			t.Errorf("rules contain %q", unwanted)
		}
	}
	if t.Failed() {
		t.Logf("rules:\n%s", rules)
	}
	// Deterministic: the same input renders the same bytes.
	again := string(buildRules(prm, servicePorts(svcs, eps, "me"), map[Table][]string{TableNAT: {chainServices, stale}}))
	if again != rules {
		t.Error("two renders of the same state differ")
	}
}

func TestChainNames(t *testing.T) {
	a := chainName(prefixEndpoint, "default/web:http", "tcp", "10.244.0.10:8080")
	if len(a) > 28 {
		t.Errorf("%s: %d characters, iptables allows 28", a, len(a))
	}
	if b := chainName(prefixEndpoint, "default/web:http", "tcp", "10.244.0.11:8080"); a == b {
		t.Errorf("two endpoints share chain %s", a)
	}
}

func TestSplitRule(t *testing.T) {
	got := splitRule(`-A INPUT -m comment --comment "a b \"c\"" -j SKIFF-SERVICES`)
	want := []string{"-A", "INPUT", "-m", "comment", "--comment", `a b "c"`, "-j", "SKIFF-SERVICES"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.ClusterCIDR = "10.244.0.0/16"
	if err := good.Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	bad := good
	bad.ClusterCIDR, bad.MinSyncInterval, bad.NodeIPs = "fd00::/64", time.Hour, []string{"nope"}
	err := bad.Validate()
	for _, want := range []string{"cluster CIDR", "node IP", "min sync interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error about %s", err, want)
		}
	}
}

// recorder is a Runner that keeps what it is asked in memory.
type recorder struct {
	rules    map[string][]string // table/chain -> rules
	restores []string
	failNext bool
}

func (r *recorder) Restore(_ context.Context, data []byte) error {
	if r.failNext {
		r.failNext = false
		return errors.New("planted failure")
	}
	r.restores = append(r.restores, string(data))
	return nil
}
func (r *recorder) Save(context.Context, Table) ([]byte, error) { return nil, nil }
func (r *recorder) EnsureRule(_ context.Context, t Table, chain string, rule ...string) error {
	k := string(t) + "/" + chain
	s := strings.Join(rule, " ")
	for _, x := range r.rules[k] {
		if x == s {
			return nil
		}
	}
	r.rules[k] = append([]string{s}, r.rules[k]...)
	return nil
}
func (r *recorder) DeleteRule(context.Context, Table, string, ...string) error { return nil }

type listCache []runtime.Object

func (l *listCache) List(labels.Selector) []runtime.Object { return *l }

func TestSyncSkipsUnchangedAndRetriesFailed(t *testing.T) {
	svcs, eps := testServices()
	var sc, ec listCache
	for _, s := range svcs {
		sc = append(sc, s)
	}
	for k, e := range eps {
		e = e.DeepCopy()
		e.Namespace, e.Name, _ = strings.Cut(k, "/")
		ec = append(ec, e)
	}
	rec := &recorder{rules: map[string][]string{}}
	cfg := DefaultConfig()
	cfg.Runner, cfg.Conntrack = rec, &ctRecorder{}
	p, err := New(cfg, &sc, &ec)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec.failNext = true
	if err := p.Sync(ctx); err == nil {
		t.Fatal("sync with a failing restore succeeded")
	}
	for i := 0; i < 3; i++ {
		if err := p.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.restores) != 1 {
		t.Errorf("%d restores for one unchanged state, want 1", len(rec.restores))
	}
	if got := rec.rules["filter/FORWARD"]; len(got) != 3 || !strings.HasSuffix(got[2], "SKIFF-FORWARD") {
		t.Errorf("FORWARD jumps %q: want the two service checks, then SKIFF-FORWARD", got)
	}
}

// ctRecorder records the filters it is asked to delete with.
type ctRecorder struct{ calls [][]ConntrackFilter }

func (r *ctRecorder) Delete(_ context.Context, f []ConntrackFilter) (int, error) {
	r.calls = append(r.calls, f)
	return len(f), nil
}

func describeFilters(fs []ConntrackFilter) string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("dst=%v:%d", f.OrigDst, f.OrigDstPort)
		if f.ReplySrc != nil {
			s += fmt.Sprintf(" from=%v", f.ReplySrc)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func TestStaleUDPFlushes(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
	ep := func(ips ...string) *corev1.Endpoints {
		e := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dns"}}
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}}}
		for _, ip := range ips {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
		}
		e.Subsets = []corev1.EndpointSubset{ss}
		return e
	}
	ct := &ctRecorder{}
	sc, ec := &listCache{}, &listCache{}
	cfg := DefaultConfig()
	cfg.Runner, cfg.Conntrack = &recorder{rules: map[string][]string{}}, ct
	p, err := New(cfg, sc, ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what string
		svcs listCache
		eps  listCache
		want string
	}{
		{"first sync: nothing moves", listCache{svc}, listCache{ep("10.244.0.5")}, ""},
		{"unchanged", listCache{svc}, listCache{ep("10.244.0.5")}, ""},
		{"an endpoint replaced", listCache{svc}, listCache{ep("10.244.0.6")}, "dst=10.96.0.10:53 from=10.244.0.5"},
		{"an endpoint added", listCache{svc}, listCache{ep("10.244.0.6", "10.244.0.7")}, ""},
		{"all gone", listCache{svc}, listCache{}, "dst=10.96.0.10:53 from=10.244.0.6; dst=10.96.0.10:53 from=10.244.0.7"},
		{"first endpoint again", listCache{svc}, listCache{ep("10.244.0.8")}, "dst=10.96.0.10:53"},
		{"service gone", listCache{}, listCache{}, "dst=10.96.0.10:53"},
		{"new service with endpoints", listCache{svc}, listCache{ep("10.244.0.9")}, "dst=10.96.0.10:53"},
	} {
		*sc, *ec = step.svcs, step.eps
		ct.calls = nil
		if err := p.Sync(context.Background()); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		var got []string
		for _, c := range ct.calls {
			got = append(got, describeFilters(c))
		}
		if g := strings.Join(got, " | "); g != step.want {
			t.Errorf("%s: flushed %q, want %q", step.what, g, step.want)
		}
	}
}

func TestConntrackTupleRoundTrip(t *testing.T) {
	in := ctTuple{src: net.IPv4(10, 244, 0, 13).To4(), dst: net.IPv4(10, 96, 0, 10).To4(), sport: 40000, dport: 53,
		proto: 17, hasPorts: true, hasIPs: true}
	enc := encodeTuple(ctaTupleOrig, in)
	out := parseTuple(attrs(enc)[ctaTupleOrig])
	if !out.src.Equal(in.src) || !out.dst.Equal(in.dst) || out.sport != in.sport || out.dport != in.dport || out.proto != in.proto {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	f := ConntrackFilter{Proto: 17, OrigDst: in.dst, OrigDstPort: 53, ReplySrc: net.IPv4(10, 244, 0, 5)}
	if f.matches(in, ctTuple{src: net.IPv4(10, 244, 0, 6)}) || !f.matches(in, ctTuple{src: net.IPv4(10, 244, 0, 5)}) {
		t.Error("filter matched the wrong reply source")
	}
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	local := corev1.ServiceInternalTrafficPolicyLocal
	mk := func(name, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: ip, InternalTrafficPolicy: &local, Ports: []corev1.ServicePort{{Name: "p", Port: 80}}}}
	}
	eps := map[string]*corev1.Endpoints{
		"default/agent": {Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5", NodeName: ptrTo("me")}, {IP: "10.244.1.5", NodeName: ptrTo("other")}},
			Ports:     []corev1.EndpointPort{{Name: "p", Port: 8080}}}}},
		"default/far": {Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.6", NodeName: ptrTo("other")}},
			Ports:     []corev1.EndpointPort{{Name: "p", Port: 8080}}}}},
	}
	ports := servicePorts([]*corev1.Service{mk("agent", "10.96.0.20"), mk("far", "10.96.0.21")}, eps, "me")
	rules := string(buildRules(ruleParams{masqMark: "0x4000/0x4000", clusterCIDR: "10.244.0.0/16"}, ports, nil))
	agent, far := ports[0], ports[1]
	for _, want := range []string{
		"-d 10.96.0.20/32 -m tcp --dport 80 -j " + agent.localChain(),
		"-A " + agent.localChain() + " -m comment --comment \"default/agent:p -> 10.244.0.5:8080\" -j " + agent.sepChain(endpoint{ip: "10.244.0.5", port: 8080}),
		"-A SKIFF-SERVICES -m comment --comment \"default/far:p has no local endpoints\" -p tcp -d 10.96.0.21/32 -m tcp --dport 80 -j DROP",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q", want)
		}
	}
	if strings.Contains(rules, "-A "+agent.localChain()+" -m comment --comment \"default/agent:p -> 10.244.1.5:8080\"") {
		t.Error("the local chain balances to another node's endpoint")
	}
	if strings.Contains(rules, "-j "+far.svcChain()+"\n") && strings.Contains(rules, "-d 10.96.0.21/32 -m tcp --dport 80 -j "+far.svcChain()) {
		t.Error("cluster IP of a local-policy service goes to all endpoints")
	}
	if t.Failed() {
		t.Logf("rules:\n%s", rules)
	}
}

// TestRulesAcceptedByIPTables feeds every rule shape (node ports, load
// balancer IPs, both Local policies, affinity, UDP, no endpoints) to a
// real iptables-restore in a scratch namespace, then cleans up.
func TestRulesAcceptedByIPTables(t *testing.T) {
	requireRoot(t)
	ns := nsPrefix() + "rules"
	addNetns(t, ns)
	svcs, eps := testServices()
	local := corev1.ServiceInternalTrafficPolicyLocal
	il := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "il"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.30", InternalTrafficPolicy: &local, SessionAffinity: corev1.ServiceAffinityClientIP,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	eps["default/il"] = &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.0.40", NodeName: ptrTo("me")}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}}}}}
	ports := servicePorts(append(svcs, il), eps, "me")
	r := &Exec{Prefix: []string{"ip", "netns", "exec", ns}}
	ctx := context.Background()
	for _, prm := range []ruleParams{
		{masqMark: "0x4000/0x4000", clusterCIDR: "10.244.0.0/16"},
		{masqMark: "0x4000/0x4000", masqueradeAll: true, nodeIPs: []string{"192.0.2.1"}},
	} {
		if err := r.Restore(ctx, buildRules(prm, ports, nil)); err != nil {
			t.Errorf("iptables-restore rejected the rules (%+v): %v", prm, err)
		}
		if err := ensureJumps(ctx, r); err != nil {
			t.Errorf("jumps: %v", err)
		}
		if err := Cleanup(ctx, r); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, tb := range []Table{TableNAT, TableFilter} {
			out, err := r.Save(ctx, tb)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "SKIFF") {
				t.Errorf("%s table keeps SKIFF rules after cleanup:\n%s", tb, out)
			}
		}
	}
}

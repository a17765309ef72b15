package sched

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type filterCase struct {
	name     string
	nodes    []*corev1.Node
	existing []*corev1.Pod
	pod      *corev1.Pod
	// want is the exact set of feasible nodes, wantReasons the exact
	// histogram of the others.
	want        []string
	wantReasons map[string]int
}

func runFilterCases(t *testing.T, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, s := cluster(t, tc.nodes, tc.existing)
			got, reasons, err := s.filterAll(tc.pod)
			if err != nil {
				t.Fatalf("filter: %v", err)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("feasible nodes = %v, want %v (reasons %v)", got, want, reasons)
			}
			wantReasons := tc.wantReasons
			if wantReasons == nil {
				wantReasons = map[string]int{}
			}
			if !maps.Equal(reasons, wantReasons) {
				t.Errorf("reasons = %v, want %v", reasons, wantReasons)
			}
		})
	}
}

var (
	notReadyTaint = taint(TaintNodeNotReady, "", corev1.TaintEffectNoSchedule)
)

func TestFilterNodeReadyAndSchedulable(t *testing.T) {
	noConditions := func(n *corev1.Node) { n.Status.Conditions = nil }
	runFilterCases(t, []filterCase{
		{name: "ready node passes", nodes: []*corev1.Node{mkNode("n1")}, pod: mkPod("p"), want: []string{"n1"}},
		{
			name:        "not ready node is rejected",
			nodes:       []*corev1.Node{mkNode("n1", notReady()), mkNode("n2")},
			pod:         mkPod("p"),
			want:        []string{"n2"},
			wantReasons: map[string]int{ReasonNotReady: 1},
		},
		{
			name:        "node without a Ready condition is not ready",
			nodes:       []*corev1.Node{mkNode("n1", noConditions)},
			pod:         mkPod("p"),
			wantReasons: map[string]int{ReasonNotReady: 1},
		},
		{
			name:        "not ready node with the controller's taint reports the taint",
			nodes:       []*corev1.Node{mkNode("n1", notReady(), notReadyTaint)},
			pod:         mkPod("p"),
			wantReasons: map[string]int{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }": 1},
		},
		{
			name:  "pod tolerating not-ready (a daemon) may use a not ready node",
			nodes: []*corev1.Node{mkNode("n1", notReady(), notReadyTaint)},
			pod: mkPod("p", tolerate(corev1.Toleration{
				Key: TaintNodeNotReady, Operator: corev1.TolerationOpExists,
			})),
			want: []string{"n1"},
		},
		{
			name:        "cordoned node is rejected",
			nodes:       []*corev1.Node{mkNode("n1", cordoned()), mkNode("n2")},
			pod:         mkPod("p"),
			want:        []string{"n2"},
			wantReasons: map[string]int{ReasonUnschedulable: 1},
		},
		{
			name:        "cordon is reported before readiness and resources",
			nodes:       []*corev1.Node{mkNode("n1", cordoned(), notReady(), alloc("cpu", "0"))},
			pod:         mkPod("p", req("cpu", "1")),
			wantReasons: map[string]int{ReasonUnschedulable: 1},
		},
		{
			name:  "pod tolerating the unschedulable taint may use a cordoned node",
			nodes: []*corev1.Node{mkNode("n1", cordoned())},
			pod: mkPod("p", tolerate(corev1.Toleration{
				Key: TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
			})),
			want: []string{"n1"},
		},
	})
}

func TestFilterResources(t *testing.T) {
	full := mkPod("full", onNode("n1"), req("cpu", "3", "memory", "6Gi"))
	runFilterCases(t, []filterCase{
		{
			name: "fits in what is left", nodes: []*corev1.Node{mkNode("n1")}, existing: []*corev1.Pod{full},
			pod: mkPod("p", req("cpu", "1", "memory", "2Gi")), want: []string{"n1"},
		},
		{
			name: "one millicore too many", nodes: []*corev1.Node{mkNode("n1")}, existing: []*corev1.Pod{full},
			pod:         mkPod("p", req("cpu", "1001m")),
			wantReasons: map[string]int{"Insufficient cpu": 1},
		},
		{
			name: "every short resource is reported", nodes: []*corev1.Node{mkNode("n1")}, existing: []*corev1.Pod{full},
			pod:         mkPod("p", req("cpu", "2", "memory", "3Gi", "ephemeral-storage", "200Gi")),
			wantReasons: map[string]int{"Insufficient cpu": 1, "Insufficient memory": 1, "Insufficient ephemeral-storage": 1},
		},
		{
			name: "containers add up", nodes: []*corev1.Node{mkNode("n1")},
			pod:         mkPod("p", req("cpu", "2"), container("cpu", "2"), container("cpu", "1m")),
			wantReasons: map[string]int{"Insufficient cpu": 1},
		},
		{
			name: "init containers count by their maximum, not their sum", nodes: []*corev1.Node{mkNode("n1")},
			pod:  mkPod("p", req("cpu", "1"), initContainer(false, "cpu", "4"), initContainer(false, "cpu", "4")),
			want: []string{"n1"},
		},
		{
			name: "an init container larger than the node does not fit", nodes: []*corev1.Node{mkNode("n1")},
			pod:         mkPod("p", req("cpu", "1"), initContainer(false, "cpu", "5")),
			wantReasons: map[string]int{"Insufficient cpu": 1},
		},
		{
			name: "sidecars add to the app containers", nodes: []*corev1.Node{mkNode("n1")},
			pod:         mkPod("p", req("cpu", "3"), initContainer(true, "cpu", "1500m")),
			wantReasons: map[string]int{"Insufficient cpu": 1},
		},
		{
			name: "pod overhead counts", nodes: []*corev1.Node{mkNode("n1")},
			pod: mkPod("p", req("cpu", "3900m"), func(p *corev1.Pod) {
				p.Spec.Overhead = requests("cpu", "200m")
			}),
			wantReasons: map[string]int{"Insufficient cpu": 1},
		},
		{
			name: "pod-level resources replace the container sum", nodes: []*corev1.Node{mkNode("n1")},
			pod: mkPod("p", req("cpu", "8"), func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Requests: requests("cpu", "2")}
			}),
			want: []string{"n1"},
		},
		{
			name: "a limit without a request is the request", nodes: []*corev1.Node{mkNode("n1")},
			pod: mkPod("p", func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits = requests("memory", "9Gi")
			}),
			wantReasons: map[string]int{"Insufficient memory": 1},
		},
		{
			name: "a pod requesting nothing fits a full node", nodes: []*corev1.Node{mkNode("n1", alloc("cpu", "0"))},
			pod: mkPod("p"), want: []string{"n1"},
		},
		{
			name: "extended resources", nodes: []*corev1.Node{mkNode("gpu", alloc("example.com/gpu", "2")), mkNode("plain")},
			existing:    []*corev1.Pod{mkPod("g", onNode("gpu"), req("example.com/gpu", "1"))},
			pod:         mkPod("p", req("example.com/gpu", "1")),
			want:        []string{"gpu"},
			wantReasons: map[string]int{"Insufficient example.com/gpu": 1},
		},
		{
			name: "pod count", nodes: []*corev1.Node{mkNode("n1", alloc("pods", "1")), mkNode("n2")},
			existing:    []*corev1.Pod{mkPod("a", onNode("n1"))},
			pod:         mkPod("p"),
			want:        []string{"n2"},
			wantReasons: map[string]int{ReasonTooManyPods: 1},
		},
		{
			name: "too many pods and cpu together", nodes: []*corev1.Node{mkNode("n1", alloc("pods", "0"))},
			pod:         mkPod("p", req("cpu", "5")),
			wantReasons: map[string]int{ReasonTooManyPods: 1, "Insufficient cpu": 1},
		},
		{
			name: "finished pods hold nothing", nodes: []*corev1.Node{mkNode("n1")},
			existing: []*corev1.Pod{mkPod("done", onNode("n1"), req("cpu", "4"), func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
			})},
			pod: mkPod("p", req("cpu", "4")), want: []string{"n1"},
		},
	})
}

func TestFilterHostPorts(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	on := func(opts ...podOpt) []*corev1.Pod {
		return []*corev1.Pod{mkPod("e", append(opts, onNode("n1"))...)}
	}
	nodes := func() []*corev1.Node { return []*corev1.Node{mkNode("n1")} }
	conflict := map[string]int{ReasonHostPorts: 1}
	runFilterCases(t, []filterCase{
		{name: "free port", nodes: nodes(), existing: on(hostPortOpt(tcp, "", 80)), pod: mkPod("p", hostPortOpt(tcp, "", 8080)), want: []string{"n1"}},
		{name: "same port", nodes: nodes(), existing: on(hostPortOpt(tcp, "", 80)), pod: mkPod("p", hostPortOpt(tcp, "", 80)), wantReasons: conflict},
		{name: "default protocol is TCP", nodes: nodes(), existing: on(hostPortOpt("", "", 80)), pod: mkPod("p", hostPortOpt(tcp, "", 80)), wantReasons: conflict},
		{name: "other protocol", nodes: nodes(), existing: on(hostPortOpt(tcp, "", 53)), pod: mkPod("p", hostPortOpt(udp, "", 53)), want: []string{"n1"}},
		{name: "different IPs", nodes: nodes(), existing: on(hostPortOpt(tcp, "10.0.0.1", 80)), pod: mkPod("p", hostPortOpt(tcp, "10.0.0.2", 80)), want: []string{"n1"}},
		{name: "same IP", nodes: nodes(), existing: on(hostPortOpt(tcp, "10.0.0.1", 80)), pod: mkPod("p", hostPortOpt(tcp, "10.0.0.1", 80)), wantReasons: conflict},
		{name: "wildcard wanted, IP held", nodes: nodes(), existing: on(hostPortOpt(tcp, "10.0.0.1", 80)), pod: mkPod("p", hostPortOpt(tcp, "0.0.0.0", 80)), wantReasons: conflict},
		{name: "IP wanted, wildcard held", nodes: nodes(), existing: on(hostPortOpt(tcp, "", 80)), pod: mkPod("p", hostPortOpt(tcp, "10.0.0.1", 80)), wantReasons: conflict},
		{
			name: "a host-network pod binds its container ports", nodes: nodes(), existing: on(hostPortOpt(tcp, "", 8080)),
			pod: mkPod("p", func(p *corev1.Pod) {
				p.Spec.HostNetwork = true
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
			}),
			wantReasons: conflict,
		},
		{
			name: "a removed pod frees its port", nodes: nodes(),
			existing: on(hostPortOpt(tcp, "", 80), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
			pod:      mkPod("p", hostPortOpt(tcp, "", 80)), want: []string{"n1"},
		},
	})
}

func TestFilterNodeSelectorAndAffinity(t *testing.T) {
	nodes := func() []*corev1.Node {
		return []*corev1.Node{
			mkNode("a", nodeLabels("zone", "z1", "disk", "ssd", "cores", "8")),
			mkNode("b", nodeLabels("zone", "z2", "cores", "32")),
			mkNode("c", nodeLabels("zone", "z3", "cores", "many")),
		}
	}
	miss := func(n int) map[string]int { return map[string]int{ReasonNodeAffinity: n} }
	op := func(o string) corev1.NodeSelectorOperator { return corev1.NodeSelectorOperator(o) }
	runFilterCases(t, []filterCase{
		{name: "nodeSelector", nodes: nodes(), pod: mkPod("p", nodeSelectorOpt("disk", "ssd")), want: []string{"a"}, wantReasons: miss(2)},
		{name: "nodeSelector on two labels", nodes: nodes(), pod: mkPod("p", nodeSelectorOpt("disk", "ssd", "zone", "z2")), wantReasons: miss(3)},
		{name: "In", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("zone", op("In"), "z1", "z2"))), want: []string{"a", "b"}, wantReasons: miss(1)},
		{name: "NotIn (missing label passes)", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("disk", op("NotIn"), "ssd"))), want: []string{"b", "c"}, wantReasons: miss(1)},
		{name: "Exists", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("disk", op("Exists")))), want: []string{"a"}, wantReasons: miss(2)},
		{name: "DoesNotExist", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("disk", op("DoesNotExist")))), want: []string{"b", "c"}, wantReasons: miss(1)},
		{name: "Gt (non-numbers never match)", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("cores", op("Gt"), "8"))), want: []string{"b"}, wantReasons: miss(2)},
		{name: "Lt", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("cores", op("Lt"), "9"))), want: []string{"a"}, wantReasons: miss(2)},
		{name: "Gt with a malformed operand matches nothing", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(expr("cores", op("Gt"), "eight"))), wantReasons: miss(3)},
		{
			name: "expressions of a term are ANDed", nodes: nodes(),
			pod: mkPod("p", requiredNodeTerms(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"z1", "z2"}},
				{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"10"}},
			}})),
			want: []string{"b"}, wantReasons: miss(2),
		},
		{
			name: "terms are ORed", nodes: nodes(),
			pod:  mkPod("p", requiredNodeTerms(expr("zone", op("In"), "z1"), expr("zone", op("In"), "z3"))),
			want: []string{"a", "c"}, wantReasons: miss(1),
		},
		{
			name: "matchFields metadata.name", nodes: nodes(),
			pod: mkPod("p", requiredNodeTerms(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"c"}},
			}})),
			want: []string{"c"}, wantReasons: miss(2),
		},
		{
			name: "matchFields NotIn", nodes: nodes(),
			pod: mkPod("p", requiredNodeTerms(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"c"}},
			}})),
			want: []string{"a", "b"}, wantReasons: miss(1),
		},
		{name: "an empty term matches nothing", nodes: nodes(), pod: mkPod("p", requiredNodeTerms(corev1.NodeSelectorTerm{})), wantReasons: miss(3)},
		{name: "no terms match nothing", nodes: nodes(), pod: mkPod("p", requiredNodeTerms()), wantReasons: miss(3)},
		{
			name: "selector and affinity must both hold", nodes: nodes(),
			pod:         mkPod("p", nodeSelectorOpt("zone", "z1"), requiredNodeTerms(expr("cores", op("Gt"), "10"))),
			wantReasons: miss(3),
		},
		{
			name: "preferred terms never filter", nodes: nodes(),
			pod: mkPod("p", affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 10, Preference: expr("zone", op("In"), "nowhere")}},
			}})),
			want: []string{"a", "b", "c"},
		},
	})
}

func TestFilterTaints(t *testing.T) {
	noSched := func(k, v string) nodeOpt { return taint(k, v, corev1.TaintEffectNoSchedule) }
	gpu := func() []*corev1.Node {
		return []*corev1.Node{mkNode("gpu", noSched("dedicated", "gpu")), mkNode("plain")}
	}
	gpuReason := map[string]int{"node(s) had untolerated taint {dedicated: gpu}": 1}
	runFilterCases(t, []filterCase{
		{name: "untolerated NoSchedule", nodes: gpu(), pod: mkPod("p"), want: []string{"plain"}, wantReasons: gpuReason},
		{
			name: "NoExecute filters too", nodes: []*corev1.Node{mkNode("n1", taint("evict", "now", corev1.TaintEffectNoExecute))},
			pod: mkPod("p"), wantReasons: map[string]int{"node(s) had untolerated taint {evict: now}": 1},
		},
		{
			name: "PreferNoSchedule does not filter", nodes: []*corev1.Node{mkNode("n1", taint("soft", "x", corev1.TaintEffectPreferNoSchedule))},
			pod: mkPod("p"), want: []string{"n1"},
		},
		{name: "Equal toleration", nodes: gpu(), pod: mkPod("p", tolerate(corev1.Toleration{Key: "dedicated", Value: "gpu"})), want: []string{"gpu", "plain"}},
		{name: "Equal with another value", nodes: gpu(), pod: mkPod("p", tolerate(corev1.Toleration{Key: "dedicated", Value: "tpu"})), want: []string{"plain"}, wantReasons: gpuReason},
		{name: "Exists on the key", nodes: gpu(), pod: mkPod("p", tolerate(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})), want: []string{"gpu", "plain"}},
		{name: "Exists without a key tolerates everything", nodes: gpu(), pod: mkPod("p", tolerate(corev1.Toleration{Operator: corev1.TolerationOpExists})), want: []string{"gpu", "plain"}},
		{
			name: "toleration for another effect", nodes: gpu(),
			pod:  mkPod("p", tolerate(corev1.Toleration{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute})),
			want: []string{"plain"}, wantReasons: gpuReason,
		},
		{
			name:        "every hard taint must be tolerated; the first untolerated is named",
			nodes:       []*corev1.Node{mkNode("n1", noSched("a", "1"), noSched("b", "2"))},
			pod:         mkPod("p", tolerate(corev1.Toleration{Key: "a", Value: "1"})),
			wantReasons: map[string]int{"node(s) had untolerated taint {b: 2}": 1},
		},
		{
			name:  "Gt compares numerically",
			nodes: []*corev1.Node{mkNode("old", noSched("version", "3")), mkNode("new", noSched("version", "12"))},
			pod:   mkPod("p", tolerate(corev1.Toleration{Key: "version", Operator: corev1.TolerationOpGt, Value: "5"})),
			want:  []string{"new"}, wantReasons: map[string]int{"node(s) had untolerated taint {version: 3}": 1},
		},
		{
			name:  "Lt compares numerically",
			nodes: []*corev1.Node{mkNode("old", noSched("version", "3")), mkNode("new", noSched("version", "12"))},
			pod:   mkPod("p", tolerate(corev1.Toleration{Key: "version", Operator: corev1.TolerationOpLt, Value: "5"})),
			want:  []string{"old"}, wantReasons: map[string]int{"node(s) had untolerated taint {version: 12}": 1},
		},
	})
}

func TestFilterTaintsRedacted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RedactTaints = true
	_, s := cluster(t, []*corev1.Node{mkNode("n1", taint("k", "v", corev1.TaintEffectNoSchedule))}, nil, cfg)
	_, err := s.Schedule(mkPod("p"))
	if got, want := fitError(t, err).Error(), "0/1 nodes are available: 1 node(s) had untolerated taint(s)."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestFilterInterPodAffinity(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	const host = "kubernetes.io/hostname"
	nodes := func() []*corev1.Node {
		return []*corev1.Node{
			mkNode("a1", nodeLabels(zone, "a")), mkNode("a2", nodeLabels(zone, "a")),
			mkNode("b1", nodeLabels(zone, "b")), mkNode("nozone"),
		}
	}
	cache := mkPod("cache", onNode("a1"), podLabels("app", "cache"))
	withAff := func(terms ...corev1.PodAffinityTerm) podOpt {
		return affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}})
	}
	withAnti := func(terms ...corev1.PodAffinityTerm) podOpt {
		return affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}})
	}
	app := map[string]string{"app": "cache"}
	runFilterCases(t, []filterCase{
		{
			name: "affinity to a zone holding a matching pod", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:  mkPod("web", withAff(podTerm(zone, app))),
			want: []string{"a1", "a2"}, wantReasons: map[string]int{ReasonPodAffinity: 2},
		},
		{
			name: "affinity counts the pod's own namespace only", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:         mkPod("web", inNamespace("other"), withAff(podTerm(zone, app))),
			wantReasons: map[string]int{ReasonPodAffinity: 4},
		},
		{
			name: "affinity with an empty namespaceSelector spans namespaces", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod: mkPod("web", inNamespace("other"), withAff(func() corev1.PodAffinityTerm {
				t := podTerm(zone, app)
				t.NamespaceSelector = &metav1.LabelSelector{}
				return t
			}())),
			want: []string{"a1", "a2"}, wantReasons: map[string]int{ReasonPodAffinity: 2},
		},
		{
			name: "the first pod of a group that matches itself goes anywhere with the label", nodes: nodes(),
			pod:  mkPod("cache-0", podLabels("app", "cache"), withAff(podTerm(zone, app))),
			want: []string{"a1", "a2", "b1"}, wantReasons: map[string]int{ReasonPodAffinity: 1},
		},
		{
			name: "nobody to be with and not matching itself", nodes: nodes(),
			pod:         mkPod("web", withAff(podTerm(zone, app))),
			wantReasons: map[string]int{ReasonPodAffinity: 4},
		},
		{
			name: "anti-affinity on hostname", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:  mkPod("cache-1", podLabels("app", "cache"), withAnti(podTerm(host, app))),
			want: []string{"a2", "b1", "nozone"}, wantReasons: map[string]int{ReasonPodAntiAffinity: 1},
		},
		{
			name: "anti-affinity on zone", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:  mkPod("cache-1", podLabels("app", "cache"), withAnti(podTerm(zone, app))),
			want: []string{"b1", "nozone"}, wantReasons: map[string]int{ReasonPodAntiAffinity: 2},
		},
		{
			name: "an anti-affinity term without a selector selects nothing", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:  mkPod("p", withAnti(corev1.PodAffinityTerm{TopologyKey: host})),
			want: []string{"a1", "a2", "b1", "nozone"},
		},
		{
			name: "an affinity term without a selector is never satisfied", nodes: nodes(), existing: []*corev1.Pod{cache},
			pod:         mkPod("p", withAff(corev1.PodAffinityTerm{TopologyKey: zone})),
			wantReasons: map[string]int{ReasonPodAffinity: 4},
		},
		{
			name: "an existing pod's anti-affinity keeps the incoming pod away", nodes: nodes(),
			existing: []*corev1.Pod{mkPod("loner", onNode("b1"), withAnti(podTerm(zone, map[string]string{"app": "web"})))},
			pod:      mkPod("web", podLabels("app", "web")),
			want:     []string{"a1", "a2", "nozone"}, wantReasons: map[string]int{ReasonExistingAntiAffinity: 1},
		},
		{
			name: "an existing pod's anti-affinity ignores pods it does not select", nodes: nodes(),
			existing: []*corev1.Pod{mkPod("loner", onNode("b1"), withAnti(podTerm(zone, map[string]string{"app": "web"})))},
			pod:      mkPod("db", podLabels("app", "db")),
			want:     []string{"a1", "a2", "b1", "nozone"},
		},
		{
			name: "matchLabelKeys narrows the selector to the pod's own value", nodes: nodes(),
			existing: []*corev1.Pod{mkPod("v1", onNode("a1"), podLabels("app", "cache", "rev", "1"))},
			pod: mkPod("v2", podLabels("app", "cache", "rev", "2"), withAnti(func() corev1.PodAffinityTerm {
				t := podTerm(host, app)
				t.MatchLabelKeys = []string{"rev"}
				return t
			}())),
			want: []string{"a1", "a2", "b1", "nozone"},
		},
		{
			name: "a terminating pod still counts for anti-affinity", nodes: nodes(),
			existing: []*corev1.Pod{mkPod("old", onNode("a1"), podLabels("app", "cache"), func(p *corev1.Pod) {
				now := metav1.Now()
				p.DeletionTimestamp = &now
			})},
			pod:  mkPod("new", podLabels("app", "cache"), withAnti(podTerm(host, app))),
			want: []string{"a2", "b1", "nozone"}, wantReasons: map[string]int{ReasonPodAntiAffinity: 1},
		},
	})
}

func TestFilterNamespaceSelector(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	nodes := []*corev1.Node{mkNode("a1", nodeLabels(zone, "a")), mkNode("b1", nodeLabels(zone, "b"))}
	existing := []*corev1.Pod{
		mkPod("db", inNamespace("prod"), onNode("a1"), podLabels("app", "db")),
		mkPod("db", inNamespace("dev"), onNode("b1"), podLabels("app", "db")),
	}
	term := podTerm(zone, map[string]string{"app": "db"})
	term.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	snap, s := cluster(t, nodes, existing)
	snap.SetNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod"}}})
	snap.SetNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dev", Labels: map[string]string{"env": "dev"}}})
	p := mkPod("web", affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term},
	}}))
	got, _, err := s.filterAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a1"}) {
		t.Errorf("feasible = %v, want [a1] (next to the prod db only)", got)
	}
}

func TestFilterVolumeNodeAffinity(t *testing.T) {
	nodes := []*corev1.Node{mkNode("n1"), mkNode("n2")}
	snap, s := cluster(t, nodes, nil)
	snap.SetPersistentVolume(&corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "local-n2"},
		Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{
			Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}},
			}}},
		}},
	})
	snap.SetPersistentVolumeClaim(&corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "local-n2"},
	})
	withClaim := func(claim string) *corev1.Pod {
		return mkPod("p", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}}
		})
	}
	cases := []struct {
		name        string
		pod         *corev1.Pod
		want        []string
		wantReasons map[string]int
	}{
		{"bound claim pins the pod to the volume's node", withClaim("data"), []string{"n2"}, map[string]int{ReasonVolumeNodeAffinity: 1}},
		{"unknown claim does not constrain", withClaim("unknown"), []string{"n1", "n2"}, map[string]int{}},
		{"no volumes", mkPod("p"), []string{"n1", "n2"}, map[string]int{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons, err := s.filterAll(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || !maps.Equal(reasons, tc.wantReasons) {
				t.Errorf("feasible = %v reasons = %v, want %v %v", got, reasons, tc.want, tc.wantReasons)
			}
		})
	}
}

func TestFilterTopologySpread(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	nodes := func() []*corev1.Node {
		return []*corev1.Node{
			mkNode("a1", nodeLabels(zone, "a")), mkNode("b1", nodeLabels(zone, "b")),
			mkNode("c1", nodeLabels(zone, "c")), mkNode("nozone"),
		}
	}
	web := map[string]string{"app": "web"}
	existing := func(nodes ...string) []*corev1.Pod {
		var out []*corev1.Pod
		for i, n := range nodes {
			out = append(out, mkPod("w"+string(rune('0'+i)), onNode(n), podLabels("app", "web")))
		}
		return out
	}
	hard := corev1.DoNotSchedule
	runFilterCases(t, []filterCase{
		{
			name: "empty cluster: every zone", nodes: nodes(),
			pod:  mkPod("p", podLabels("app", "web"), spread(zone, 1, hard, web)),
			want: []string{"a1", "b1", "c1"}, wantReasons: map[string]int{ReasonSpreadMissingLabel: 1},
		},
		{
			name: "maxSkew 1 keeps the pod out of the fuller zones", nodes: nodes(), existing: existing("a1", "b1"),
			pod:  mkPod("p", podLabels("app", "web"), spread(zone, 1, hard, web)),
			want: []string{"c1"}, wantReasons: map[string]int{ReasonSpreadMissingLabel: 1, ReasonSpreadConstraints: 2},
		},
		{
			name: "maxSkew 2 allows one more", nodes: nodes(), existing: existing("a1", "b1"),
			pod:  mkPod("p", podLabels("app", "web"), spread(zone, 2, hard, web)),
			want: []string{"a1", "b1", "c1"}, wantReasons: map[string]int{ReasonSpreadMissingLabel: 1},
		},
		{
			name: "pods not selected do not count", nodes: nodes(), existing: existing("a1", "b1"),
			pod:  mkPod("p", podLabels("app", "db"), spread(zone, 1, hard, map[string]string{"app": "db"})),
			want: []string{"a1", "b1", "c1"}, wantReasons: map[string]int{ReasonSpreadMissingLabel: 1},
		},
		{
			name: "ScheduleAnyway never filters", nodes: nodes(), existing: existing("a1", "a1", "b1"),
			pod:  mkPod("p", podLabels("app", "web"), spread(zone, 1, corev1.ScheduleAnyway, web)),
			want: []string{"a1", "b1", "c1", "nozone"},
		},
		{
			name: "minDomains above the domain count makes the minimum 0", nodes: nodes(), existing: existing("a1", "b1", "c1"),
			pod: mkPod("p", podLabels("app", "web"), spread(zone, 1, hard, web), func(p *corev1.Pod) {
				five := int32(5)
				p.Spec.TopologySpreadConstraints[0].MinDomains = &five
			}),
			wantReasons: map[string]int{ReasonSpreadMissingLabel: 1, ReasonSpreadConstraints: 3},
		},
		{
			name: "nodes the pod's selector excludes are no domain", nodes: append(nodes(), mkNode("d1", nodeLabels(zone, "d", "pool", "x"))),
			existing: existing("a1", "b1", "c1"),
			pod:      mkPod("p", podLabels("app", "web"), spread(zone, 1, hard, web), requiredNodeTerms(expr("pool", corev1.NodeSelectorOpDoesNotExist))),
			want:     []string{"a1", "b1", "c1"}, wantReasons: map[string]int{ReasonSpreadMissingLabel: 1, ReasonNodeAffinity: 1},
		},
	})
}

func TestInvalidPodIsNotAFitError(t *testing.T) {
	_, s := cluster(t, []*corev1.Node{mkNode("n1")}, nil)
	p := mkPod("p", affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}},
			TopologyKey:   "kubernetes.io/hostname",
		}},
	}}))
	_, err := s.Schedule(p)
	if !errorsIs(err, ErrInvalidPod) || IsUnschedulable(err) {
		t.Errorf("Schedule = %v, want ErrInvalidPod and not unschedulable", err)
	}
}

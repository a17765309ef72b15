package main

import (
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestParsePortSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want portSpec
		err  string
	}{
		{in: "80", want: portSpec{sameAsRemote: true, remote: "80", remoteNum: 80}},
		{in: "8080:80", want: portSpec{local: 8080, remote: "80", remoteNum: 80}},
		{in: ":80", want: portSpec{remote: "80", remoteNum: 80}},
		{in: "0:80", want: portSpec{remote: "80", remoteNum: 80}},
		{in: "8080:http", want: portSpec{local: 8080, remote: "http"}},
		{in: "http", want: portSpec{sameAsRemote: true, remote: "http"}},
		{in: "8080:", err: "the remote port is missing"},
		{in: "", err: "the remote port is missing"},
		{in: "70000", err: "remote port 70000 is not between 1 and 65535"},
		{in: "0", err: "remote port 0 is not between 1 and 65535"},
		{in: "x:80", err: `local port "x" is not a number`},
		{in: "-1:80", err: `local port "-1"`},
		{in: "8080:Not_A_Name", err: "neither a port number nor a port name"},
		{in: "1:2:3", err: "neither a port number nor a port name"},
	} {
		got, err := parsePortSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parsePortSpec(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parsePortSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	for in, want := range map[string]string{
		"web": "pod/web", "po/web": "pod/web", "pods/web": "pod/web",
		"svc/web": "service/web", "service/web": "service/web",
		"deploy/web": "deployment/web", "deployments.apps/web": "deployment/web",
		"rs/web": "replicaset/web", "sts/db": "statefulset/db",
		"ds/agent": "daemonset/agent", "job/pi": "job/pi", "rc/old": "replicationcontroller/old",
	} {
		k, n, err := splitTarget(in)
		if err != nil || k+"/"+n != want {
			t.Errorf("splitTarget(%q) = %s/%s, %v; want %s", in, k, n, err, want)
		}
	}
	for in, want := range map[string]string{
		"cm/web": "there are no pods behind a cm", "pod/": "give POD or TYPE/NAME", "a/b/c": "give POD or TYPE/NAME",
	} {
		if _, _, err := splitTarget(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("splitTarget(%q) error = %v, want %q", in, err, want)
		}
	}
}

func testPod(name string, ready bool, created time.Time) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "a", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9000}}},
			{Name: "b", Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
		}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func TestPickPod(t *testing.T) {
	now := time.Now()
	old := testPod("old", true, now.Add(-time.Hour))
	gone := testPod("gone", true, now.Add(-2*time.Hour))
	gone.DeletionTimestamp = &metav1.Time{Time: now}
	notReady := testPod("notready", false, now.Add(-3*time.Hour))
	pending := testPod("pending", true, now.Add(-4*time.Hour))
	pending.Status.Phase = corev1.PodPending
	young := testPod("young", true, now)
	if p := pickPod([]corev1.Pod{young, notReady, gone, pending, old}); p == nil || p.Name != "old" {
		t.Errorf("pickPod = %v, want the oldest ready pod not being deleted (old)", p)
	}
	if p := pickPod([]corev1.Pod{notReady, gone, pending}); p != nil {
		t.Errorf("pickPod of no ready pod = %s, want none", p.Name)
	}
}

func TestPodPort(t *testing.T) {
	pod := testPod("web", true, time.Now())
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "front", Port: 80, TargetPort: intstr.FromString("http")},
		{Name: "admin", Port: 81, TargetPort: intstr.FromInt32(9000)},
		{Name: "same", Port: 82},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
		{Name: "broken", Port: 83, TargetPort: intstr.FromString("nope")},
	}}}
	spec := func(s string) portSpec {
		ps, err := parsePortSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	for _, tc := range []struct {
		svc  bool
		in   string
		want int
		err  string
	}{
		{in: "1234", want: 1234}, // a pod port need not be declared
		{in: ":http", want: 8080},
		{in: ":nope", err: `port name "nope" is not a container port of pod default/web (named ports: http=8080, dns=53)`},
		{in: ":dns", err: "only TCP"},
		{svc: true, in: "80", want: 8080},
		{svc: true, in: ":front", want: 8080},
		{svc: true, in: ":81", want: 9000},
		{svc: true, in: ":same", want: 82},
		{svc: true, in: ":8080", err: "service web has no port 8080 (its ports: 80/front, 81/admin, 82/same, 53/dns, 83/broken)"},
		{svc: true, in: ":dns", err: "only TCP"},
		{svc: true, in: ":broken", err: `service web port broken: targetPort port name "nope" is not a container port`},
	} {
		ft := &forwardTarget{pod: &pod}
		if tc.svc {
			ft.svc = svc
		}
		got, err := ft.podPort(spec(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("svc=%v %s: error %v, want %q", tc.svc, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("svc=%v %s: port %d, %v; want %d", tc.svc, tc.in, got, err, tc.want)
		}
	}
}

func TestParseAddresses(t *testing.T) {
	got, err := parseAddresses([]string{"localhost", "127.0.0.1", " 0.0.0.0"})
	if err != nil || strings.Join(got, ",") != "127.0.0.1,::1,0.0.0.0" {
		t.Errorf("parseAddresses = %v, %v", got, err)
	}
	if _, err := parseAddresses([]string{"example.com"}); err == nil || !strings.Contains(err.Error(), `--address "example.com"`) {
		t.Errorf("a host name: error %v", err)
	}
}

func TestListenAllPicksPorts(t *testing.T) {
	specs := []portSpec{{remote: "80", remoteNum: 80}, {remote: "http", sameAsRemote: true}}
	// The second spec listens on the number the name resolved to: use a
	// free one so the test does not depend on the host.
	ls0, _, err := listenAll([]string{"127.0.0.1"}, specs[:1], []int{80})
	if err != nil {
		t.Fatal(err)
	}
	free, port := ls0[0].Addr().String(), ls0[0].Addr().(*net.TCPAddr).Port
	ls0[0].Close()
	ls, remotes, err := listenAll([]string{"127.0.0.1"}, specs, []int{80, port})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	if len(ls) != 2 || remotes[0] != 80 || remotes[1] != port || ls[1].Addr().String() != free || ls[0].Addr().String() == "127.0.0.1:0" {
		t.Errorf("listeners %v %v, remotes %v; want a free port -> 80 and %s -> %d", ls[0].Addr(), ls[1].Addr(), remotes, free, port)
	}
	// A taken port is an error naming it.
	if _, _, err := listenAll([]string{"127.0.0.1"}, []portSpec{{local: port, remote: "1", remoteNum: 1}}, []int{1}); err == nil ||
		!strings.Contains(err.Error(), "unable to listen on 127.0.0.1 port") {
		t.Errorf("listen on a taken port: %v", err)
	}
}

// Without a Ready pod, logs take the pod most worth reading: placed, then
// Running, then the most restarts, then the oldest.
func TestPickPodForLogs(t *testing.T) {
	now := time.Now()
	pod := func(name, node string, phase corev1.PodPhase, restarts int32, age time.Duration) corev1.Pod {
		p := testPod(name, false, now.Add(-age))
		p.Spec.NodeName, p.Status.Phase = node, phase
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}}
		return p
	}
	for _, tc := range []struct {
		pods []corev1.Pod
		want string
	}{
		{[]corev1.Pod{pod("unplaced", "", corev1.PodPending, 9, time.Hour), pod("pending", "n1", corev1.PodPending, 0, 0)}, "pending"},
		{[]corev1.Pod{pod("pending", "n1", corev1.PodPending, 0, time.Hour), pod("running", "n1", corev1.PodRunning, 0, 0)}, "running"},
		{[]corev1.Pod{pod("calm", "n1", corev1.PodRunning, 0, time.Hour), pod("crashing", "n1", corev1.PodRunning, 4, 0)}, "crashing"},
		{[]corev1.Pod{pod("young", "n1", corev1.PodFailed, 1, 0), pod("old", "n1", corev1.PodFailed, 1, time.Hour)}, "old"},
		{[]corev1.Pod{pod("failed", "n1", corev1.PodFailed, 0, time.Hour), testPod("ready", true, now)}, "ready"},
	} {
		if got := pickPodForLogs(tc.pods); got == nil || got.Name != tc.want {
			t.Errorf("pickPodForLogs(%d pods) = %v, want %s", len(tc.pods), got, tc.want)
		}
	}
	if got := pickPodForLogs(nil); got != nil {
		t.Errorf("pickPodForLogs(none) = %s, want none", got.Name)
	}
}

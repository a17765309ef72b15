package dns

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2 ; two\nsearch corp.example\noptions edns0 ndots:1\n")
	two := "2"
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		cfg  ResolvConfig
		want string
	}{
		{"ClusterFirst (default)", corev1.PodSpec{}, ResolvConfig{ClusterDNS: []string{"10.96.0.10"}, Host: host},
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"},
		{"custom domain", corev1.PodSpec{}, ResolvConfig{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "skiff.internal."},
			"nameserver 10.96.0.10\nsearch shop.svc.skiff.internal svc.skiff.internal skiff.internal\noptions ndots:5\n"},
		{"hostNetwork with ClusterFirst gets the host's", corev1.PodSpec{HostNetwork: true}, ResolvConfig{ClusterDNS: []string{"10.96.0.10"}, Host: host},
			"nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example\noptions edns0 ndots:1\n"},
		{"ClusterFirstWithHostNet", corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}, ResolvConfig{ClusterDNS: []string{"10.96.0.10"}},
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"no cluster DNS falls back to Default", corev1.PodSpec{}, ResolvConfig{Host: host},
			"nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example\noptions edns0 ndots:1\n"},
		{"None with dnsConfig", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}}},
			ResolvConfig{ClusterDNS: []string{"10.96.0.10"}, Host: host},
			"nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n"},
		{"dnsConfig merges: options replace by name, at most 3 nameservers", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"10.96.0.10", "1.1.1.1", "2.2.2.2", "3.3.3.3"}, Searches: []string{"svc.cluster.local", "x.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}},
			ResolvConfig{ClusterDNS: []string{"10.96.0.10"}},
			"nameserver 10.96.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\nsearch shop.svc.cluster.local svc.cluster.local cluster.local x.example\noptions ndots:2 edns0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"}, Spec: tc.spec}
			if got := string(ResolvConf(pod, tc.cfg)); got != tc.want {
				t.Errorf("resolv.conf:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

package main

import (
	"bytes"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func TestWriteTopNodes(t *testing.T) {
	node := func(name, cpu, mem string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}
	}
	nodes := []corev1.Node{node("b", "2", "4Gi"), node("a", "4", "8Gi"), node("c", "1", "1Gi")}
	usage := []*skiffv1.NodeUsage{
		{Name: "a", CpuMillicores: 250, MemoryWorkingSetBytes: 1 << 30},
		{Name: "b", CpuMillicores: 1500, MemoryWorkingSetBytes: 512 << 20},
	}
	for _, tc := range []struct {
		sortBy    string
		noHeaders bool
		want      string
	}{
		{"", false, `NAME   CPU(cores)   CPU%        MEMORY(bytes)   MEMORY%
a      250m         6%          1024Mi          12%
b      1500m        75%         512Mi           12%
c      <unknown>    <unknown>   <unknown>       <unknown>
`},
		{"cpu", true, `b     1500m       75%         512Mi       12%
a     250m        6%          1024Mi      12%
c     <unknown>   <unknown>   <unknown>   <unknown>
`},
		{"memory", true, `a     250m        6%          1024Mi      12%
b     1500m       75%         512Mi       12%
c     <unknown>   <unknown>   <unknown>   <unknown>
`},
	} {
		var b bytes.Buffer
		if err := writeTopNodes(&b, nodes, usage, tc.sortBy, tc.noHeaders); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("sort %q headers %v:\n%s\nwant:\n%s", tc.sortBy, !tc.noHeaders, b.String(), tc.want)
		}
	}
}

func TestWriteTopPods(t *testing.T) {
	pods := []*skiffv1.PodUsage{
		{Namespace: "kube", Name: "dns", Containers: []*skiffv1.ContainerUsage{{Name: "coredns", CpuMillicores: 3, MemoryWorkingSetBytes: 20 << 20}}},
		{Namespace: "default", Name: "web", Containers: []*skiffv1.ContainerUsage{
			{Name: "app", CpuMillicores: 100, MemoryWorkingSetBytes: 10 << 20},
			{Name: "sidecar", CpuMillicores: 5, MemoryWorkingSetBytes: 3<<20 + 1000}}},
	}
	for _, tc := range []struct {
		all, containers bool
		sortBy          string
		want            string
	}{
		{false, false, "", `NAME   CPU(cores)   MEMORY(bytes)
web    105m         13Mi
dns    3m           20Mi
`},
		{true, false, "", `NAMESPACE   NAME   CPU(cores)   MEMORY(bytes)
default     web    105m         13Mi
kube        dns    3m           20Mi
`},
		{true, false, "memory", `NAMESPACE   NAME   CPU(cores)   MEMORY(bytes)
kube        dns    3m           20Mi
default     web    105m         13Mi
`},
		{false, true, "", `POD   NAME      CPU(cores)   MEMORY(bytes)
web   app       100m         10Mi
web   sidecar   5m           3Mi
dns   coredns   3m           20Mi
`},
		{true, true, "cpu", `NAMESPACE   POD   NAME      CPU(cores)   MEMORY(bytes)
default     web   app       100m         10Mi
default     web   sidecar   5m           3Mi
kube        dns   coredns   3m           20Mi
`},
	} {
		var b bytes.Buffer
		if err := writeTopPods(&b, pods, tc.all, tc.containers, tc.sortBy, false); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("all %v containers %v sort %q:\n%s\nwant:\n%s", tc.all, tc.containers, tc.sortBy, b.String(), tc.want)
		}
	}
}

func TestTopFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		f  topFlags
		ok bool
	}{
		{topFlags{window: 1e9}, true},
		{topFlags{sortBy: "cpu", window: 1e9}, true},
		{topFlags{sortBy: "name", window: 1e9}, false},
		{topFlags{window: 0}, false},
		{topFlags{window: 11e9}, false},
	} {
		if err := tc.f.validate(); (err == nil) != tc.ok {
			t.Errorf("validate(%+v) = %v", tc.f, err)
		}
	}
}

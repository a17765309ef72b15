package apiserver

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffhq/skiff/api"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func limitRange(items ...corev1.LimitRangeItem) *corev1.LimitRange {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: items}}
	api.Default(lr)
	return lr
}

func podWith(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: containers}}
}

func ctr(name string, req, lim corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
}

func TestLimitRangeDefaults(t *testing.T) {
	lrs := []*corev1.LimitRange{
		limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer,
			Default: rl("cpu", "500m", "memory", "256Mi"), DefaultRequest: rl("cpu", "100m")}),
		// A later LimitRange only fills what the first did not.
		limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Default: rl("cpu", "2", "ephemeral-storage", "1Gi")}),
	}
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		wantReq  corev1.ResourceList
		wantLim  corev1.ResourceList
		wantNote string
	}{
		{name: "nothing set", pod: podWith(ctr("app", nil, nil)),
			wantReq:  rl("cpu", "100m", "memory", "256Mi", "ephemeral-storage", "1Gi"),
			wantLim:  rl("cpu", "500m", "memory", "256Mi", "ephemeral-storage", "1Gi"),
			wantNote: "LimitRanger plugin set: cpu, memory, ephemeral-storage request for container app; cpu, memory, ephemeral-storage limit for container app"},
		{name: "own values kept", pod: podWith(ctr("app", rl("cpu", "200m", "memory", "64Mi", "ephemeral-storage", "1Gi"), rl("cpu", "300m", "memory", "64Mi", "ephemeral-storage", "1Gi"))),
			wantReq: rl("cpu", "200m", "memory", "64Mi", "ephemeral-storage", "1Gi"), wantLim: rl("cpu", "300m", "memory", "64Mi", "ephemeral-storage", "1Gi")},
		{name: "only the missing limit", pod: podWith(ctr("app", rl("cpu", "200m", "memory", "64Mi", "ephemeral-storage", "1Gi"), rl("cpu", "300m", "ephemeral-storage", "1Gi"))),
			wantReq: rl("cpu", "200m", "memory", "64Mi", "ephemeral-storage", "1Gi"), wantLim: rl("cpu", "300m", "memory", "256Mi", "ephemeral-storage", "1Gi"),
			wantNote: "LimitRanger plugin set: memory limit for container app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			note := applyLimitRangeDefaults(tc.pod, lrs)
			c := tc.pod.Spec.Containers[0]
			if !equalResources(c.Resources.Requests, tc.wantReq) || !equalResources(c.Resources.Limits, tc.wantLim) {
				t.Errorf("requests %v limits %v, want %v %v", c.Resources.Requests, c.Resources.Limits, tc.wantReq, tc.wantLim)
			}
			if note != tc.wantNote {
				t.Errorf("note %q, want %q", note, tc.wantNote)
			}
		})
	}
	// The defaults of one pod are copies: changing them does not change the LimitRange.
	p := podWith(ctr("app", nil, nil))
	applyLimitRangeDefaults(p, lrs)
	q := p.Spec.Containers[0].Resources.Limits["cpu"]
	q.Add(resource.MustParse("1"))
	p.Spec.Containers[0].Resources.Limits["cpu"] = q
	if got := lrs[0].Spec.Limits[0].Default["cpu"]; got.String() != "500m" {
		t.Errorf("LimitRange default changed to %s through a pod", got.String())
	}
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		if w, ok := b[n]; !ok || w.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func TestLimitRangeViolations(t *testing.T) {
	containerBounds := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer,
		Min: rl("cpu", "50m"), Max: rl("cpu", "500m", "memory", "1Gi"), MaxLimitRequestRatio: rl("memory", "2")})
	podBounds := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("cpu", "1")})
	pvcBounds := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Min: rl("storage", "1Gi"), Max: rl("storage", "10Gi")})
	pvc := func(size string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{}
		if size != "" {
			c.Spec.Resources.Requests = rl("storage", size)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		obj  interface{}
		lrs  []*corev1.LimitRange
		want []string
	}{
		{name: "within bounds", lrs: []*corev1.LimitRange{containerBounds},
			obj: podWith(ctr("app", rl("cpu", "100m", "memory", "256Mi"), rl("cpu", "500m", "memory", "512Mi")))},
		{name: "over max limit", lrs: []*corev1.LimitRange{containerBounds},
			obj:  podWith(ctr("app", rl("cpu", "100m", "memory", "256Mi"), rl("cpu", "1", "memory", "512Mi"))),
			want: []string{`maximum cpu usage per Container is 500m, but limit is 1 (container "app")`}},
		{name: "under min request, no limit", lrs: []*corev1.LimitRange{containerBounds},
			obj: podWith(ctr("side", rl("cpu", "10m"), nil)),
			want: []string{
				`minimum cpu usage per Container is 50m, but request is 10m (container "side")`,
				`maximum cpu usage per Container is 500m.  No limit is specified (container "side")`,
				`maximum memory usage per Container is 1Gi.  No limit is specified (container "side")`,
				`memory max limit to request ratio per Container is 2, but no request is specified or request is 0 (container "side")`,
			}},
		{name: "ratio", lrs: []*corev1.LimitRange{containerBounds},
			obj:  podWith(ctr("app", rl("cpu", "100m", "memory", "100Mi"), rl("cpu", "100m", "memory", "300Mi"))),
			want: []string{`memory max limit to request ratio per Container is 2, but provided ratio is 3.000000 (container "app")`}},
		{name: "pod total", lrs: []*corev1.LimitRange{podBounds},
			obj:  podWith(ctr("a", rl("cpu", "600m"), rl("cpu", "600m")), ctr("b", rl("cpu", "600m"), rl("cpu", "600m"))),
			want: []string{`maximum cpu usage per Pod is 1, but limit is 1200m`}},
		{name: "claim within", lrs: []*corev1.LimitRange{pvcBounds, containerBounds}, obj: pvc("5Gi")},
		{name: "claim too big", lrs: []*corev1.LimitRange{pvcBounds}, obj: pvc("20Gi"),
			want: []string{`maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi`}},
		{name: "claim too small", lrs: []*corev1.LimitRange{pvcBounds}, obj: pvc("100Mi"),
			want: []string{`minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 100Mi`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			switch o := tc.obj.(type) {
			case *corev1.Pod:
				got = limitRangeViolations(o, tc.lrs)
			case *corev1.PersistentVolumeClaim:
				got = limitRangeViolations(o, tc.lrs)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

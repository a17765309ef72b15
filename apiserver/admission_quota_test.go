package apiserver

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
)

func quota(hard corev1.ResourceList, used corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q1"},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}, Status: corev1.ResourceQuotaStatus{Used: used}}
}

func usageOf(t *testing.T, obj runtime.Object) corev1.ResourceList {
	t.Helper()
	info, err := api.KindOf(obj)
	if err != nil {
		t.Fatal(err)
	}
	return api.QuotaUsage(info, obj, time.Now())
}

func TestQuotaCheck(t *testing.T) {
	small := podWith(ctr("app", rl("cpu", "250m", "memory", "64Mi"), rl("cpu", "500m", "memory", "64Mi")))
	bare := podWith(ctr("app", nil, nil))
	nodePort := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	for _, tc := range []struct {
		name     string
		q        *corev1.ResourceQuota
		obj      runtime.Object
		wantUsed corev1.ResourceList // the charged values (only resources of hard)
		wantWhy  string
	}{
		{name: "room left", q: quota(rl("pods", "3", "requests.cpu", "1"), rl("pods", "1", "requests.cpu", "500m")), obj: small,
			wantUsed: rl("pods", "2", "requests.cpu", "750m")},
		{name: "count full", q: quota(rl("pods", "2"), rl("pods", "2")), obj: small,
			wantWhy: "exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2"},
		{name: "two resources over", q: quota(rl("limits.cpu", "1", "limits.memory", "100Mi", "pods", "9"), rl("limits.cpu", "600m", "limits.memory", "50Mi", "pods", "0")), obj: small,
			wantWhy: "exceeded quota: q1, requested: limits.cpu=500m,limits.memory=64Mi, used: limits.cpu=600m,limits.memory=50Mi, limited: limits.cpu=1,limits.memory=100Mi"},
		{name: "exactly full is fine", q: quota(rl("requests.cpu", "1"), rl("requests.cpu", "750m")), obj: small,
			wantUsed: rl("requests.cpu", "1")},
		{name: "cpu shorthand", q: quota(rl("cpu", "200m"), rl("cpu", "0")), obj: small,
			wantWhy: "exceeded quota: q1, requested: cpu=250m, used: cpu=0, limited: cpu=200m"},
		{name: "requests required", q: quota(rl("requests.cpu", "1", "limits.memory", "1Gi"), nil), obj: bare,
			wantWhy: "failed quota: q1: must specify limits.memory,requests.cpu"},
		{name: "node ports", q: quota(rl("services.nodeports", "2", "services", "5"), rl("services.nodeports", "1", "services", "0")), obj: nodePort,
			wantWhy: "exceeded quota: q1, requested: services.nodeports=2, used: services.nodeports=1, limited: services.nodeports=2"},
		{name: "kind not limited", q: quota(rl("pods", "0"), rl("pods", "0")), obj: nodePort, wantUsed: rl("pods", "0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			used := tc.q.Status.Used
			if used == nil {
				used = corev1.ResourceList{}
			}
			next, why := quotaCheck(tc.q, tc.obj, usageOf(t, tc.obj), used)
			if why != tc.wantWhy {
				t.Fatalf("why %q, want %q", why, tc.wantWhy)
			}
			if why == "" {
				for n, want := range tc.wantUsed {
					if got := next[n]; got.Cmp(want) != 0 {
						t.Errorf("used %s = %s, want %s", n, got.String(), want.String())
					}
				}
			}
		})
	}
}

func TestQuotaUsageAndScopes(t *testing.T) {
	p := podWith(ctr("a", rl("cpu", "100m"), rl("cpu", "200m")), ctr("b", rl("cpu", "300m", "memory", "1Gi"), nil))
	p.Spec.InitContainers = []corev1.Container{ctr("init", rl("cpu", "1"), nil)}
	u := usageOf(t, p)
	for name, want := range map[string]string{"pods": "1", "count/pods": "1", "requests.cpu": "1", "cpu": "1",
		"requests.memory": "1Gi", "memory": "1Gi", "limits.cpu": "200m"} {
		if got := u[corev1.ResourceName(name)]; got.String() != want {
			t.Errorf("pod usage %s = %s, want %s (all: %v)", name, got.String(), want, u)
		}
	}
	done := p.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	if u := usageOf(t, done); len(u) != 0 {
		t.Errorf("a finished pod uses %v, want nothing", u)
	}
	gold := "gold"
	claim := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &gold,
		Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "5Gi")}}}
	cu := usageOf(t, claim)
	for name, want := range map[string]string{"persistentvolumeclaims": "1", "requests.storage": "5Gi",
		"gold.storageclass.storage.k8s.io/requests.storage": "5Gi", "count/persistentvolumeclaims": "1"} {
		if got := cu[corev1.ResourceName(name)]; got.String() != want {
			t.Errorf("claim usage %s = %s, want %s", name, got.String(), want)
		}
	}

	besteffort := podWith(ctr("a", nil, nil))
	deadline := int64(60)
	terminating := p.DeepCopy()
	terminating.Spec.ActiveDeadlineSeconds = &deadline
	scoped := func(scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		q := quota(rl("pods", "1"), nil)
		q.Spec.Scopes = scopes
		return q
	}
	for _, tc := range []struct {
		name string
		q    *corev1.ResourceQuota
		obj  runtime.Object
		want bool
	}{
		{"no scope, any kind", scoped(), claim, true},
		{"scoped quotas select pods only", scoped(corev1.ResourceQuotaScopeNotTerminating), claim, false},
		{"BestEffort", scoped(corev1.ResourceQuotaScopeBestEffort), besteffort, true},
		{"BestEffort, burstable pod", scoped(corev1.ResourceQuotaScopeBestEffort), p, false},
		{"NotBestEffort", scoped(corev1.ResourceQuotaScopeNotBestEffort), p, true},
		{"Terminating", scoped(corev1.ResourceQuotaScopeTerminating), terminating, true},
		{"NotTerminating", scoped(corev1.ResourceQuotaScopeNotTerminating), terminating, false},
		{"both must hold", scoped(corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeBestEffort), terminating, false},
	} {
		if got := api.QuotaMatches(tc.q, tc.obj); got != tc.want {
			t.Errorf("%s: QuotaMatches = %v, want %v", tc.name, got, tc.want)
		}
	}
	pc := quota(rl("pods", "1"), nil)
	pc.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
		{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}
	high := besteffort.DeepCopy()
	high.Spec.PriorityClassName = "high"
	if !api.QuotaMatches(pc, high) || api.QuotaMatches(pc, besteffort) {
		t.Errorf("PriorityClass In [high]: want the high pod only")
	}
}

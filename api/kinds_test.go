package api

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestResolveResource(t *testing.T) {
	tests := []struct {
		name     string
		want     string // group-qualified resource
		wantErr  bool
		contains string // in the error
	}{
		{name: "pods", want: "pods"},
		{name: "pod", want: "pods"},
		{name: "po", want: "pods"},
		{name: "Pod", want: "pods"},
		{name: "PODS", want: "pods"},
		{name: "svc", want: "services"},
		{name: "deploy", want: "deployments.apps"},
		{name: "deployments.apps", want: "deployments.apps"},
		{name: "deployment.apps", want: "deployments.apps"},
		{name: "deployments.v1.apps", want: "deployments.apps"},
		{name: "Deployment", want: "deployments.apps"},
		{name: "rs", want: "replicasets.apps"},
		{name: "rc", want: "replicationcontrollers"},
		{name: "ns", want: "namespaces"},
		{name: "cm", want: "configmaps"},
		{name: "no", want: "nodes"},
		{name: "sts", want: "statefulsets.apps"},
		{name: "ds", want: "daemonsets.apps"},
		{name: "ing", want: "ingresses.networking.k8s.io"},
		{name: "ingress", want: "ingresses.networking.k8s.io"},
		{name: "hpa", want: "horizontalpodautoscalers.autoscaling"},
		{name: "ep", want: "endpoints"},
		{name: "ev", want: "events"},
		{name: "sa", want: "serviceaccounts"},
		{name: "pv", want: "persistentvolumes"},
		{name: "pvc", want: "persistentvolumeclaims"},
		{name: "cj", want: "cronjobs.batch"},
		{name: "jobs", want: "jobs.batch"},
		{name: "quota", want: "resourcequotas"},
		{name: "limits", want: "limitranges"},
		{name: "sc", want: "storageclasses.storage.k8s.io"},
		{name: "clusterrolebindings", want: "clusterrolebindings.rbac.authorization.k8s.io"},
		{name: "roles.rbac.authorization.k8s.io", want: "roles.rbac.authorization.k8s.io"},
		{name: "controllerrevisions", want: "controllerrevisions.apps"},
		{name: "deploymnets", wantErr: true, contains: `did you mean "deployments"?`},
		{name: "pods.apps", wantErr: true},
		{name: "widgets", wantErr: true, contains: `doesn't have a resource type "widgets"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveResource(tt.name)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				if !errors.Is(err, ErrUnknownResource) {
					t.Errorf("error %v is not ErrUnknownResource", err)
				}
				if !strings.Contains(err.Error(), tt.contains) {
					t.Errorf("error %q does not contain %q", err, tt.contains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GroupResource() != tt.want {
				t.Errorf("got %s, want %s", got.GroupResource(), tt.want)
			}
		})
	}
}

func TestKindsTable(t *testing.T) {
	kinds := Kinds()
	if len(kinds) != 29 {
		t.Errorf("got %d kinds, want the 28 of the Cluster API issue and the node Lease (issue 5)", len(kinds))
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.GroupResource()] {
			t.Errorf("duplicate resource %s", k.GroupResource())
		}
		seen[k.GroupResource()] = true
		obj := k.New()
		back, err := KindOf(obj)
		if err != nil || back.GVK != k.GVK {
			t.Errorf("KindOf(New(%s)) = %v, %v", k.GVK, back.GVK, err)
		}
		if obj.GetObjectKind().GroupVersionKind() != k.GVK {
			t.Errorf("New(%s) has GVK %v", k.GVK, obj.GetObjectKind().GroupVersionKind())
		}
		// Every kind must be resolvable by each of its names.
		for _, n := range append([]string{k.Resource, k.Singular, k.GVK.Kind, k.GroupResource()}, k.ShortNames...) {
			got, err := ResolveResource(n)
			if err != nil || got.GVK != k.GVK {
				t.Errorf("ResolveResource(%q) = %v, %v; want %s", n, got.GVK, err, k.GVK)
			}
		}
	}
}

func TestStorageKey(t *testing.T) {
	tests := []struct {
		gvk       schema.GroupVersionKind
		ns, name  string
		want      string
		wantPrefx string
	}{
		{corev1.SchemeGroupVersion.WithKind("Pod"), "default", "web", "/registry/pods/default/web", "/registry/pods/default/"},
		{appsv1.SchemeGroupVersion.WithKind("Deployment"), "prod", "api", "/registry/apps/deployments/prod/api", "/registry/apps/deployments/prod/"},
		{corev1.SchemeGroupVersion.WithKind("Node"), "ignored", "n1", "/registry/nodes/n1", "/registry/nodes/"},
		{corev1.SchemeGroupVersion.WithKind("Namespace"), "", "kube-system", "/registry/namespaces/kube-system", "/registry/namespaces/"},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, "", "admin",
			"/registry/rbac.authorization.k8s.io/clusterroles/admin", "/registry/rbac.authorization.k8s.io/clusterroles/"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			k, err := KindFor(tt.gvk)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.StorageKey(tt.ns, tt.name); got != tt.want {
				t.Errorf("StorageKey = %q, want %q", got, tt.want)
			}
			if got := k.StoragePrefix(tt.ns); got != tt.wantPrefx {
				t.Errorf("StoragePrefix = %q, want %q", got, tt.wantPrefx)
			}
		})
	}
	// The all-namespaces prefix covers every namespace's keys.
	k, _ := KindFor(corev1.SchemeGroupVersion.WithKind("Pod"))
	if !strings.HasPrefix(k.StorageKey("a", "b"), k.StoragePrefix("")) {
		t.Errorf("all-namespace prefix %q does not cover %q", k.StoragePrefix(""), k.StorageKey("a", "b"))
	}
}

func TestKindFor(t *testing.T) {
	_, err := KindFor(schema.GroupVersionKind{Group: "apps", Version: "v1beta1", Kind: "Deployment"})
	if !errors.Is(err, ErrUnknownKind) || !strings.Contains(err.Error(), "known: apps/v1 Deployment") {
		t.Errorf("got %v, want ErrUnknownKind naming apps/v1 Deployment", err)
	}
	if _, err := KindOf(&corev1.PodList{}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("KindOf(PodList) = %v, want ErrUnknownKind", err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"nodeport", "nodePort", 1}, {"kitten", "sitting", 3}, {"", "ab", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

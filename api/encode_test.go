package api

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestEncode(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}} // no apiVersion/kind set
	y, err := Encode(pod, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(y), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n") {
		t.Errorf("yaml:\n%s", y)
	}
	if pod.Kind != "" {
		t.Errorf("Encode modified its argument")
	}
	j, err := Encode(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}}, "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"apiVersion": "apps/v1"`) || !strings.Contains(string(j), `"kind": "Deployment"`) {
		t.Errorf("json:\n%s", j)
	}
	if _, err := Encode(pod, "toml"); err == nil {
		t.Errorf("toml accepted")
	}
	if _, err := Encode(&corev1.PodList{}, "yaml"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("PodList: %v, want ErrUnknownKind", err)
	}
}

func TestEncodeList(t *testing.T) {
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}},
	}
	for _, format := range []string{"yaml", "json"} {
		b, err := EncodeList(objs, format)
		if err != nil {
			t.Fatal(err)
		}
		// What kubectl get -o yaml prints, apply -f reads back.
		back, err := Decode("list."+format, b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b)
		}
		if len(back) != 2 || back[0].Kind.GVK.Kind != "ConfigMap" || back[1].Kind.GVK.Kind != "Deployment" {
			t.Errorf("%s: got %d objects back", format, len(back))
		}
	}
	y, _ := EncodeList(nil, "yaml")
	if string(y) != "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n" {
		t.Errorf("empty list:\n%s", y)
	}
}

func TestObjectRef(t *testing.T) {
	for name, want := range map[string]string{"po": "pod/web", "deploy": "deployment.apps/web", "hpa": "horizontalpodautoscaler.autoscaling/web"} {
		k, err := ResolveResource(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.ObjectRef("web"); got != want {
			t.Errorf("%s: ObjectRef = %s, want %s", name, got, want)
		}
	}
}

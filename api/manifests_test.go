package api

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// seedDir holds the manifests users bring (../shared/manifests beside the
// repository).
var seedDir = filepath.Join("..", "..", "shared", "manifests")

// seedKinds is what each seed manifest holds, in order.
var seedKinds = map[string][]string{
	"backend-app.yaml":                {"ConfigMap", "Deployment", "Service", "Ingress"},
	"deployment-definition.yml":       {"Deployment"},
	"deployment-mon-deployment.yaml":  {"Deployment"},
	"pod-definition.yml":              {"Pod"},
	"pod-hello-world.yaml":            {"Pod"},
	"pod-mon-pod.yaml":                {"Pod"},
	"pod-resources.yaml":              {"Pod"},
	"rc-definition.yml":               {"ReplicationController"},
	"redis-definition.yaml":           {"Pod"},
	"replicaset-definition.yml":       {"ReplicaSet"},
	"resourcequota.yaml":              {"ResourceQuota"},
	"service-clusterip-back-end.yaml": {"Service"},
	"service-mon-service.yaml":        {"Service"},
}

func seedFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(seedDir); err != nil {
		t.Skipf("seed manifests not found at %s (they live in the shared folder beside the repository): %v", seedDir, err)
	}
	files, err := filepath.Glob(filepath.Join(seedDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSeedManifests loads every seed manifest (decode, default, validate)
// and compares the defaulted objects, encoded as YAML, with
// testdata/defaulted/NAME.yaml: what `kubectl apply` then `kubectl get -o
// yaml` shows, minus the fields the API server's allocators and admission
// add (uid, resourceVersion, clusterIP, serviceAccountName, ...).
func TestSeedManifests(t *testing.T) {
	for _, f := range seedFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(name, data)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind.GVK.Kind)
			}
			if want, ok := seedKinds[name]; !ok {
				t.Errorf("new seed manifest %s (kinds %v): add it to seedKinds", name, kinds)
			} else if !reflect.DeepEqual(kinds, want) {
				t.Errorf("kinds = %v, want %v", kinds, want)
			}
			var out bytes.Buffer
			for i, o := range objs {
				if i > 0 {
					out.WriteString("---\n")
				}
				b, err := Encode(o.Obj, "yaml")
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
			}
			golden := filepath.Join("testdata", "defaulted", strings.TrimSuffix(name, filepath.Ext(name))+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("defaulted objects differ from %s\n--- got\n%s--- want\n%s", golden, out.String(), want)
			}
		})
	}
}

// TestSeedRoundTrip: what Encode writes, Decode reads back unchanged, in
// both formats, and defaulting it again changes nothing.
func TestSeedRoundTrip(t *testing.T) {
	for _, f := range seedFiles(t) {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Load(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, o := range objs {
			for _, format := range []string{"yaml", "json"} {
				t.Run(name+"/"+o.Kind.GVK.Kind+"/"+format, func(t *testing.T) {
					b, err := Encode(o.Obj, format)
					if err != nil {
						t.Fatal(err)
					}
					back, err := Load("encoded."+format, b)
					if err != nil {
						t.Fatalf("decoding our own %s: %v\n%s", format, err, b)
					}
					if len(back) != 1 {
						t.Fatalf("got %d objects back, want 1", len(back))
					}
					if !reflect.DeepEqual(back[0].Obj, objs[i].Obj) {
						t.Errorf("round trip changed the object:\n got %#v\nwant %#v", back[0].Obj, objs[i].Obj)
					}
				})
			}
		}
	}
}

// TestSeedSemantics checks, on the seed manifests, the facts a user
// relies on and a reader can check against Kubernetes by hand.
func TestSeedSemantics(t *testing.T) {
	seedFiles(t)
	load := func(name string) []Object {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(seedDir, name))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Load(name, data)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	t.Run("backend-app ConfigMap name mismatch is not a validation error", func(t *testing.T) {
		objs := load("backend-app.yaml")
		d := objs[1].Obj.(*appsv1.Deployment)
		if got := d.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != "configuration-backend" {
			t.Errorf("envFrom configMapRef = %q", got)
		}
		if got := d.Spec.Template.Spec.Containers[0].ImagePullPolicy; got != corev1.PullAlways {
			t.Errorf(":latest image pull policy = %q, want Always", got)
		}
		svc := objs[2].Obj.(*corev1.Service)
		if got := svc.Spec.Ports[0].TargetPort.IntValue(); got != 5173 {
			t.Errorf("targetPort = %d, want 5173 as written", got)
		}
	})
	t.Run("rc selector and labels default from the template", func(t *testing.T) {
		rc := load("rc-definition.yml")[0].Obj.(*corev1.ReplicationController)
		want := map[string]string{"app": "myapp", "type": "front-end"}
		if !reflect.DeepEqual(rc.Spec.Selector, want) {
			t.Errorf("selector = %v, want %v", rc.Spec.Selector, want)
		}
		if *rc.Spec.Replicas != 3 {
			t.Errorf("replicas = %d, want 3", *rc.Spec.Replicas)
		}
	})
	t.Run("pod requests stay as written when limits are set too", func(t *testing.T) {
		p := load("pod-resources.yaml")[0].Obj.(*corev1.Pod)
		r := p.Spec.Containers[0].Resources
		if got := r.Requests.Cpu().String(); got != "100m" {
			t.Errorf("cpu request = %s, want 100m", got)
		}
	})
	t.Run("service targetPort defaults to port", func(t *testing.T) {
		svc := load("service-clusterip-back-end.yaml")[0].Obj.(*corev1.Service)
		if svc.Spec.Ports[0].TargetPort.IntValue() != 80 || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("port = %+v", svc.Spec.Ports[0])
		}
	})
}

//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does; describe and get show it.
package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// goldenObjects decodes testdata/golden/objects.yaml, grouped by kind.
func goldenObjects(t *testing.T) map[string][]api.Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", "objects.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := api.Decode("objects.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]api.Object{}
	for _, o := range objs {
		byKind[o.Kind.GVK.Kind] = append(byKind[o.Kind.GVK.Kind], o)
	}
	return byKind
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./cmd/skiff -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (if the change is intended: go test ./cmd/skiff -run Golden -update)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// Tables look like kubectl's: columns, order, widths, ages, STATUS reasons.
func TestGoldenTables(t *testing.T) {
	byKind := goldenObjects(t)
	for _, kind := range []string{"Pod", "Deployment", "ReplicaSet", "Service", "Endpoints", "Node",
		"Ingress", "CronJob", "PersistentVolumeClaim", "PersistentVolume", "HorizontalPodAutoscaler"} {
		for _, opts := range []struct {
			suffix string
			p      printOptions
		}{{"", printOptions{}}, {"-wide", printOptions{wide: true}}, {"-labels-all", printOptions{showLabels: true, withNamespace: true}}} {
			objs := byKind[kind]
			if len(objs) == 0 {
				t.Fatalf("no %s in objects.yaml", kind)
			}
			if !objs[0].Kind.Namespaced && opts.p.withNamespace {
				continue
			}
			var list []runtime.Object
			for _, o := range objs {
				list = append(list, o.Obj)
			}
			var buf bytes.Buffer
			if err := buildTable(objs[0].Kind, list, opts.p, goldenNow).write(&buf, true); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "get-"+kind+opts.suffix+".txt", buf.Bytes())
		}
	}
}

// Describe uses kubectl's layout for pods, deployments, replica sets,
// services and nodes, with what it looks up (replica sets, endpoints, the
// node's pods).
func TestGoldenDescribe(t *testing.T) {
	byKind := goldenObjects(t)
	env := describeEnv{
		now: goldenNow,
		replicaSets: func(ns string) []appsv1.ReplicaSet {
			var out []appsv1.ReplicaSet
			for _, o := range byKind["ReplicaSet"] {
				out = append(out, *o.Obj.(*appsv1.ReplicaSet))
			}
			return out
		},
		endpoints: func(ns, name string) *corev1.Endpoints {
			for _, o := range byKind["Endpoints"] {
				if ep := o.Obj.(*corev1.Endpoints); ep.Name == name && ep.Namespace == ns {
					return ep
				}
			}
			return nil
		},
		nodePods: func(node string) []corev1.Pod {
			var out []corev1.Pod
			for _, o := range byKind["Pod"] {
				if p := o.Obj.(*corev1.Pod); p.Spec.NodeName == node {
					out = append(out, *p)
				}
			}
			return out
		},
	}
	for _, kind := range []string{"Pod", "Deployment", "ReplicaSet", "Service", "Node"} {
		var buf bytes.Buffer
		for i, o := range byKind[kind] {
			if i > 0 {
				buf.WriteString("\n")
			}
			w := newTabWriter(&buf)
			if !describeKind(w, o.Obj, env) {
				t.Fatalf("%s has no kubectl-style describer", kind)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		checkGolden(t, "describe-"+kind+".txt", buf.Bytes())
	}
}

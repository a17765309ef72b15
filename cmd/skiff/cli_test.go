package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/apiserver/apiservertest"
)

// runCLI runs one skiff command line against the config at cfg, on a fresh
// command tree (cobra keeps flag values between runs of one tree).
func runCLI(t *testing.T, cfg string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newApplyCmd(), newCreateCmd(), newReplaceCmd(), newDeleteCmd(), newGetCmd(),
		newConfigCmd(), newClusterInfoCmd(), newAPIResourcesCmd(), newDescribeCmd())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--kubeconfig", cfg))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func objName(o api.Object) string { return o.Obj.(interface{ GetName() string }).GetName() }

func manifestsDir(t *testing.T) string {
	dir := filepath.Join("..", "..", "..", "shared", "manifests")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared manifests at %s: %v", dir, err)
	}
	return dir
}

// Every shared manifest applies, shows as YAML that decodes back to the
// same objects, and deletes.
func TestSharedManifestsRoundTrip(t *testing.T) {
	dir := manifestsDir(t)
	srv := apiservertest.Start(t, apiservertest.Store(t))
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := api.Decode(file, data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			out, stderr, err := runCLI(t, srv.ConfigPath, "", "apply", "-f", file)
			if err != nil {
				t.Fatalf("apply: %v\n%s%s", err, out, stderr)
			}
			if n := strings.Count(out, " created"); n != len(objs) {
				t.Errorf("apply printed %d created lines for %d objects:\n%s", n, len(objs), out)
			}
			out, _, err = runCLI(t, srv.ConfigPath, "", "apply", "-f", file)
			if err != nil || strings.Count(out, " unchanged") != len(objs) {
				t.Errorf("second apply: want all unchanged, got %v\n%s", err, out)
			}
			for _, o := range objs {
				args := []string{"get", o.Kind.Resource, objName(o), "-o", "yaml"}
				if o.Kind.Namespaced {
					ns := o.Obj.(interface{ GetNamespace() string }).GetNamespace()
					if ns == "" {
						ns = "default"
					}
					args = append(args, "-n", ns)
				}
				y, stderr, err := runCLI(t, srv.ConfigPath, "", args...)
				if err != nil {
					t.Fatalf("get %v: %v %s", args, err, stderr)
				}
				back, err := api.Decode("get-output.yaml", []byte(y))
				if err != nil {
					t.Fatalf("get -o yaml output does not decode strictly: %v\n%s", err, y)
				}
				if len(back) != 1 || objName(back[0]) != objName(o) || back[0].Kind.GVK != o.Kind.GVK {
					t.Fatalf("get -o yaml gave %d objects (%s %q), want %s %q", len(back), back[0].Kind.GVK, back[0].Name(), o.Kind.GVK, o.Name())
				}
				for _, want := range []string{"uid:", "resourceVersion:", "creationTimestamp:", "last-applied-configuration"} {
					if !strings.Contains(y, want) {
						t.Errorf("%s %s yaml lacks %s", o.Kind.GVK.Kind, o.Name(), want)
					}
				}
			}
			out, stderr, err = runCLI(t, srv.ConfigPath, "", "delete", "-f", file)
			if err != nil || strings.Count(out, " deleted") != len(objs) {
				t.Fatalf("delete: %v\n%s%s", err, out, stderr)
			}
			for _, o := range objs {
				_, stderr, err := runCLI(t, srv.ConfigPath, "", "get", o.Kind.Resource, objName(o))
				if err == nil || !strings.Contains(stderr, "NotFound") {
					t.Errorf("%s %s still there after delete: %v %s", o.Kind.Resource, o.Name(), err, stderr)
				}
			}
		})
	}
}

func TestCLITablesAndErrors(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	manifest := `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx
`
	if out, stderr, err := runCLI(t, cfg, manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v %s %s", err, out, stderr)
	}
	out, _, err := runCLI(t, cfg, "", "get", "svc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE\nweb    NodePort   10.96.0.2    <none>        80:30000/TCP   ") {
		t.Errorf("get svc:\n%s", out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
	if err != nil || out != "30000" {
		t.Errorf("get -o jsonpath: %v %q", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "svc,po", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name} {end}`)
	if err != nil || out != "Service/web Pod/web " {
		t.Errorf("get -o jsonpath over a list: %v %q", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "po", "--show-labels")
	if err != nil || !strings.HasPrefix(out, "NAME   READY   STATUS    RESTARTS   AGE   LABELS\nweb    0/1     Pending   0          ") || !strings.Contains(out, "app=web") {
		t.Errorf("get po --show-labels: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "pods", "-A", "-o", "wide")
	if err != nil || !strings.HasPrefix(out, "NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n") {
		t.Errorf("get pods -A -o wide: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "pods", "-l", "app=db", "-o", "name")
	if err != nil || out != "" {
		t.Errorf("selector matching nothing: %v %q", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "pod/web", "svc/web", "-o", "name")
	if err != nil || out != "pod/web\nservice/web\n" {
		t.Errorf("get kind/name: %v %q", err, out)
	}
	// Errors exit non-zero with kubectl's words.
	_, stderr, err := runCLI(t, cfg, "", "get", "pod", "missing")
	if err == nil || !strings.Contains(stderr, `Error from server (NotFound): pods "missing" not found`) {
		t.Errorf("get missing: %v %q", err, stderr)
	}
	if _, _, err := runCLI(t, cfg, "", "get", "gizmos"); err == nil || !strings.Contains(err.Error(), "gizmos") {
		t.Errorf("unknown kind: %v", err)
	}
	// A file with one bad document applies nothing.
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers:\n  - name: c\n    image: x\n    imagePullPolicyy: Always\n"
	_, _, err = runCLI(t, cfg, bad, "apply", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "imagePullPolicyy") || !strings.Contains(err.Error(), ":14:") {
		t.Errorf("bad manifest: %v", err)
	}
	if _, stderr, err := runCLI(t, cfg, "", "get", "cm", "fine"); err == nil {
		t.Errorf("a document of a bad file was applied: %s", stderr)
	}
	// Server-side validation errors name the field.
	invalid := "apiVersion: v1\nkind: Service\nmetadata:\n  name: far\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 40000\n"
	_, stderr, err = runCLI(t, cfg, invalid, "create", "-f", "-")
	if err == nil || !strings.Contains(stderr, "spec.ports[0].nodePort") {
		t.Errorf("invalid nodePort: %v %q", err, stderr)
	}
	// create twice: AlreadyExists.
	if _, stderr, err := runCLI(t, cfg, "", "create", "namespace", "team"); err != nil {
		t.Fatalf("create namespace: %v %s", err, stderr)
	}
	if _, _, err := runCLI(t, cfg, "", "create", "namespace", "team"); err == nil || !strings.Contains(err.Error(), "AlreadyExists") {
		t.Errorf("second create namespace: %v", err)
	}
	out, _, err = runCLI(t, cfg, "", "delete", "pod", "web")
	if err != nil || out != "pod \"web\" deleted\n" {
		t.Errorf("delete pod web: %v %q", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "config", "get-contexts")
	if err != nil || !strings.Contains(out, "*         skiff") {
		t.Errorf("config get-contexts: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "config", "view")
	if err != nil || !strings.Contains(out, "DATA+OMITTED") || strings.Contains(out, "BEGIN") {
		t.Errorf("config view does not redact: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "api-resources")
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "deployments deploy apps/v1 true Deployment") {
		t.Errorf("api-resources: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "cluster-info")
	if err != nil || !strings.Contains(out, "running at https://127.0.0.1:") {
		t.Errorf("cluster-info: %v\n%s", err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGetWatchPrintsChanges(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	if _, _, err := runCLI(t, cfg, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n", "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newGetCmd())
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"get", "configmaps", "-w", "--kubeconfig", cfg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("get -w: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("get -w did not stop when its context ended")
		}
	}()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(out.String(), want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("get -w output never showed %q:\n%s", want, out.String())
	}
	waitOutput("one    0      ")
	if _, _, err := runCLI(t, cfg, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\ndata: {a: b}\n", "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	waitOutput("two    1      ")
	if strings.Count(out.String(), "NAME") != 1 {
		t.Errorf("header printed more than once:\n%s", out.String())
	}
}

func TestDryRunAndDeleteBySelector(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  labels: {app: %s}\n"
	for _, mode := range []string{"server", "client"} {
		out, stderr, err := runCLI(t, cfg, fmt.Sprintf(doc, "dry", "x"), "apply", "-f", "-", "--dry-run="+mode)
		if err != nil || !strings.Contains(out, "configmap/dry") || !strings.Contains(out, "("+mode+" dry run)") {
			t.Errorf("apply --dry-run=%s: %v %q %q", mode, err, out, stderr)
		}
		if _, _, err := runCLI(t, cfg, "", "get", "cm", "dry"); err == nil {
			t.Errorf("--dry-run=%s stored the object", mode)
		}
	}
	// Server dry run still validates.
	if _, stderr, err := runCLI(t, cfg, fmt.Sprintf(doc, "Bad_Name", "x"), "create", "-f", "-", "--dry-run=server"); err == nil || !strings.Contains(stderr, "metadata.name") {
		t.Errorf("server dry run of an invalid name: %v %q", err, stderr)
	}
	for i, app := range []string{"a", "a", "b"} {
		if _, _, err := runCLI(t, cfg, fmt.Sprintf(doc, fmt.Sprintf("c%d", i), app), "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runCLI(t, cfg, "", "delete", "cm", "-l", "app=a")
	if err != nil || out != "configmap \"c0\" deleted\nconfigmap \"c1\" deleted\n" {
		t.Errorf("delete -l: %v %q", err, out)
	}
	out, _, err = runCLI(t, cfg, "", "get", "cm", "-o", "name")
	if err != nil || out != "configmap/c2\n" {
		t.Errorf("after delete -l: %v %q", err, out)
	}
	if _, _, err := runCLI(t, cfg, "", "delete", "cm", "--all"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := runCLI(t, cfg, "", "get", "cm", "-o", "name"); out != "" {
		t.Errorf("after delete --all: %q", out)
	}
}

func TestExplain(t *testing.T) {
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newExplainCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"explain", "deploy.spec.replicas"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "FIELD: replicas <integer>") {
		t.Errorf("explain deploy.spec.replicas: %v\n%s", err, out.String())
	}
	root.SetArgs([]string{"explain", "pod.spec.containerz"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `did you mean "containers"`) {
		t.Errorf("explain of a misspelt field: %v", err)
	}
}

func TestDescribeShowsObjectAndEvents(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	data, err := os.ReadFile(filepath.Join(manifestsDir(t), "pod-definition.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, cfg, string(data), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v %s", err, stderr)
	}
	name, _, err := runCLI(t, cfg, "", "get", "pods", "-o", "name")
	if err != nil || !strings.HasPrefix(name, "pod/") {
		t.Fatalf("get pods: %v %q", err, name)
	}
	name = strings.TrimPrefix(strings.TrimSpace(name), "pod/")
	ev := fmt.Sprintf(`apiVersion: v1
kind: Event
metadata:
  name: %s.1
involvedObject:
  kind: Pod
  name: %s
  namespace: default
reason: Scheduled
message: Successfully assigned default/%s to node1
type: Normal
source:
  component: default-scheduler
`, name, name, name)
	if _, stderr, err := runCLI(t, cfg, ev, "create", "-f", "-"); err != nil {
		t.Fatalf("create event: %v %s", err, stderr)
	}
	out, _, err := runCLI(t, cfg, "", "get", "events")
	if err != nil || !strings.HasPrefix(out, "LAST SEEN   TYPE     REASON      OBJECT          MESSAGE\n") ||
		!strings.Contains(out, "Normal   Scheduled   pod/"+name+"   Successfully assigned") {
		t.Errorf("get events: %v\n%s", err, out)
	}
	out, stderr, err := runCLI(t, cfg, "", "describe", "pod", name)
	if err != nil {
		t.Fatalf("describe: %v %s", err, stderr)
	}
	for _, want := range []string{"Name:", name, "Namespace:", "default", "Labels:", "app=my-app", "Containers:",
		"Image:", "nginx", "Status:", "Pending", "Events:", "Scheduled", "default-scheduler", "Successfully assigned"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + out)
	}
	if strings.Contains(out, "last-applied-configuration") {
		t.Errorf("describe shows the last-applied annotation:\n%s", out)
	}
	if _, stderr, err := runCLI(t, cfg, "", "describe", "pod", "nope"); err == nil || !strings.Contains(stderr, "NotFound") {
		t.Errorf("describe missing pod: %v %q", err, stderr)
	}
}

func TestScaleLabelAnnotateRun(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	data, err := os.ReadFile(filepath.Join(manifestsDir(t), "deployment-definition.yml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := api.Decode("deployment-definition.yml", data)
	if err != nil || len(objs) != 1 || objs[0].Kind.GVK.Kind != "Deployment" {
		t.Fatalf("want one deployment in deployment-definition.yml (%v)", err)
	}
	name := objName(objs[0])
	if _, stderr, err := runCLI(t, cfg, string(data), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v %s", err, stderr)
	}
	root := func(args ...string) (string, string, error) {
		t.Helper()
		r := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
		r.AddCommand(newScaleCmd(), metaMapCmd("label", "labels", "labeled"), metaMapCmd("annotate", "annotations", "annotated"), newRunCmd(), newGetCmd())
		var out, errOut bytes.Buffer
		r.SetOut(&out)
		r.SetErr(&errOut)
		r.SetArgs(append([]string{args[0], "--kubeconfig", cfg}, args[1:]...))
		err := r.Execute()
		return out.String(), errOut.String(), err
	}
	if out, stderr, err := root("scale", "deploy/"+name, "--replicas=5"); err != nil || out != "deployment.apps/"+name+" scaled\n" {
		t.Fatalf("scale: %v %q %q", err, out, stderr)
	}
	out, _, err := root("get", "deploy", name, "-o", "json")
	if err != nil || !strings.Contains(out, `"replicas": 5`) {
		t.Errorf("replicas after scale: %v\n%s", err, out)
	}
	if out, _, err := root("label", "deploy", name, "tier=web"); err != nil || !strings.HasSuffix(out, " labeled\n") {
		t.Fatalf("label: %v %q", err, out)
	}
	if _, stderr, err := root("label", "deploy", name, "tier=db"); err == nil || !strings.Contains(stderr+err.Error(), "--overwrite is false") {
		t.Errorf("label without --overwrite: %v %q", err, stderr)
	}
	if _, _, err := root("label", "deploy", name, "tier=db", "--overwrite"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = root("get", "deploy", "-l", "tier=db", "-o", "name")
	if out != "deployment.apps/"+name+"\n" {
		t.Errorf("selector after relabel: %q", out)
	}
	if _, _, err := root("label", "deploy", name, "tier-"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = root("get", "deploy", "-l", "tier", "-o", "name"); out != "" {
		t.Errorf("label not removed: %q", out)
	}
	if _, _, err := root("annotate", "deploy/"+name, "note=hello"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = root("get", "deploy", name, "-o", "yaml"); !strings.Contains(out, "note: hello") {
		t.Errorf("annotation missing:\n%s", out)
	}
	if out, stderr, err := root("run", "probe", "--image=busybox", "--", "sleep", "10"); err != nil || out != "pod/probe created\n" {
		t.Fatalf("run: %v %q %q", err, out, stderr)
	}
	if out, _, _ = root("get", "pod", "probe", "-o", "yaml"); !strings.Contains(out, "run: probe") || !strings.Contains(out, "- sleep") {
		t.Errorf("run pod:\n%s", out)
	}
}

func TestCreateGeneratorsExposeAndEdit(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	run := func(args ...string) (string, string, error) {
		t.Helper()
		r := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
		r.AddCommand(newCreateCmd(), newExposeCmd(), newEditCmd(), newGetCmd())
		var out, errOut bytes.Buffer
		r.SetOut(&out)
		r.SetErr(&errOut)
		r.SetArgs(append(args, "--kubeconfig", cfg))
		err := r.Execute()
		return out.String(), errOut.String(), err
	}
	for _, c := range [][]string{
		{"create", "configmap", "cfg", "--from-literal=mode=prod"},
		{"create", "secret", "generic", "pw", "--from-literal=password=s3cret"},
		{"create", "deployment", "web", "--image=nginx", "--port=8080"},
	} {
		if out, stderr, err := run(c...); err != nil || !strings.HasSuffix(out, " created\n") {
			t.Fatalf("%v: %v %q %q", c, err, out, stderr)
		}
	}
	if out, _, _ := run("get", "secret", "pw", "-o", "yaml"); !strings.Contains(out, "password: czNjcmV0") {
		t.Errorf("secret data not base64 of the literal:\n%s", out)
	}
	out, stderr, err := run("expose", "deploy/web", "--port=80", "--target-port=8080", "--type=NodePort")
	if err != nil || out != "service/web created\n" {
		t.Fatalf("expose: %v %q %q", err, out, stderr)
	}
	out, _, _ = run("get", "svc", "web", "-o", "wide")
	if !strings.Contains(out, "NodePort") || !strings.Contains(out, "app=web") || !strings.Contains(out, "80:3") {
		t.Errorf("exposed service:\n%s", out)
	}
	t.Setenv("SKIFF_EDITOR", `sed -i 's/replicas: 1/replicas: 4/'`)
	if out, stderr, err := run("edit", "deploy", "web"); err != nil || out != "deployment.apps/web edited\n" {
		t.Fatalf("edit: %v %q %q", err, out, stderr)
	}
	if out, _, _ = run("get", "deploy", "web", "-o", "yaml"); !strings.Contains(out, "replicas: 4") {
		t.Errorf("edit did not change replicas:\n%s", out)
	}
	// A bad edit is refused with the decoder's message and changes nothing.
	t.Setenv("SKIFF_EDITOR", `sed -i 's/replicas: 4/replicaz: 5/'`)
	_, _, err = run("edit", "deploy", "web")
	if err == nil || !strings.Contains(err.Error(), "replicaz") || !strings.Contains(err.Error(), "kept in") {
		t.Errorf("bad edit: %v", err)
	}
	if err != nil {
		if i := strings.LastIndex(err.Error(), "kept in "); i >= 0 {
			os.Remove(strings.TrimSpace(err.Error()[i+len("kept in "):]))
		}
	}
	if out, _, _ = run("get", "deploy", "web", "-o", "yaml"); !strings.Contains(out, "replicas: 4") {
		t.Errorf("a refused edit changed the object:\n%s", out)
	}
}

func TestJSONPathSubset(t *testing.T) {
	doc := map[string]any{"items": []any{
		map[string]any{"metadata": map[string]any{"name": "a", "labels": map[string]any{"app": "x"}}, "spec": map[string]any{"ports": []any{map[string]any{"port": float64(80)}}}},
		map[string]any{"metadata": map[string]any{"name": "b"}},
	}}
	for tmpl, want := range map[string]string{
		`{.items[*].metadata.name}`:                                "a b",
		`{.items[0].spec.ports[0].port}`:                           "80",
		`{range .items[*]}{.metadata.name}{"\n"}{end}`:             "a\nb\n",
		`names: {.items[-1].metadata.name}`:                        "names: b",
		`{.items[0].metadata.labels}`:                              `{"app":"x"}`,
		`{range .items[*]}[{.metadata.labels.app}]{end}`:           "[x][]",
		`{$.items[1].metadata.name}`:                               "b",
		`{.items[0].metadata['name']}`:                             "a",
		`{range .items[*]}{range .spec.ports[*]}{.port}{end}{end}`: "80",
	} {
		jp, err := parseJSONPath(tmpl)
		if err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		if got := jp.execute(doc); got != want {
			t.Errorf("%s = %q, want %q", tmpl, got, want)
		}
	}
	for _, bad := range []string{"{.a", "{end}", "{range .items[*]}x", "{name}"} {
		if _, err := parseJSONPath(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// The deployment controller is faked: ReplicaSets with revisions and the
// Deployment's status are written by the test.
func TestRollout(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	c := srv.Client()
	ctx := context.Background()
	run := func(args ...string) (string, string, error) {
		t.Helper()
		r := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
		r.AddCommand(newRolloutCmd(), newCreateCmd())
		var out, errOut bytes.Buffer
		r.SetOut(&out)
		r.SetErr(&errOut)
		r.SetArgs(append(args, "--kubeconfig", cfg))
		err := r.Execute()
		return out.String(), errOut.String(), err
	}
	if _, stderr, err := run("create", "deployment", "web", "--image=nginx:1", "--replicas=2"); err != nil {
		t.Fatalf("create: %v %s", err, stderr)
	}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, "default", "web", d); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run("rollout", "status", "deploy/web", "--watch=false"); err == nil || !strings.Contains(out, "Waiting for deployment spec update") {
		t.Errorf("status of an unobserved deployment: %v %q", err, out)
	}
	for rev, img := range []string{"nginx:0", "nginx:1"} {
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("web-%d", rev+1),
			Annotations:     map[string]string{revisionAnnotation: fmt.Sprint(rev + 1)},
			Labels:          map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID}}},
			Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: *d.Spec.Template.DeepCopy()}}
		rs.Spec.Template.Spec.Containers[0].Image = img
		if err := c.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}
	if err := c.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run("rollout", "status", "deployment/web", "--timeout=10s"); err != nil || out != "deployment \"web\" successfully rolled out\n" {
		t.Errorf("status: %v %q", err, out)
	}
	out, _, err := run("rollout", "history", "deploy/web")
	if err != nil || !strings.Contains(out, "REVISION   CHANGE-CAUSE\n1          <none>\n2          <none>") {
		t.Errorf("history: %v\n%s", err, out)
	}
	if out, stderr, err := run("rollout", "undo", "deploy/web"); err != nil || out != "deployment.apps/web rolled back\n" {
		t.Fatalf("undo: %v %q %q", err, out, stderr)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "nginx:0" {
		t.Errorf("image after undo = %s, want nginx:0", img)
	}
	if _, _, err := run("rollout", "undo", "deploy/web", "--to-revision=7"); err == nil {
		t.Error("undo to a missing revision succeeded")
	}
	if out, _, err := run("rollout", "restart", "deploy/web"); err != nil || !strings.HasSuffix(out, "restarted\n") {
		t.Errorf("restart: %v %q", err, out)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("restart did not annotate the template: %v", err)
	}

	if _, _, err := run("rollout", "resume", "deploy/web"); err == nil || !strings.Contains(err.Error(), "deployment.apps/web is not paused") {
		t.Errorf("resume of a running deployment: %v, want 'is not paused'", err)
	}
	if out, _, err := run("rollout", "pause", "deployment/web"); err != nil || out != "deployment.apps/web paused\n" {
		t.Errorf("pause: %v %q", err, out)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || !d.Spec.Paused {
		t.Errorf("after pause: spec.paused %v (%v), want true", d.Spec.Paused, err)
	}
	if _, _, err := run("rollout", "pause", "deploy/web"); err == nil || !strings.Contains(err.Error(), "already paused") {
		t.Errorf("second pause: %v, want 'already paused'", err)
	}
	if out, _, err := run("rollout", "resume", "deploy", "web"); err != nil || out != "deployment.apps/web resumed\n" {
		t.Errorf("resume: %v %q", err, out)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || d.Spec.Paused {
		t.Errorf("after resume: spec.paused %v (%v), want false", d.Spec.Paused, err)
	}
}

// set image changes the named containers' images in a pod template (or a
// pod), and nothing when a named container does not exist.
func TestSetImage(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		t.Helper()
		r := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
		r.AddCommand(newSetCmd())
		var out bytes.Buffer
		r.SetOut(&out)
		r.SetErr(&out)
		r.SetArgs(append(args, "--kubeconfig", srv.ConfigPath))
		err := r.Execute()
		return out.String(), err
	}
	labels := map[string]string{"app": "web"}
	spec := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1"}},
		Containers:     []corev1.Container{{Name: "httpd", Image: "httpd:1"}, {Name: "side", Image: "busybox:1"}},
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "solo", Namespace: "default"}, Spec: *spec.DeepCopy()}
	for _, o := range []runtime.Object{d, pod} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	images := func(s corev1.PodSpec) string {
		var parts []string
		for _, ct := range append(s.InitContainers, s.Containers...) {
			parts = append(parts, ct.Name+"="+ct.Image)
		}
		return strings.Join(parts, " ")
	}

	if out, err := run("set", "image", "deployment/web", "httpd=httpd:2"); err != nil || out != "deployment.apps/web image updated\n" {
		t.Fatalf("set image: %v %q", err, out)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || images(d.Spec.Template.Spec) != "init=busybox:1 httpd=httpd:2 side=busybox:1" {
		t.Errorf("after set image httpd: %s (%v)", images(d.Spec.Template.Spec), err)
	}
	if _, err := run("set", "image", "deploy", "web", "*=busybox:2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || images(d.Spec.Template.Spec) != "init=busybox:2 httpd=busybox:2 side=busybox:2" {
		t.Errorf("after set image *: %s (%v)", images(d.Spec.Template.Spec), err)
	}
	if out, err := run("set", "image", "pod/solo", "side=busybox:3", "init=busybox:3"); err != nil || out != "pod/solo image updated\n" {
		t.Fatalf("set image on a pod: %v %q", err, out)
	}
	if err := c.Get(ctx, "default", "solo", pod); err != nil || images(pod.Spec) != "init=busybox:3 httpd=httpd:1 side=busybox:3" {
		t.Errorf("pod after set image: %s (%v)", images(pod.Spec), err)
	}

	rv := d.ResourceVersion
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deployment/web", "httpd=x:1", "nope=x:1"}, `unable to find container named "nope"; nothing changed`},
		{[]string{"deployment/web"}, "give at least one CONTAINER=IMAGE"},
		{[]string{"web", "httpd=x:1"}, "give TYPE/NAME or TYPE NAME"},
		{[]string{"svc/web", "httpd=x:1"}, "not a service"},
		{[]string{"deployment/web", "httpd="}, `"httpd=": want CONTAINER=IMAGE`},
		{[]string{"deployment/ghost", "httpd=x:1"}, `"ghost" not found`},
	} {
		if _, err := run(append([]string{"set", "image"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set image %v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	if err := c.Get(ctx, "default", "web", d); err != nil || d.ResourceVersion != rv {
		t.Errorf("the refused commands changed the deployment (resourceVersion %s -> %s, %v)", rv, d.ResourceVersion, err)
	}
}

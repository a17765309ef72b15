package api

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestDecodeDocuments(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		wantKinds []string
		wantLines []int // Object.Line of each
	}{
		{
			name:      "empty file",
			src:       "",
			wantKinds: nil,
		},
		{
			name:      "comments and empty documents are skipped",
			src:       "# nothing\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n",
			wantKinds: []string{"Namespace"},
			wantLines: []int{6},
		},
		{
			name:      "two documents",
			src:       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
			wantKinds: []string{"ConfigMap", "Secret"},
			wantLines: []int{1, 5},
		},
		{
			name:      "JSON stream",
			src:       "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}}\n\n\t{\"apiVersion\": \"v1\",\n\t\"kind\": \"Namespace\", \"metadata\": {\"name\": \"b\"}}\n",
			wantKinds: []string{"ConfigMap", "Namespace"},
			wantLines: []int{1, 3},
		},
		{
			name: "v1 List",
			src: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: b}
`,
			wantKinds: []string{"ConfigMap", "Deployment"},
			wantLines: []int{4, 7},
		},
		{
			name: "typed list, items without apiVersion and kind",
			src: `apiVersion: apps/v1
kind: DeploymentList
metadata: {resourceVersion: "12"}
items:
- metadata: {name: a}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: b}
`,
			wantKinds: []string{"Deployment", "Deployment"},
			wantLines: []int{5, 6},
		},
		{
			name: "anchors, aliases and merge keys",
			src: `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: &l
    app: web
  annotations: *l
spec:
  containers:
  - &c
    name: a
    image: busybox
  - <<: *c
    name: b
`,
			wantKinds: []string{"Pod"},
			wantLines: []int{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode("test.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			var lines []int
			for _, o := range objs {
				kinds = append(kinds, o.Kind.GVK.Kind)
				lines = append(lines, o.Line)
				if o.Obj.GetObjectKind().GroupVersionKind() != o.Kind.GVK {
					t.Errorf("object GVK %v, want %v", o.Obj.GetObjectKind().GroupVersionKind(), o.Kind.GVK)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tt.wantKinds, ",") {
				t.Errorf("kinds = %v, want %v", kinds, tt.wantKinds)
			}
			if tt.wantLines != nil && !equalInts(lines, tt.wantLines) {
				t.Errorf("lines = %v, want %v", lines, tt.wantLines)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDecodeValues checks the YAML-to-JSON conversions kubectl makes.
func TestDecodeValues(t *testing.T) {
	src := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  hostNetwork: yes
  containers:
  - name: a
    image: busybox
    resources:
      limits:
        cpu: 2
        memory: 1.5Gi
    stdin: on
  volumes:
  - name: v
    configMap:
      name: c
      defaultMode: 0644
  terminationGracePeriodSeconds: 1e1
`
	objs, err := Decode("values.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := objs[0].Obj.(*corev1.Pod)
	if !p.Spec.HostNetwork || !p.Spec.Containers[0].Stdin {
		t.Errorf("YAML 1.1 booleans yes/on not read as true: hostNetwork=%v stdin=%v", p.Spec.HostNetwork, p.Spec.Containers[0].Stdin)
	}
	if got := *p.Spec.Volumes[0].ConfigMap.DefaultMode; got != 0o644 {
		t.Errorf("defaultMode 0644 = %d, want %d (octal)", got, 0o644)
	}
	if got := p.Spec.Containers[0].Resources.Limits.Cpu().String(); got != "2" {
		t.Errorf("cpu = %s, want 2", got)
	}
	if got := *p.Spec.TerminationGracePeriodSeconds; got != 10 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 10", got)
	}
	// Field lines are kept for later errors.
	o := objs[0]
	for path, want := range map[string]int{
		"spec.containers[0].resources.limits[memory]": 13,
		"spec.volumes[0].configMap.defaultMode":       19,
		"spec.containers[0].image":                    9,
		"spec.containers[0].ports[0].containerPort":   8, // absent: nearest ancestor, the item
		"metadata.namespace":                          3,
		"nowhere":                                     1,
	} {
		if got := o.LineOf(path); got != want {
			t.Errorf("LineOf(%s) = %d, want %d", path, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		src      string
		sentinel error
		want     []string // each must appear, in order, one per error
	}{
		{
			name: "case hint", file: "a.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n    NodePort: 30000\n",
			want: []string{`a.yaml:8: spec.ports[0].NodePort: unknown field "NodePort", did you mean "nodePort"?`},
		},
		{
			name: "edit distance hint", file: "a.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    imagge: x\n",
			want: []string{`a.yaml:8: spec.containers[0].imagge: unknown field "imagge", did you mean "image"?`},
		},
		{
			name: "field too high", file: "a.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  image: nginx\n  containers: [{name: a, image: b}]\n",
			want: []string{`a.yaml:6: spec.image: unknown field "image"; did you mean spec.containers[*].image?`},
		},
		{
			name: "no hint for a stranger", file: "a.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  colour: blue\n",
			want: []string{`a.yaml:5: metadata.colour: unknown field "colour"`},
		},
		{
			name: "object where a list is expected", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    name: a\n",
			want: []string{`a.yaml:7: spec.containers: expected list, got object; start each item with "- "`},
		},
		{
			name: "scalar where an object is expected", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: Pod\nmetadata: p\n",
			want: []string{`a.yaml:3: metadata: expected object, got string "p"`},
		},
		{
			name: "int32 overflow", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 3000000000\n",
			want: []string{`a.yaml:5: spec.replicas: integer 3000000000 out of range for int32`},
		},
		{
			name: "float for an integer", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2.5\n",
			want: []string{`a.yaml:5: spec.replicas: expected integer, got number 2.5`},
		},
		{
			name: "int-or-string", file: "a.yaml", sentinel: ErrWrongType,
			src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - {port: 80, targetPort: 80.5}\n  - {port: 81, targetPort: 4294967296}\n  - {port: 82, targetPort: [80]}\n",
			want: []string{
				`a.yaml:6: spec.ports[0].targetPort: expected integer or string, got number 80.5`,
				`a.yaml:7: spec.ports[1].targetPort: integer 4294967296 out of range for int32`,
				`a.yaml:8: spec.ports[2].targetPort: expected integer or string, got list`,
			},
		},
		{
			name: "map where a string is expected", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  nested: {a: b}\n  list: [a]\n",
			want: []string{`a.yaml:5: data[nested]: expected string, got object`, `a.yaml:6: data[list]: expected string, got list`},
		},
		{
			name: "quoted boolean", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: \"true\"\n",
			want: []string{`a.yaml:5: spec.hostNetwork: expected boolean, got string "true"; remove the quotes`},
		},
		{
			name: "bad base64 in a secret", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  password: not base64!\n",
			want: []string{`a.yaml:5: data[password]: invalid base64 data`},
		},
		{
			name: "bad time", file: "a.yaml", sentinel: ErrWrongType,
			src:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  creationTimestamp: yesterday\n",
			want: []string{`a.yaml:5: metadata.creationTimestamp: invalid time "yesterday"`},
		},
		{
			name: "missing apiVersion and kind", file: "a.yaml", sentinel: ErrMissingKind,
			src:  "metadata:\n  name: x\n",
			want: []string{`a.yaml:1: apiVersion and kind not set`},
		},
		{
			name: "not an object", file: "a.yaml", sentinel: ErrWrongType,
			src:  "- a\n- b\n",
			want: []string{`a.yaml:1: expected an object with apiVersion and kind, got list`},
		},
		{
			name: "bad item in a List", file: "l.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  dat: {}\n",
			want: []string{`l.yaml:7: items[0].dat: unknown field "dat", did you mean "data"?`},
		},
		{
			name: "JSON syntax", file: "j.json", sentinel: ErrSyntax,
			src:  "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"\n  \"metadata\": {}\n}\n",
			want: []string{`j.json:4: invalid JSON: invalid character '"' after object key:value pair`},
		},
		{
			name: "alias cycle", file: "c.yaml", sentinel: ErrSyntax,
			src:  "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: x}\ndata: &d\n  x: *d\n",
			want: []string{`c.yaml:5: data: alias *d refers to a value that contains it`},
		},
		{
			name: "merge key cycle", file: "c.yaml", sentinel: ErrUnknownField,
			src:  "apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: x\n  <<: *m\n  nme: y\n",
			want: []string{`c.yaml:6: metadata.nme: unknown field "nme", did you mean "name"?`},
		},
		{
			name: "alias bomb", file: "b.yaml", sentinel: ErrSyntax,
			src: "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: x}\ndata:\n" +
				"  a: &a [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n" +
				"  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
				"  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
				"  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
				"  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n" +
				"  f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
			want: []string{`b.yaml:5: data: document expands to more than 100000 values through aliases`},
		},
		{
			name: "every error of every document", file: "m.yaml", sentinel: ErrUnknownField,
			src: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatas: {}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\nstringdata: {}\n",
			want: []string{
				`m.yaml:4: datas: unknown field "datas", did you mean "data"? (document 1 at line 1)`,
				`m.yaml:9: stringdata: unknown field "stringdata", did you mean "stringData"? (document 2 at line 5)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode(tt.file, []byte(tt.src))
			if err == nil {
				t.Fatalf("decoded %d objects, want an error", len(objs))
			}
			if objs != nil {
				t.Errorf("got %d objects with the error, want none", len(objs))
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error is not %v: %v", tt.sentinel, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], w)
				}
			}
		})
	}
}

// TestDecodeStrictMatchesTypes: every field of a fully populated object
// that Encode writes is accepted back (the walk knows every field).
func TestDecodeStrictMatchesTypes(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Name = "d"
	d.Spec.Template.Spec.Containers = []corev1.Container{{
		Name: "c", Image: "i",
		LivenessProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
		Env:             []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}},
	}}
	d.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "k", Operator: corev1.NodeSelectorOpIn, Values: []string{"v"}}},
		}}},
	}}
	Default(d)
	for _, format := range []string{"yaml", "json"} {
		b, err := Encode(d, format)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode("x."+format, b); err != nil {
			t.Errorf("%s: %v\n%s", format, err, b)
		}
	}
}

package api

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		path      string
		recursive bool
		wantType  string
		wantReq   bool
		contains  []string // in Format's output
		wantErr   string
	}{
		{path: "pods", wantType: "Pod", contains: []string{"KIND:       Pod", "VERSION:    v1", "  spec\t<PodSpec>", "Pod is a collection of containers"}},
		{path: "po.spec.containers", wantType: "[]Container", wantReq: true,
			contains: []string{"FIELD: containers <[]Container> -required-", "  image\t<string>\n", "  name\t<string> -required-", "  resources\t<ResourceRequirements>"}},
		{path: "deploy.spec.strategy", recursive: true, wantType: "DeploymentStrategy",
			contains: []string{"VERSION:    apps/v1", "  rollingUpdate\t<RollingUpdateDeployment>\n    maxSurge\t<IntOrString>\n    maxUnavailable\t<IntOrString>\n  type\t<string>\n"}},
		{path: "svc.spec.ports.targetPort", wantType: "IntOrString", contains: []string{"Number or name of the port"}},
		{path: "pod.spec.containers.resources.limits", wantType: "map[string]Quantity"},
		{path: "pod.metadata.creationTimestamp", wantType: "string"},
		{path: "cm.data", wantType: "map[string]string"},
		{path: "pod.spec.contaners", wantErr: `field "contaners" does not exist in pod.spec; did you mean "containers"?`},
		{path: "pod.spec.nodeName.x", wantErr: "spec.nodeName is a string, which has no fields"},
		{path: "widgets", wantErr: "doesn't have a resource type"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d, err := Explain(tt.path, tt.recursive)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Type != tt.wantType || d.Required != tt.wantReq {
				t.Errorf("type %s required %v, want %s %v", d.Type, d.Required, tt.wantType, tt.wantReq)
			}
			out := d.Format(tt.recursive)
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
		})
	}
	// Every kind explains recursively without looping.
	for _, k := range Kinds() {
		d, err := ExplainField(k, nil, true)
		if err != nil || len(d.Fields) == 0 {
			t.Errorf("%s: %v, %d fields", k.GVK.Kind, err, len(d.Fields))
		}
	}
}

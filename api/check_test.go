package api

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadNamespace(t *testing.T) {
	src := `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  namespace: prod
---
apiVersion: v1
kind: Namespace
metadata:
  name: team
`
	tests := []struct {
		namespace string
		want      []string // namespaces of the three objects
		wantErr   string
	}{
		{namespace: "", want: []string{"default", "prod", ""}},
		{namespace: "prod", want: []string{"prod", "prod", ""}},
		{namespace: "dev", wantErr: `ns.yaml:10: metadata.namespace: the namespace from the provided object "prod" does not match the namespace "dev". You must pass '--namespace=prod' to perform this operation. (document 2 at line 5)`},
	}
	for _, tt := range tests {
		t.Run("ns="+tt.namespace, func(t *testing.T) {
			objs, err := DefaultValidator().Load("ns.yaml", []byte(src), tt.namespace)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalid) || objs != nil {
					t.Errorf("want ErrInvalid and no objects, got %v and %d objects", err, len(objs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				m, _ := metaOf(o.Obj)
				got = append(got, m.GetNamespace())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("namespaces = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsManifestFile(t *testing.T) {
	for name, want := range map[string]bool{"a.yaml": true, "b.YML": true, "c.json": true, "d.txt": false, "README": false, "e.yaml.bak": false} {
		if got := IsManifestFile(name); got != want {
			t.Errorf("IsManifestFile(%q) = %v, want %v", name, got, want)
		}
	}
}

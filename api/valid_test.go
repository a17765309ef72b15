package api

import (
	"os"
	"path/filepath"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// TestValidManifests: manifests in the style of Kubernetes' documentation,
// covering every served kind, all load (decode, default, validate)
// without error. A false rejection here is a bug as bad as a miss.
func TestValidManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(filepath.Base(f), data)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			for _, o := range objs {
				kinds[o.Kind.GVK.Kind] = true
				// What we print, we read back unchanged.
				for _, format := range []string{"yaml", "json"} {
					b, err := Encode(o.Obj, format)
					if err != nil {
						t.Fatal(err)
					}
					back, err := Load("encoded."+format, b)
					if err != nil {
						t.Fatalf("reading back %s %s: %v\n%s", o.Kind.GVK.Kind, format, err, b)
					}
					if !apiequality.Semantic.DeepEqual(back[0].Obj, o.Obj) {
						t.Errorf("%s %s round trip changed the object", o.Kind.GVK.Kind, format)
					}
				}
			}
		})
	}
	for _, k := range Kinds() {
		if !kinds[k.GVK.Kind] && k.GVK.Kind != "ControllerRevision" {
			t.Errorf("no valid manifest of kind %s in testdata/valid", k.GVK.Kind)
		}
	}
}

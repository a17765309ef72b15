package api

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: Decode (and Load) never panic, and either return objects or
// a *FileErrors, never both. Seeds are every manifest in testdata.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"broken", "valid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[1]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Load("fuzz.yaml", data)
		if err != nil && objs != nil {
			t.Fatalf("objects and error together: %v", err)
		}
		for _, o := range objs {
			if _, err := Encode(o.Obj, "yaml"); err != nil {
				t.Fatalf("encoding a decoded object: %v", err)
			}
		}
	})
}

package api

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/broken")

// TestBrokenManifests loads every manifest of testdata/broken and compares
// the error text with NAME.golden. Each must fail, and return no objects.
// Run with -update to rewrite the goldens, then review the diff.
func TestBrokenManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "broken", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(filepath.Base(f), data)
			if err == nil {
				t.Fatalf("Load succeeded with %d objects, want an error", len(objs))
			}
			if len(objs) != 0 {
				t.Errorf("Load returned %d objects with its error, want none", len(objs))
			}
			var fe *FileErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error is %T, want *FileErrors: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./api -run TestBrokenManifests -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
	if n < 10 {
		t.Errorf("found %d broken manifests, want at least 10", n)
	}
}

package api

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentUse: the API server decodes, defaults and validates from
// every request goroutine at once; the package's shared state (the kinds
// registry, the field cache) must be safe for that. Run with -race.
func TestConcurrentUse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "valid", "*"))
	var inputs [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, data)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(inputs))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, data := range inputs {
				objs, err := Load("concurrent.yaml", data)
				if err != nil {
					errs <- err
					continue
				}
				for _, o := range objs {
					old := o.Obj.DeepCopyObject()
					_ = ValidateUpdate(o.Obj, old)
					_, _ = Encode(o.Obj, "json")
					_, _ = ResolveResource(o.Kind.Resource)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

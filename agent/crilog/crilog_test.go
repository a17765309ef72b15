package crilog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriterFormat(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC) }
	long := strings.Repeat("x", MaxLine+10)
	if err := w.Copy("stdout", strings.NewReader("one\ntwo\n"+long+"\nlast")); err != nil {
		t.Fatal(err)
	}
	if err := w.Copy("stderr", strings.NewReader("oops\n")); err != nil {
		t.Fatal(err)
	}
	ts := "2026-01-02T03:04:05.000006Z"
	want := []string{
		ts + " stdout F one",
		ts + " stdout F two",
		ts + " stdout P " + long[:MaxLine],
		ts + " stdout F " + long[MaxLine:],
		ts + " stdout F last",
		ts + " stderr F oops",
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %.80q, want %.80q", i, got[i], want[i])
		}
	}
}

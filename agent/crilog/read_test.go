package crilog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	content := strings.Join([]string{
		"2026-01-01T00:00:01Z stdout F one",
		"2026-01-01T00:00:02Z stderr F err-one",
		"2026-01-01T00:00:03Z stdout P tw",
		"2026-01-01T00:00:03Z stdout F o",
		"2026-01-01T00:00:04Z stdout F ",
		"raw line from cio.LogFile",
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(opts ReadOptions) (string, string) {
		var out, errOut bytes.Buffer
		if err := Read(context.Background(), path, opts, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	if out, errOut := read(ReadOptions{Tail: -1}); out != "one\ntwo\n\nraw line from cio.LogFile\n" || errOut != "err-one\n" {
		t.Errorf("all: stdout %q stderr %q", out, errOut)
	}
	if out, _ := read(ReadOptions{Tail: 2}); out != "\nraw line from cio.LogFile\n" {
		t.Errorf("tail 2: %q", out)
	}
	since := time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)
	if out, errOut := read(ReadOptions{Tail: -1, Since: since, Timestamps: true}); !strings.HasPrefix(out, "2026-01-01T00:00:03Z two\n") || errOut != "" {
		t.Errorf("since+timestamps: %q %q", out, errOut)
	}

	// Follow picks up lines appended later, including one written in two parts.
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- Read(ctx, path, ReadOptions{Tail: 0, Follow: true}, &out, &out) }()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("2026-01-01T00:00:05Z stdout F la")
	time.Sleep(250 * time.Millisecond)
	_, _ = f.WriteString("ter\n")
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "later\n" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != "later\n" {
		t.Errorf("follow: %q, want %q", out.String(), "later\n")
	}
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

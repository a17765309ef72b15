package rig

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRigEtcd builds a 3-host rig of Debian etcd members, finds the leader,
// kills it, waits for a new one, and checks that Close leaves nothing behind.
func TestRigEtcd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/usr/bin/etcd"); err != nil {
		t.Skip("needs /usr/bin/etcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := New(Config{Nodes: 3, DB: DBEtcd, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	id := r.RunID()
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		out, _ := exec.Command("ip", "-o", "link", "show").Output()
		ns, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), id) || strings.Contains(string(ns), id) {
			t.Errorf("leftovers of %s after Close:\n%s\n%s", id, out, ns)
		}
	}()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := r.WaitLeader(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		nl := r.Leader(ctx)
		if nl != nil && nl != l {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader after killing %s", l.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitHealthy(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

package nemesis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/jepsen/rig"
)

func members(n int) []*rig.Member {
	var ms []*rig.Member
	for i := 0; i < n; i++ {
		ms = append(ms, &rig.Member{Index: i, Name: fmt.Sprintf("n%d", i+1), IP: fmt.Sprintf("10.0.0.%d", 11+i)})
	}
	return ms
}

// reach: can a receive from b (and b from a)?
func linked(b blocked, x, y *rig.Member) bool { return !b[x][y] && !b[y][x] }

// sees counts the members m exchanges packets with both ways, itself included.
func sees(b blocked, ms []*rig.Member, m *rig.Member) int {
	c := 0
	for _, o := range ms {
		if o == m || linked(b, m, o) {
			c++
		}
	}
	return c
}

func TestPlanShapes(t *testing.T) {
	for _, n := range []int{3, 5} {
		ms := members(n)
		majority := n/2 + 1
		t.Run(fmt.Sprintf("leader/%d", n), func(t *testing.T) {
			b, _, err := plan("leader", ms, ms[1])
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range ms {
				if o != ms[1] && (linked(b, ms[1], o) || sees(b, ms, o) != n-1) {
					t.Errorf("leader not isolated from %s, or %s cut from the majority", o.Name, o.Name)
				}
			}
		})
		t.Run(fmt.Sprintf("oneway/%d", n), func(t *testing.T) {
			b, _, _ := plan("oneway", ms, ms[0])
			for _, o := range ms[1:] {
				if !b[ms[0]][o] || b[o][ms[0]] {
					t.Errorf("%s: leader must drop from it, it must not drop from the leader", o.Name)
				}
			}
		})
		t.Run(fmt.Sprintf("halves/%d", n), func(t *testing.T) {
			b, _, _ := plan("halves", ms, nil)
			small, big := 0, 0
			for _, m := range ms {
				switch sees(b, ms, m) {
				case n / 2:
					small++
				case majority:
					big++
				}
			}
			if small != n/2 || big != majority {
				t.Errorf("want %d members seeing %d and %d seeing %d; got %d and %d", n/2, n/2, majority, majority, small, big)
			}
		})
		t.Run(fmt.Sprintf("ring/%d", n), func(t *testing.T) {
			b, _, _ := plan("ring", ms, nil)
			cut := 0
			for _, m := range ms {
				if sees(b, ms, m) < majority {
					t.Errorf("%s sees %d members, less than a majority", m.Name, sees(b, ms, m))
				}
				if sees(b, ms, m) < n {
					cut++
				}
			}
			if cut < 2 {
				t.Errorf("ring cut nothing")
			}
		})
		t.Run(fmt.Sprintf("bridge/%d", n), func(t *testing.T) {
			b, _, _ := plan("bridge", ms, nil)
			full := 0
			for _, m := range ms {
				if sees(b, ms, m) == n {
					full++
				}
				if sees(b, ms, m) < majority {
					t.Errorf("%s sees %d, less than a majority", m.Name, sees(b, ms, m))
				}
			}
			if full != 1 {
				t.Errorf("%d members see everyone, want exactly the bridge", full)
			}
		})
	}
	if _, _, err := plan("leader", members(3), nil); !errors.Is(err, ErrNoLeader) {
		t.Errorf("leader shape without a leader: %v", err)
	}
	if _, _, err := plan("triangle", members(3), nil); !errors.Is(err, ErrUnknownFault) {
		t.Errorf("unknown shape: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, name := range Names {
		f, err := New(name)
		if err != nil || f.Name() != name {
			t.Errorf("New(%q) = %v, %v", name, f, err)
		}
	}
	if _, err := New("meteor"); !errors.Is(err, ErrUnknownFault) {
		t.Errorf("New(meteor): %v", err)
	}
}

// A follower that caught up from the log must fail the fault, and an install
// logged before this fault started (an earlier cycle) must not count.
func TestSnapshotCatchupVerify(t *testing.T) {
	dir := t.TempDir()
	r, err := rig.New(rig.Config{RunID: "sjtest", Nodes: 3, DB: rig.DBSkiff, SkiffBinary: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	m := &rig.Member{Name: "n2", LogPath: filepath.Join(dir, "n2.log")}
	earlier := "raft: Installed remote snapshot\n"
	if err := os.WriteFile(m.LogPath, []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &snapshotCatchup{isolated: m, logOffset: int64(len(earlier)), from: 100, to: 900, compacted: 700, verifyWithin: 300 * time.Millisecond}
	out, err := s.Verify(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "caught up from the log") || out != "" {
		t.Fatalf("no install since the fault started: got outcome %q, err %v; want a degraded-fault error", out, err)
	}
	f, err := os.OpenFile(m.LogPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "[INFO]  raft: Installed remote snapshot")
	f.Close()
	out, err = s.Verify(context.Background(), r)
	if err != nil || !strings.Contains(out, "n2 installed a snapshot") {
		t.Fatalf("install logged: got outcome %q, err %v", out, err)
	}
}

func TestCompactionScan(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		db         rig.DB
		lines      string
		partial    string
		want, then uint64
	}{
		{rig.DBSkiff,
			"time=x level=INFO msg=\"[INFO]  raft: compacting logs: from=1 to=235\" member=n1\ntime=x msg=\"[INFO]  raft: compacting logs: from=236 to=942\"\n",
			"time=x msg=\"[INFO]  raft: compacting logs: from=943 to=1500\"", 942, 1500},
		{rig.DBEtcd,
			`{"level":"info","caller":"etcdserver/server.go:2479","msg":"compacted Raft logs","compact-index":7985}` + "\n",
			`{"level":"info","msg":"compacted Raft logs","compact-index":9025}`, 7985, 9025},
	} {
		path := filepath.Join(dir, string(tc.db)+".log")
		if err := os.WriteFile(path, []byte("old line before the fault\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sc := &compactionScan{path: path, pattern: compactedPattern[tc.db], offset: int64(len("old line before the fault\n"))}
		if got := sc.scan(); got != 0 {
			t.Errorf("%s: nothing compacted yet, got %d", tc.db, got)
		}
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(tc.lines + tc.partial)
		if got := sc.scan(); got != tc.want {
			t.Errorf("%s: got %d, want %d (a partial last line must wait)", tc.db, got, tc.want)
		}
		f.WriteString("\n")
		f.Close()
		if got := sc.scan(); got != tc.then {
			t.Errorf("%s: after the line ends got %d, want %d", tc.db, got, tc.then)
		}
	}
}

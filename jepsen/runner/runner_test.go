package runner

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/jepsen/checker"
	"github.com/skiffhq/skiff/jepsen/nemesis"
)

func TestFailover(t *testing.T) {
	s := int64(time.Second)
	h := []checker.Op{
		{F: checker.FPut, Type: checker.OK, Call: 0, Return: s / 10},
		{F: checker.FGet, Type: checker.OK, Call: 2 * s, Return: 2*s + 1}, // reads do not count
		{F: checker.FPut, Type: checker.Info, Call: 2 * s, Return: 3 * s}, // nor unknown writes
		{F: checker.FPut, Type: checker.OK, Call: 2 * s, Return: 4 * s},
		{F: checker.FAdd, Type: checker.OK, Call: 5 * s, Return: 5*s + s/10},
	}
	faults := []nemesis.Event{{Fault: "kill-leader", Start: 2 * time.Second, End: 3 * time.Second}}
	fo, gap := failover(h, faults, 6*time.Second)
	if fo != 2*time.Second {
		t.Errorf("failover = %v, want 2s", fo)
	}
	if gap != 3900*time.Millisecond {
		t.Errorf("max write gap = %v, want 3.9s", gap)
	}
	if fo, _ := failover(h, nil, 6*time.Second); fo != -1 {
		t.Errorf("failover without faults = %v, want -1", fo)
	}
}

func TestReportAndResults(t *testing.T) {
	dir := t.TempDir()
	pass := &Result{DB: "skiff", Nodes: 3, Nemesis: "kill-leader", Ops: 10, OKOps: 9, Failover: 1200 * time.Millisecond,
		Checks: []Check{{Name: "register"}}, Dir: filepath.Join(dir, "a"),
		Faults: []nemesis.Event{{Fault: "kill-leader", Converged: 300 * time.Millisecond}}}
	fail := &Result{DB: "etcd", Nodes: 5, Nemesis: "partition-leader", Ops: 20, Failover: -1,
		Checks: []Check{{Name: "register", Err: "not linearizable: key reg/k1"}}, Dir: filepath.Join(dir, "b")}
	for _, r := range []*Result{pass, fail} {
		if err := os.MkdirAll(r.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeResult(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !pass.Pass() || fail.Pass() {
		t.Fatalf("Pass: got %v/%v, want true/false", pass.Pass(), fail.Pass())
	}
	if (&Result{}).Pass() {
		t.Error("a result without checks passed")
	}
	results, err := LoadResults(dir)
	if err != nil || len(results) != 2 {
		t.Fatalf("LoadResults: %d results, %v", len(results), err)
	}
	var buf bytes.Buffer
	Report(&buf, results)
	out := buf.String()
	for _, want := range []string{"| skiff/3 | kill-leader | pass | 10 (9) | 1.2s |", "| etcd/5 | partition-leader | **FAIL** |", "register: not linearizable", "skiff/3: 1 passed, 0 failed", "300ms (n=1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(fail.Dir, "summary.txt"))
	if !strings.HasPrefix(string(sum), "FAIL etcd/5 nemesis=partition-leader") || strings.Count(string(sum), "\n") != 1 {
		t.Errorf("summary.txt = %q", sum)
	}
}

func TestPlotIsValidSVG(t *testing.T) {
	h := []checker.Op{
		{F: checker.FPut, Type: checker.OK, Call: 0, Return: 1e6},
		{F: checker.FGet, Type: checker.Fail, Call: 1e9, Return: 2e9},
		{F: checker.FCAS, Type: checker.Info, Call: 1e9, Return: 3e9},
	}
	var buf bytes.Buffer
	faults := []nemesis.Event{{Fault: "partition-leader", Detail: "isolated <n1>", Start: time.Second, End: 2 * time.Second}}
	if err := Plot(&buf, h, faults, 4*time.Second, "etcd/3 & friends"); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("invalid SVG: %v", err)
		}
	}
}

func TestParseNemesis(t *testing.T) {
	fs, random, err := parseNemesis("random")
	if err != nil || !random || len(fs) != len(nemesis.Names)-1 {
		t.Fatalf("random: %d faults, %v, %v", len(fs), random, err)
	}
	fs, random, err = parseNemesis("partition-leader,kill-leader")
	if err != nil || random || len(fs) != 2 || fs[1].Name() != "kill-leader" {
		t.Fatalf("list: %v, %v", fs, err)
	}
	if _, _, err := parseNemesis("partition-everything"); err == nil {
		t.Fatal("unknown fault accepted")
	}
}

func TestPhases(t *testing.T) {
	ms := int64(time.Millisecond)
	var h []checker.Op
	// 10 fast ops before the fault (0-1s), 2 slow ones during (1-2s), 5
	// after (2-3s).
	for i := int64(0); i < 10; i++ {
		h = append(h, checker.Op{F: checker.FPut, Type: checker.OK, Call: i*100*ms + ms, Return: i*100*ms + 2*ms})
	}
	h = append(h, checker.Op{F: checker.FPut, Type: checker.OK, Call: 1000 * ms, Return: 1500 * ms})
	h = append(h, checker.Op{F: checker.FGet, Type: checker.OK, Call: 1100 * ms, Return: 1900 * ms})
	for i := int64(0); i < 5; i++ {
		h = append(h, checker.Op{F: checker.FGet, Type: checker.OK, Call: 2000*ms + i*100*ms, Return: 2000*ms + i*100*ms + 3*ms})
	}
	p := phases(h, []nemesis.Event{{Fault: "kill-leader", Start: time.Second, End: 2 * time.Second}}, time.Second)
	if p == nil {
		t.Fatal("no phases")
	}
	if p.Before.OpsPerSec != 10 || p.During.OpsPerSec != 2 || p.After.OpsPerSec != 5 {
		t.Errorf("ops/s before/during/after = %v/%v/%v, want 10/2/5", p.Before.OpsPerSec, p.During.OpsPerSec, p.After.OpsPerSec)
	}
	if p.Before.P99 != time.Millisecond || p.During.P99 != 800*time.Millisecond || p.After.P99 != 3*time.Millisecond {
		t.Errorf("p99 before/during/after = %v/%v/%v, want 1ms/800ms/3ms", p.Before.P99, p.During.P99, p.After.P99)
	}
	if phases(h, nil, time.Second) != nil {
		t.Error("phases without faults")
	}
}

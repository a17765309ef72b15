package bench

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    string
		wantErr bool
	}{
		{"", "put-1,put-16,put-64,put-256,range-linearizable-64,range-serializable-64,txn-cas-64,watch-fanout-100,watch-fanout-1000", false},
		{"put", "put-1,put-16,put-64,put-256", false},
		{"put-64,watch-fanout-100", "put-64,watch-fanout-100", false},
		{"range", "range-linearizable-64,range-serializable-64", false},
		{"nope", "", true},
	} {
		ws, err := Select(tc.spec)
		if (err != nil) != tc.wantErr {
			t.Errorf("Select(%q): err %v, want error %v", tc.spec, err, tc.wantErr)
			continue
		}
		var names []string
		for _, w := range ws {
			names = append(names, w.Name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("Select(%q) = %s, want %s", tc.spec, got, tc.want)
		}
	}
}

func TestProcCPU(t *testing.T) {
	// Burn a little CPU so the counters move past zero.
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	d, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 || d > time.Hour {
		t.Errorf("CPU time of this process: %v", d)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Error("CPU time of a process that does not exist: no error")
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(lat, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(lat, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of nothing = %v", p)
	}
}

func TestWriteTable(t *testing.T) {
	rep := &Report{
		Targets:   []string{"skiff", "etcd"},
		Workloads: []string{"put-1", "watch-fanout-100"},
		Results: map[string]map[string]Result{
			"skiff": {"put-1": {Ops: 2000, Elapsed: time.Second, P50: 400 * time.Microsecond, P99: 2 * time.Millisecond, CPU: 1500 * time.Millisecond}},
			"etcd": {
				"put-1":            {Ops: 1000, Elapsed: time.Second, P50: 800 * time.Microsecond, P99: 3 * time.Millisecond, CPU: time.Second},
				"watch-fanout-100": {Ops: 10, Elapsed: time.Second, Err: errors.New("boom")},
			},
		},
	}
	var b bytes.Buffer
	rep.WriteTable(&b)
	out := b.String()
	for _, want := range []string{
		"| workload ", "skiff ops/s", "etcd ops/s", "skiff/etcd",
		" 2000 |", "400µs", "2.00ms", "1.5", "2.00×",
		"10!", "! etcd watch-fanout-100: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "|---") {
		t.Errorf("want header, rule, 2 rows and a note:\n%s", out)
	}
}

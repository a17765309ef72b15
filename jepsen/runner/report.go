package runner

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LoadResults reads result.json of dir itself or of its subdirectories
// (two levels deep), sorted by db, nodes, nemesis order, start.
func LoadResults(dir string) ([]*Result, error) {
	var out []*Result
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() && rel != "." && strings.Count(rel, string(filepath.Separator)) >= 2 {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "result.json" {
			r, err := ReadResult(filepath.Dir(path))
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.DB != b.DB {
			return a.DB > b.DB // skiff before etcd
		}
		if a.Nodes != b.Nodes {
			return a.Nodes < b.Nodes
		}
		if a.Nemesis != b.Nemesis {
			return nemesisOrder(a.Nemesis) < nemesisOrder(b.Nemesis)
		}
		return a.Start.Before(b.Start)
	})
	return out, err
}

func nemesisOrder(n string) string {
	for i, name := range suiteFaults {
		if name == n {
			return fmt.Sprintf("%03d", i)
		}
	}
	return "999" + n
}

// Report writes a Markdown table: scenario × fault × result × ops ×
// failover, one row per run, then pass counts per scenario.
func Report(w io.Writer, results []*Result) {
	fmt.Fprintln(w, "| scenario | fault | result | ops (ok) | failover | max write gap | failed checks |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	type tally struct{ pass, fail int }
	per := map[string]*tally{}
	var order []string
	for _, r := range results {
		verdict := "pass"
		if !r.Pass() {
			verdict = "**FAIL**"
		}
		if r.Unavailable != "" {
			verdict += " (no fault: " + r.Unavailable + " unavailable on this host)"
		}
		var failed []string
		for _, c := range r.Failed() {
			msg := c.Err
			msg = strings.TrimPrefix(msg, "watch guarantee broken: ")
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			failed = append(failed, c.Name+": "+msg)
		}
		if r.Err != "" {
			failed = append(failed, "run: "+r.Err)
		}
		scen := r.Scenario()
		if r.Planted != "" {
			scen += " +" + r.Planted
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d (%d) | %s | %s | %s |\n", scen, r.Nemesis, verdict, r.Ops, r.OKOps,
			fmtDur(r.Failover), fmtDur(r.MaxGap), strings.ReplaceAll(strings.Join(failed, "; "), "|", "/"))
		t := per[scen]
		if t == nil {
			t = &tally{}
			per[scen] = t
			order = append(order, scen)
		}
		if r.Pass() {
			t.pass++
		} else {
			t.fail++
		}
	}
	fmt.Fprintln(w)
	for _, s := range order {
		fmt.Fprintf(w, "- %s: %d passed, %d failed\n", s, per[s].pass, per[s].fail)
	}
	// Throughput and p99 around the faults, one row per run with faults.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | fault | ops/s before | during | after | p99 before | during | after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.Phases == nil {
			continue
		}
		p := r.Phases
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | %s | %s | %s |\n", r.Scenario(), r.Nemesis,
			p.Before.OpsPerSec, p.During.OpsPerSec, p.After.OpsPerSec, fmtLat(p.Before.P99), fmtLat(p.During.P99), fmtLat(p.After.P99))
	}
	// Failover medians per scenario for the leader faults, side by side.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | kill-leader failover (median) | partition-leader failover (median) | pause-leader failover (median) | heal → all members caught up (median over all faults) |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, s := range order {
		cells := []string{}
		for _, f := range []string{"kill-leader", "partition-leader", "pause-leader"} {
			var ds []time.Duration
			for _, r := range results {
				sc := r.Scenario()
				if r.Planted != "" {
					sc += " +" + r.Planted
				}
				if sc == s && r.Nemesis == f && r.Failover >= 0 {
					ds = append(ds, r.Failover)
				}
			}
			if len(ds) == 0 {
				cells = append(cells, "-")
				continue
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			cells = append(cells, fmt.Sprintf("%s (n=%d)", fmtDur(ds[len(ds)/2]), len(ds)))
		}
		var conv []time.Duration
		for _, r := range results {
			sc := r.Scenario()
			if r.Planted != "" {
				sc += " +" + r.Planted
			}
			if sc != s {
				continue
			}
			for _, f := range r.Faults {
				if f.Err == "" && f.Converged > 0 { // 0: not measured (older results)
					conv = append(conv, f.Converged)
				}
			}
		}
		c := "-"
		if len(conv) > 0 {
			sort.Slice(conv, func(i, j int) bool { return conv[i] < conv[j] })
			c = fmt.Sprintf("%s (n=%d)", fmtDur(conv[len(conv)/2]), len(conv))
		}
		cells = append(cells, c)
		fmt.Fprintf(w, "| %s | %s |\n", s, strings.Join(cells, " | "))
	}
}

func fmtLat(d time.Duration) string {
	if d <= 0 {
		return "-" // no acknowledged op in the window
	}
	if d < 100*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

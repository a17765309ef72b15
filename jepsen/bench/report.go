package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Options configure a comparison run.
type Options struct {
	SkiffBinary string // runs "server"
	// SkiffArgs are extra "skiff server" flags (e.g. --log-store wal).
	SkiffArgs  []string
	EtcdBinary string
	Members    int
	Duration   time.Duration // per workload and cluster
	Workloads  []Workload
	// Targets in run order, each "skiff" or "etcd".
	Targets []string
	Log     func(format string, args ...any)
}

// Report holds every result by target and workload name.
type Report struct {
	Targets   []string
	Workloads []string
	Results   map[string]map[string]Result
	CPUs      int
}

// Compare starts every target's cluster, then runs each workload on each
// cluster in turn (skiff, etcd, next workload, ...), so that slow drifts in the
// machine's other load hit both alike; the cluster not under load only sends
// heartbeats. Cancelling ctx stops the run; started members are always stopped
// and their directories removed before Compare returns.
func Compare(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	rep := &Report{Targets: o.Targets, Results: map[string]map[string]Result{}}
	for _, w := range o.Workloads {
		rep.Workloads = append(rep.Workloads, w.Name)
	}
	clusters := map[string]*Cluster{}
	defer func() {
		// Stop the clusters together: each waits out its members' grace.
		var wg sync.WaitGroup
		for _, c := range clusters {
			wg.Add(1)
			go func() { defer wg.Done(); c.Stop() }()
		}
		wg.Wait()
	}()
	for _, target := range o.Targets {
		bin := o.SkiffBinary
		if target == "etcd" {
			bin = o.EtcdBinary
		}
		spec := Spec{Kind: target, Binary: bin, Members: o.Members, Log: o.Log}
		if target == "skiff" {
			spec.ExtraArgs = o.SkiffArgs
		}
		c, err := Start(ctx, spec)
		if err != nil {
			return rep, fmt.Errorf("start %s cluster: %w", target, err)
		}
		clusters[target] = c
		rep.Results[target] = map[string]Result{}
	}
	for _, w := range o.Workloads {
		for _, target := range o.Targets {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			r := Measure(ctx, clusters[target], w, o.Duration)
			rep.Results[target][w.Name] = r
			if r.Err != nil {
				o.Log("%s %s: %d ops, error: %v", target, w.Name, r.Ops, r.Err)
			} else {
				o.Log("%s %s: %.0f ops/s p50 %v p99 %v cpu %.1fs", target, w.Name, r.OpsPerSec(), r.P50, r.P99, r.CPU.Seconds())
			}
		}
	}
	return rep, ctx.Err()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// cell is one target's columns for one workload.
func cell(r Result, ok bool) []string {
	if !ok {
		return []string{"-", "-", "-", "-"}
	}
	ops := fmt.Sprintf("%.0f", r.OpsPerSec())
	if r.Err != nil {
		ops += "!"
	}
	return []string{ops, fmtDur(r.P50), fmtDur(r.P99), fmt.Sprintf("%.1f", r.CPU.Seconds())}
}

// WriteTable prints one Markdown table: per workload, each target's ops/s,
// p50, p99 and CPU seconds, and the ratio of the first target's throughput to
// the second's. "!" marks a step that had errors (listed below the table).
func (rep *Report) WriteTable(w io.Writer) {
	header := []string{"workload"}
	for _, t := range rep.Targets {
		header = append(header, t+" ops/s", "p50", "p99", "cpu s")
	}
	if len(rep.Targets) == 2 {
		header = append(header, fmt.Sprintf("%s/%s", rep.Targets[0], rep.Targets[1]))
	}
	rows := [][]string{header}
	var notes []string
	for _, name := range rep.Workloads {
		row := []string{name}
		for _, t := range rep.Targets {
			r, ok := rep.Results[t][name]
			row = append(row, cell(r, ok)...)
			if ok && r.Err != nil {
				notes = append(notes, fmt.Sprintf("%s %s: %v", t, name, r.Err))
			}
		}
		if len(rep.Targets) == 2 {
			a, aok := rep.Results[rep.Targets[0]][name]
			b, bok := rep.Results[rep.Targets[1]][name]
			ratio := "-"
			if aok && bok && b.OpsPerSec() > 0 {
				ratio = fmt.Sprintf("%.2f×", a.OpsPerSec()/b.OpsPerSec())
			}
			row = append(row, ratio)
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for i, row := range rows {
		var b strings.Builder
		b.WriteString("|")
		for j, c := range row {
			pad := strings.Repeat(" ", widths[j]-len([]rune(c)))
			if j == 0 {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			} else {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			}
		}
		fmt.Fprintln(w, b.String())
		if i == 0 {
			b.Reset()
			b.WriteString("|")
			for j := range row {
				if j == 0 {
					b.WriteString(strings.Repeat("-", widths[j]+2) + "|")
				} else {
					b.WriteString(strings.Repeat("-", widths[j]+1) + ":|")
				}
			}
			fmt.Fprintln(w, b.String())
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, "! "+n)
	}
}

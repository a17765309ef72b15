package runner

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/skiffhq/skiff/jepsen/nemesis"
	"github.com/skiffhq/skiff/jepsen/rig"
)

// suiteFaults is every single fault, then the random schedule.
var suiteFaults = append(append([]string(nil), nemesis.Names...), "random")

// SuiteOptions describe a suite: every fault on every (db, size).
type SuiteOptions struct {
	DBs         []rig.DB
	Sizes       []int
	Faults      []string // default: every fault and "random"
	Repeat      int      // runs per (db, size, fault); default 1
	Time        time.Duration
	Out         string
	SkiffBinary string
	EtcdBinary  string
	Log         io.Writer // the members' and rig's progress
	Progress    io.Writer // one summary line per run
}

// Suite runs the runs one after the other (they share two cores with
// everything else) and returns every result; a run that could not be made
// at all stops the suite.
func Suite(ctx context.Context, o SuiteOptions) ([]*Result, error) {
	if len(o.Faults) == 0 {
		o.Faults = suiteFaults
	}
	if o.Repeat == 0 {
		o.Repeat = 1
	}
	var results []*Result
	n := 0
	total := len(o.DBs) * len(o.Sizes) * len(o.Faults) * o.Repeat
	for _, db := range o.DBs {
		for _, size := range o.Sizes {
			for _, f := range o.Faults {
				for k := 0; k < o.Repeat; k++ {
					if ctx.Err() != nil {
						return results, ctx.Err()
					}
					n++
					dir := filepath.Join(o.Out, fmt.Sprintf("%s-%d-%s-%d", db, size, f, k+1))
					res, err := Run(ctx, Options{
						DB: db, Nodes: size, Nemesis: f, Time: o.Time, Out: dir,
						SkiffBinary: o.SkiffBinary, EtcdBinary: o.EtcdBinary, Log: o.Log,
					})
					if err != nil {
						return results, err
					}
					results = append(results, res)
					if o.Progress != nil {
						fmt.Fprintf(o.Progress, "[%d/%d] %s\n", n, total, res.Summary())
					}
				}
			}
		}
	}
	return results, nil
}

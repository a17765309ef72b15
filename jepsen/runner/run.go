// Package runner puts a jepsen run together: a rig, the workloads, a
// nemesis schedule for a bounded time, heal, final reads and every checker;
// and writes the run directory:
//
//	history.jsonl   every client operation (checker.Op, JSON lines)
//	watch.json      what every watcher saw (full streams when the check failed)
//	reference.json  the full watch history from revision 1 after the heal
//	porcupine.html  porcupine's visualization of the register check
//	timeline.json   the faults with their start and end
//	latency.svg     latency of every op and throughput over time, faults shaded
//	result.json     the Result (read by `skiff jepsen report`)
//	summary.txt     one line: PASS/FAIL, scenario, ops, failover, checks
//	logs/           the members' logs
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/skiffhq/skiff/jepsen/checker"
	"github.com/skiffhq/skiff/jepsen/nemesis"
	"github.com/skiffhq/skiff/jepsen/rig"
	"github.com/skiffhq/skiff/jepsen/workload"
)

// Options describe one run.
type Options struct {
	DB          rig.DB
	Nodes       int
	SkiffBinary string
	EtcdBinary  string
	// Nemesis: a fault name (nemesis.Names), a comma-separated list (cycled
	// in order), or "random" (every fault but none, drawn at random).
	Nemesis string
	Time    time.Duration // workload duration, faults included
	Quiet   time.Duration // between faults (default 4s)
	Hold    time.Duration // how long each fault lasts (default 6s)
	Out     string        // run directory
	// CheckTimeout bounds porcupine; Unknown is a failure (default 3m).
	CheckTimeout time.Duration
	// UnsafeFollowerReads runs Skiff with the planted stale-read bug;
	// SerializableReads makes the register clients' gets serializable
	// (the same bug, planted on the client side; works for etcd too).
	UnsafeFollowerReads bool
	SerializableReads   bool
	Workload            workload.Config
	Log                 io.Writer
}

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nemesis == "" {
		o.Nemesis = "none"
	}
	if o.Time == 0 {
		o.Time = 30 * time.Second
	}
	if o.Quiet == 0 {
		o.Quiet = 4 * time.Second
	}
	if o.Hold == 0 {
		o.Hold = 6 * time.Second
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 3 * time.Minute
	}
	if o.Out == "" {
		return errors.New("no output directory")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Check is one checker's verdict.
type Check struct {
	Name string `json:"name"`
	Err  string `json:"error,omitempty"`
}

// Result is what a run found.
type Result struct {
	DB          string          `json:"db"`
	Nodes       int             `json:"nodes"`
	Nemesis     string          `json:"nemesis"`
	Planted     string          `json:"planted,omitempty"`
	Start       time.Time       `json:"start"`
	Duration    time.Duration   `json:"duration_ns"`
	Ops         int             `json:"ops"`
	OKOps       int             `json:"ok_ops"`
	Faults      []nemesis.Event `json:"faults"`
	Failover    time.Duration   `json:"failover_ns"` // -1: no fault or never recovered
	MaxGap      time.Duration   `json:"max_write_gap_ns"`
	Phases      *Phases         `json:"phases,omitempty"`
	Checks      []Check         `json:"checks"`
	Unavailable string          `json:"unavailable,omitempty"`
	Err         string          `json:"error,omitempty"` // the run itself failed
	Dir         string          `json:"dir"`
}

// Pass reports whether the run completed and every check passed.
func (r *Result) Pass() bool {
	if r.Err != "" {
		return false
	}
	for _, c := range r.Checks {
		if c.Err != "" {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Failed returns the checks that failed.
func (r *Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Err != "" {
			out = append(out, c)
		}
	}
	return out
}

// Scenario names the setup: "etcd/3", "skiff/5".
func (r *Result) Scenario() string { return fmt.Sprintf("%s/%d", r.DB, r.Nodes) }

// Summary is the one-line verdict.
func (r *Result) Summary() string {
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	var checks []string
	for _, c := range r.Checks {
		if c.Err == "" {
			checks = append(checks, c.Name+" ok")
		} else {
			checks = append(checks, c.Name+": "+c.Err)
		}
	}
	extra := ""
	if r.Planted != "" {
		extra = " planted=" + r.Planted
	}
	if r.Unavailable != "" {
		extra += " unavailable=" + r.Unavailable
	}
	if r.Err != "" {
		extra += " error=" + r.Err
	}
	for _, f := range r.Faults {
		if f.Outcome != "" {
			extra += " [" + f.Fault + ": " + f.Outcome + "]"
			break
		}
	}
	return fmt.Sprintf("%s %s nemesis=%s ops=%d ok=%d faults=%d failover=%s max-write-gap=%s%s | %s",
		verdict, r.Scenario(), r.Nemesis, r.Ops, r.OKOps, len(r.Faults), fmtDur(r.Failover), fmtDur(r.MaxGap), extra, strings.Join(checks, "; "))
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

// parseNemesis builds the fault list and whether to draw at random.
func parseNemesis(spec string) ([]nemesis.Fault, bool, error) {
	names := strings.Split(spec, ",")
	random := false
	if spec == "random" {
		random = true
		names = nil
		for _, n := range nemesis.Names {
			if n != "none" {
				names = append(names, n)
			}
		}
	}
	var faults []nemesis.Fault
	for _, n := range names {
		f, err := nemesis.New(strings.TrimSpace(n))
		if err != nil {
			return nil, false, err
		}
		faults = append(faults, f)
	}
	return faults, random, nil
}

// needsSmallSnapshots: a schedule with snapshot-catchup (alone, in a list
// or drawn at random) runs its members with small snapshot settings, so that
// the fault can force a snapshot install; other runs keep the defaults.
func needsSmallSnapshots(faults []nemesis.Fault) bool {
	for _, f := range faults {
		if f.Name() == "snapshot-catchup" {
			return true
		}
	}
	return false
}

// Run performs one run and writes its directory. The returned error is set
// only when the run could not be made at all (bad options, no root); a run
// that started and failed says so in Result.Err and its checks.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	faults, random, err := parseNemesis(o.Nemesis)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(o.Out, "run.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	log := io.MultiWriter(o.Log, logFile)
	res := &Result{DB: string(o.DB), Nodes: o.Nodes, Nemesis: o.Nemesis, Start: time.Now().UTC(), Failover: -1, Dir: o.Out}
	if o.UnsafeFollowerReads {
		res.Planted = "unsafe-follower-reads"
	}
	if o.SerializableReads {
		res.Planted = strings.TrimPrefix(res.Planted+",serializable-reads", ",")
	}
	r, err := rig.New(rig.Config{
		Nodes: o.Nodes, DB: o.DB, SkiffBinary: o.SkiffBinary, EtcdBinary: o.EtcdBinary,
		LogDir: filepath.Join(o.Out, "logs"), UnsafeFollowerReads: o.UnsafeFollowerReads, Log: log,
		SmallSnapshots: needsSmallSnapshots(faults),
	})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.Start(ctx); err != nil {
		if errors.Is(err, rig.ErrNotRoot) {
			return nil, err
		}
		res.Err = "rig start: " + err.Error()
		return res, writeResult(res, nil)
	}
	runErr := execute(ctx, o, r, faults, random, res)
	if runErr != nil {
		res.Err = runErr.Error()
	}
	res.Duration = time.Since(res.Start)
	fmt.Fprintln(log, res.Summary())
	return res, nil
}

func execute(ctx context.Context, o Options, r *rig.Rig, faults []nemesis.Fault, random bool, res *Result) error {
	origin := time.Now()
	rec := workload.NewRecorder(origin)
	wcfg := o.Workload
	wcfg.SerializableReads = wcfg.SerializableReads || o.SerializableReads
	wl, err := workload.NewRunner(r, rec, wcfg)
	if err != nil {
		return err
	}
	defer wl.Close()
	tl := nemesis.NewTimeline(origin)

	// Everything that follows must end: the workload after o.Time, the
	// final phase within its own deadlines.
	wctx, cancel := context.WithTimeout(ctx, o.Time)
	defer cancel()
	watchers := wl.StartWatchers(ctx)
	wl.Start(wctx)
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		nemesis.Schedule(wctx, r, tl, faults, random, o.Quiet, o.Hold)
	}()
	// A second set of watchers starts in the middle of the first fault,
	// from 50 revisions back: a watch resumed from a past revision, on
	// every member, while some of them are cut off or restarting.
	lateAt := o.Quiet + o.Hold/2
	if lateAt >= o.Time {
		lateAt = o.Time / 3
	}
	go func() {
		select {
		case <-wctx.Done():
			return
		case <-time.After(lateAt):
		}
		var rev int64
		for _, s := range r.Statuses(wctx, time.Second) {
			rev = max(rev, s.Revision)
		}
		wl.StartLate(ctx, watchers, rev, 50)
	}()
	<-wctx.Done()
	wl.Wait()
	<-nemDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.Logf("workload done; healing")
	hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer hcancel()
	if err := nemesis.HealAll(hctx, r); err != nil {
		r.Logf("heal: %v", err)
	}
	res.Faults = tl.Events()
	for _, e := range res.Faults {
		if e.Unavailable {
			res.Unavailable = e.Fault
		}
	}
	healthErr := r.WaitHealthy(hctx, 60*time.Second)

	// Final phase: leases expire, set reads, reference history, watchers'
	// catch-up, hashes.
	wl.WaitLeasesGone(hctx, 20*time.Second)
	finalRev, readErr := wl.FinalReads(hctx, 20*time.Second)
	var ref []checker.Event
	var refErr error
	if finalRev > 1 {
		ref, refErr = wl.Reference(hctx, 0, finalRev, 30*time.Second)
	}
	ws := watchers.CatchUp(ref, 15*time.Second)
	hashes, hashErrs := wl.Hashes(hctx, finalRev, 15*time.Second)
	history := rec.Ops()
	sort.SliceStable(history, func(i, j int) bool { return history[i].Call < history[j].Call })

	// Checks.
	add := func(name string, err error) {
		c := Check{Name: name}
		if err != nil {
			c.Err = err.Error()
		}
		res.Checks = append(res.Checks, c)
	}
	if healthErr != nil {
		add("healed", healthErr)
	}
	faultErrs := []string{}
	for _, e := range res.Faults {
		// A leader-targeted fault finding no leader is not a failure of
		// the rig; it is recorded in the timeline.
		if e.Err != "" && !e.Unavailable && !strings.Contains(e.Err, nemesis.ErrNoLeader.Error()) {
			faultErrs = append(faultErrs, e.Fault+": "+e.Err)
		}
	}
	if len(faultErrs) > 0 {
		add("nemesis", errors.New(strings.Join(faultErrs, "; ")))
	}
	regHistory := history
	if refErr == nil && ref != nil {
		regHistory = checker.ResolveUnknown(history, ref)
	}
	rr, regErr := checker.CheckRegister(regHistory, o.CheckTimeout)
	add("register", regErr)
	_, setErr := checker.CheckSet(history)
	if readErr != nil && setErr == nil {
		setErr = readErr
	}
	add("set", setErr)
	watchErr := refErr
	if watchErr == nil {
		watchErr = checker.CheckReference(ref, history)
	}
	if watchErr == nil {
		var errs []error
		for _, w := range ws {
			if err := checker.CheckWatcher(w, ref); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 2 {
			errs = append(errs[:2], fmt.Errorf("and %d more watchers", len(errs)-2))
		}
		watchErr = errors.Join(errs...)
	}
	add("watch", watchErr)
	leaseRef := ref
	if refErr != nil {
		leaseRef = nil
	}
	add("lease", checker.CheckLeases(history, leaseRef))
	add("hashkv", checker.CheckHashes(finalRev, hashes, hashErrs))

	for _, op := range history {
		if op.F == checker.FRead {
			continue
		}
		res.Ops++
		if op.Type == checker.OK {
			res.OKOps++
		}
	}
	res.Failover, res.MaxGap = failover(history, res.Faults, o.Time)
	res.Phases = phases(history, res.Faults, o.Quiet)

	// Outputs.
	var errs []error
	errs = append(errs, writeFile(filepath.Join(o.Out, "history.jsonl"), func(w io.Writer) error { return checker.WriteJSONL(w, history) }))
	errs = append(errs, writeFile(filepath.Join(o.Out, "porcupine.html"), func(w io.Writer) error { return checker.VisualizeRegister(w, rr) }))
	errs = append(errs, writeJSON(filepath.Join(o.Out, "timeline.json"), res.Faults))
	// Watchers' full streams only when they matter (they are large).
	type watcherSummary struct {
		ID        int    `json:"id"`
		Node      string `json:"node"`
		Prefix    string `json:"prefix"`
		StartRev  int64  `json:"start_rev"`
		Responses int    `json:"responses"`
		Events    int    `json:"events"`
		Err       string `json:"error,omitempty"`
	}
	var wsum []watcherSummary
	for _, w := range ws {
		s := watcherSummary{ID: w.ID, Node: w.Node, Prefix: w.Prefix, StartRev: w.StartRev, Responses: len(w.Responses), Err: w.Err}
		for _, r := range w.Responses {
			s.Events += len(r.Events)
		}
		wsum = append(wsum, s)
	}
	watchOut := map[string]any{"final_revision": finalRev, "hashes": hashes, "hash_errors": hashErrs, "watchers": wsum, "reference_events": len(ref)}
	if watchErr != nil {
		watchOut["watcher_streams"] = ws
	}
	errs = append(errs, writeJSON(filepath.Join(o.Out, "reference.json"), ref))
	errs = append(errs, writeJSON(filepath.Join(o.Out, "watch.json"), watchOut))
	errs = append(errs, writeFile(filepath.Join(o.Out, "latency.svg"), func(w io.Writer) error {
		return Plot(w, history, res.Faults, o.Time, fmt.Sprintf("%s, nemesis %s", res.Scenario(), res.Nemesis))
	}))
	errs = append(errs, writeResult(res, nil))
	return errors.Join(errs...)
}

// failover: from the start of the first fault that was injected, the time
// until a write invoked after it was acknowledged; and the longest stretch
// of the workload with no acknowledged write at all.
func failover(history []checker.Op, faults []nemesis.Event, total time.Duration) (time.Duration, time.Duration) {
	fo := time.Duration(-1)
	for _, f := range faults {
		if f.Err != "" {
			continue
		}
		best := int64(-1)
		for _, op := range history {
			if op.IsWrite() && op.Type == checker.OK && op.Call >= int64(f.Start) {
				if best < 0 || op.Return < best {
					best = op.Return
				}
			}
		}
		if best >= 0 {
			fo = time.Duration(best) - f.Start
		}
		break
	}
	var acks []int64
	for _, op := range history {
		if op.IsWrite() && op.Type == checker.OK {
			acks = append(acks, op.Return)
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	var gap, prev int64
	for _, a := range acks {
		gap = max(gap, a-prev)
		prev = a
	}
	if len(acks) > 0 {
		gap = max(gap, int64(total)-prev)
	} else {
		gap = int64(total)
	}
	return fo, time.Duration(gap)
}

// Phase is throughput and latency over a set of time windows.
type Phase struct {
	OpsPerSec float64       `json:"ops_per_sec"` // acknowledged ops per second
	P99       time.Duration `json:"p99_ns"`      // of acknowledged ops
}

// Phases compares the windows before (the quiet just before each fault),
// during and after (the same length after each heal) every injected fault.
type Phases struct {
	Before, During, After Phase
}

func phases(history []checker.Op, faults []nemesis.Event, quiet time.Duration) *Phases {
	type window struct{ from, to int64 }
	var before, during, after []window
	for _, f := range faults {
		if f.Err != "" {
			continue
		}
		before = append(before, window{int64(f.Start - quiet), int64(f.Start)})
		during = append(during, window{int64(f.Start), int64(f.End)})
		after = append(after, window{int64(f.End), int64(f.End + quiet)})
	}
	if len(during) == 0 {
		return nil
	}
	measure := func(ws []window) Phase {
		var lat []int64
		var span int64
		for _, w := range ws {
			span += w.to - w.from
			for _, op := range history {
				if op.Type == checker.OK && op.F != checker.FRead && op.F != checker.FLeaseRead && op.Return >= w.from && op.Return < w.to {
					lat = append(lat, op.Return-op.Call)
				}
			}
		}
		var p Phase
		if span > 0 {
			p.OpsPerSec = float64(len(lat)) / (float64(span) / 1e9)
		}
		if len(lat) > 0 {
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p.P99 = time.Duration(lat[min(len(lat)-1, len(lat)*99/100)])
		}
		return p
	}
	return &Phases{Before: measure(before), During: measure(during), After: measure(after)}
}

func writeResult(res *Result, _ error) error {
	if err := writeJSON(filepath.Join(res.Dir, "result.json"), res); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(res.Dir, "summary.txt"), []byte(res.Summary()+"\n"), 0o644)
}

func writeJSON(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// Recheck runs the history checks again on a run directory (history.jsonl
// and reference.json), e.g. with a longer porcupine budget. The watchers'
// own checks need their streams, kept only when they failed, so they are
// not repeated here.
func Recheck(dir string, timeout time.Duration) ([]Check, error) {
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	history, err := checker.ReadJSONL(f)
	if err != nil {
		return nil, err
	}
	var ref []checker.Event
	if b, err := os.ReadFile(filepath.Join(dir, "reference.json")); err == nil {
		if err := json.Unmarshal(b, &ref); err != nil {
			return nil, fmt.Errorf("reference.json: %w", err)
		}
	}
	var checks []Check
	add := func(name string, err error) {
		c := Check{Name: name}
		if err != nil {
			c.Err = err.Error()
		}
		checks = append(checks, c)
	}
	regHistory := history
	if ref != nil {
		regHistory = checker.ResolveUnknown(history, ref)
		add("reference", checker.CheckReference(ref, history))
	}
	_, err = checker.CheckRegister(regHistory, timeout)
	add("register", err)
	_, err = checker.CheckSet(history)
	add("set", err)
	add("lease", checker.CheckLeases(history, ref))
	return checks, nil
}

// ReadResult loads a run directory's result.json.
func ReadResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	r.Dir = dir
	return &r, nil
}

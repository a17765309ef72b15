package multinode

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// lossPhase is one step of the control plane's handling of a lost node,
// found in the server's log: the first line after the loss that has msg
// and every one of the fields.
type lossPhase struct {
	name   string
	msg    string
	fields []string // key=value; "{node}" stands for the lost node's name
}

// lossPhases, in the order they normally happen.
var lossPhases = []lossPhase{
	{"gossip suspect", "member state", []string{"member={node}", "state=suspect"}},
	{"gossip dead", "member state", []string{"member={node}", "state=dead"}},
	{"pinged", "pinged node through its Lease", []string{"node={node}"}},
	{"Ready=Unknown", "node unreachable", []string{"node={node}"}},
	{"tainted", "node tainted", []string{"node={node}", "taint=node.kubernetes.io/unreachable"}},
	{"evicted", "evicted pod", []string{"node={node}"}},
}

// agentPhases are the surviving agents' steps in starting the
// replacements ("{node}" is unused: the pods' names tell).
var agentPhases = []lossPhase{
	{"first sandbox created", "sandbox created", []string{"pod=default/backend-"}},
	{"first container started", "container started", []string{"pod=default/backend-"}},
}

// logPhases reads a member's log and records in out when each of phases
// first happened after t0 (absent: not seen), keeping an earlier time
// already there. Every process of the lab shares the host's clock.
func logPhases(out map[string]time.Time, logPath string, phases []lossPhase, node string, t0 time.Time) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	first := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		ts, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(t0) {
			continue
		}
	phases:
		for _, p := range phases {
			if first[p.name] || !strings.Contains(line, `msg="`+p.msg) {
				continue
			}
			for _, f := range p.fields {
				if !strings.Contains(line, " "+strings.ReplaceAll(f, "{node}", node)) {
					continue phases
				}
			}
			first[p.name] = true
			if prev, ok := out[p.name]; !ok || at.Before(prev) {
				out[p.name] = at
			}
		}
	}
	return sc.Err()
}

// lossTimeline is what the node-loss test saw, as durations since the
// kill: the server's phases and its own observations through the API.
type lossTimeline struct {
	t0     time.Time
	phases map[string]time.Time
	seen   []string // the test's own observations, in order
	at     map[string]time.Duration
}

func newLossTimeline(t0 time.Time) *lossTimeline {
	return &lossTimeline{t0: t0, at: map[string]time.Duration{}}
}

// observe records the first time the test saw what (at its poll interval).
func (l *lossTimeline) observe(what string) {
	if _, ok := l.at[what]; ok {
		return
	}
	l.at[what] = time.Since(l.t0)
	l.seen = append(l.seen, what)
}

// String is the breakdown for the FIGURE line: the members' phases from
// their logs and the test's observations, in the order they happened,
// then the phases not seen.
func (l *lossTimeline) String() string {
	type step struct {
		what string
		at   time.Duration
	}
	var steps []step
	var missing []string
	for _, p := range slices.Concat(lossPhases, agentPhases) {
		if at, ok := l.phases[p.name]; ok {
			steps = append(steps, step{p.name, at.Sub(l.t0)})
		} else {
			missing = append(missing, p.name)
		}
	}
	for _, w := range l.seen {
		steps = append(steps, step{w, l.at[w]})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return cmp.Compare(a.at, b.at) })
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s %v", s.what, s.at.Round(100*time.Millisecond)))
	}
	if len(missing) > 0 {
		parts = append(parts, "not seen: "+strings.Join(missing, ", "))
	}
	return strings.Join(parts, ", ")
}

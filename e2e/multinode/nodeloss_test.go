package multinode

import (
	"bufio"
	"fmt"
	"os"
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

// serverPhases reads the server's log and returns when each lossPhase
// first happened after t0 (absent: not seen). Every process of the lab
// shares the host's clock.
func serverPhases(logPath, node string, t0 time.Time) (map[string]time.Time, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]time.Time{}
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
		for _, p := range lossPhases {
			if _, seen := out[p.name]; seen || !strings.Contains(line, `msg="`+p.msg) {
				continue
			}
			for _, f := range p.fields {
				if !strings.Contains(line, " "+strings.ReplaceAll(f, "{node}", node)) {
					continue phases
				}
			}
			out[p.name] = at
		}
	}
	return out, sc.Err()
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

// String is the breakdown for the FIGURE line: the server's phases from
// its log, then the test's observations.
func (l *lossTimeline) String() string {
	var parts []string
	for _, p := range lossPhases {
		if at, ok := l.phases[p.name]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", p.name, at.Sub(l.t0).Round(100*time.Millisecond)))
		} else {
			parts = append(parts, p.name+" -")
		}
	}
	for _, w := range l.seen {
		parts = append(parts, fmt.Sprintf("%s %v", w, l.at[w].Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

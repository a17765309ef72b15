// Package nemesis injects faults into a rig: network partitions of several
// shapes (iptables rules inside the hosts' namespaces), process crashes and
// pauses (signals to the member processes), restarts, and packet loss and
// delay (tc netem, when the kernel has it). Each fault has a Start and a Stop
// (its heal); a Timeline records when each was in force.
//
// Partitions drop packets on INPUT inside each member's namespace, matched
// on the other members' addresses only: the harness (on the bridge's .1
// address) still reaches every member, so clients bound to a minority member
// see what a real client in that minority would see.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiffhq/skiff/jepsen/rig"
)

// Sentinel errors.
var (
	// ErrUnavailable: the host cannot inject this fault (e.g. no sch_netem
	// in the kernel). The run records it and carries on without the fault.
	ErrUnavailable = errors.New("fault unavailable on this host")
	// ErrNoLeader: a leader-targeted fault found no leader to target.
	ErrNoLeader = errors.New("no leader to target")
	// ErrUnknownFault: the name is not in Names.
	ErrUnknownFault = errors.New("unknown fault")
)

// Fault is one kind of failure. Start injects it and returns what it did
// (e.g. "isolated n2"); Stop heals exactly what Start did. Start and Stop of
// one Fault value are called from one goroutine, in that order.
type Fault interface {
	Name() string
	Start(ctx context.Context, r *rig.Rig) (detail string, err error)
	Stop(ctx context.Context, r *rig.Rig) error
}

// Verifier is a Fault that can tell, after its heal and the convergence
// measurement, whether it really did what it is for (e.g. forced a snapshot
// install). An error fails the run's nemesis check; the outcome is recorded.
type Verifier interface {
	Verify(ctx context.Context, r *rig.Rig) (outcome string, err error)
}

// Names lists every fault, in the order the suite runs them.
var Names = []string{
	"none",
	"partition-leader",
	"partition-halves",
	"partition-ring",
	"partition-bridge",
	"partition-oneway",
	"kill-leader",
	"kill-random",
	"kill-all",
	"pause-leader",
	"restart-random",
	"member-replace",
	"snapshot-catchup",
	"loss",
	"delay",
}

// New returns the fault with the given name.
func New(name string) (Fault, error) {
	switch name {
	case "none":
		return none{}, nil
	case "partition-leader", "partition-halves", "partition-ring", "partition-bridge", "partition-oneway":
		return &partition{shape: strings.TrimPrefix(name, "partition-")}, nil
	case "kill-leader", "kill-random", "kill-all":
		return &kill{target: strings.TrimPrefix(name, "kill-")}, nil
	case "pause-leader":
		return &pause{}, nil
	case "restart-random":
		return &restart{}, nil
	case "member-replace":
		return &replace{}, nil
	case "snapshot-catchup":
		return &snapshotCatchup{partition: partition{shape: "follower"}}, nil
	case "loss":
		return &netem{name: "loss", args: []string{"loss", "30%"}}, nil
	case "delay":
		return &netem{name: "delay", args: []string{"delay", "200ms", "50ms"}}, nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFault, name, strings.Join(Names, ", "))
}

type none struct{}

func (none) Name() string                                    { return "none" }
func (none) Start(context.Context, *rig.Rig) (string, error) { return "no fault", nil }
func (none) Stop(context.Context, *rig.Rig) error            { return nil }

// IsNone reports whether f injects nothing.
func IsNone(f Fault) bool { _, ok := f.(none); return ok }

// ---- partitions ----

type partition struct {
	shape   string
	touched []*rig.Member
	// lastPlan is what the latest Start applied.
	lastPlan blocked
}

func (p *partition) Name() string { return "partition-" + p.shape }

// blocked[a][b] = a drops packets coming from b.
type blocked map[*rig.Member]map[*rig.Member]bool

func (b blocked) cut(x, y *rig.Member, bothWays bool) {
	if b[x] == nil {
		b[x] = map[*rig.Member]bool{}
	}
	b[x][y] = true
	if bothWays {
		if b[y] == nil {
			b[y] = map[*rig.Member]bool{}
		}
		b[y][x] = true
	}
}

// components cuts every link between members that share no group.
func components(ms []*rig.Member, groups ...[]*rig.Member) blocked {
	in := map[*rig.Member]map[int]bool{}
	for gi, g := range groups {
		for _, m := range g {
			if in[m] == nil {
				in[m] = map[int]bool{}
			}
			in[m][gi] = true
		}
	}
	b := blocked{}
	for _, x := range ms {
		for _, y := range ms {
			if x == y {
				continue
			}
			shared := false
			for gi := range in[x] {
				if in[y][gi] {
					shared = true
				}
			}
			if !shared {
				b.cut(x, y, false)
			}
		}
	}
	return b
}

func names(ms []*rig.Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return strings.Join(s, ",")
}

func shuffled(ms []*rig.Member) []*rig.Member {
	out := append([]*rig.Member(nil), ms...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (p *partition) Start(ctx context.Context, r *rig.Rig) (string, error) {
	var l *rig.Member
	if p.shape == "leader" || p.shape == "oneway" || p.shape == "follower" {
		var err error
		if l, err = leader(ctx, r); err != nil {
			return "", err
		}
	}
	b, detail, err := plan(p.shape, r.Members, l)
	if err != nil {
		return "", err
	}
	// Remember every member touched before applying, so that Stop heals
	// even a partition that was only partly applied.
	p.touched = nil
	p.lastPlan = b
	for m := range b {
		p.touched = append(p.touched, m)
	}
	return detail, applyBlocked(ctx, b)
}

// plan computes which member drops packets from which, for a partition
// shape; l is the leader for the leader-targeted shapes. Pure, for tests.
func plan(shape string, ms []*rig.Member, l *rig.Member) (blocked, string, error) {
	n := len(ms)
	b := blocked{}
	switch shape {
	case "leader", "oneway":
		if l == nil {
			return nil, "", ErrNoLeader
		}
		var others []*rig.Member
		for _, m := range ms {
			if m != l {
				others = append(others, m)
			}
		}
		if shape == "leader" {
			return components(ms, []*rig.Member{l}, others), fmt.Sprintf("isolated leader %s from %s", l.Name, names(others)), nil
		}
		// The leader hears nobody but can still send: its heartbeats
		// arrive, the acknowledgements do not.
		for _, o := range others {
			b.cut(l, o, false)
		}
		return b, fmt.Sprintf("leader %s receives nothing from %s (one-way)", l.Name, names(others)), nil
	case "follower":
		// One follower alone; the rest keep a quorum and go on writing.
		if l == nil {
			return nil, "", ErrNoLeader
		}
		var f *rig.Member
		var rest []*rig.Member
		for _, m := range shuffled(ms) {
			if m != l && f == nil {
				f = m
				continue
			}
			rest = append(rest, m)
		}
		if f == nil {
			return nil, "", fmt.Errorf("%w: no follower to isolate", ErrUnknownFault)
		}
		return components(ms, []*rig.Member{f}, rest), fmt.Sprintf("isolated follower %s from %s", f.Name, names(rest)), nil
	case "halves":
		s := shuffled(ms)
		minority, majority := s[:n/2], s[n/2:]
		return components(ms, minority, majority), fmt.Sprintf("halves {%s} | {%s}", names(minority), names(majority)), nil
	case "ring":
		// Majorities ring: every member sees its ring neighbours, so each
		// sees a majority (for 5: itself and two), but no two see the same
		// one. With 3 members a ring is a full mesh, so cut one link
		// instead: two members each see a majority through the third.
		s := shuffled(ms)
		if n <= 3 {
			if n >= 2 {
				b.cut(s[0], s[1], true)
			}
			return b, fmt.Sprintf("ring (3 members: cut %s-%s)", s[0].Name, s[1].Name), nil
		}
		for i := range s {
			for j := range s {
				d := (j - i + n) % n
				if i != j && d != 1 && d != n-1 {
					b.cut(s[i], s[j], false)
				}
			}
		}
		return b, fmt.Sprintf("majorities ring %s", names(s)), nil
	case "bridge":
		s := shuffled(ms)
		h := n / 2
		left, right := s[:h+1], s[h:]
		return components(ms, left, right), fmt.Sprintf("bridge {%s} | {%s} via %s", names(left), names(right), s[h].Name), nil
	}
	return nil, "", fmt.Errorf("%w: partition shape %q", ErrUnknownFault, shape)
}

func applyBlocked(ctx context.Context, b blocked) error {
	var ms []*rig.Member
	for m := range b {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Index < ms[j].Index })
	for _, m := range ms {
		for o := range b[m] {
			if _, err := m.NSExec(ctx, "iptables", "-w", "-A", "INPUT", "-s", o.IP, "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *partition) Stop(ctx context.Context, r *rig.Rig) error {
	var errs []error
	for _, m := range p.touched {
		if _, err := m.NSExec(ctx, "iptables", "-w", "-F", "INPUT"); err != nil {
			errs = append(errs, err)
		}
	}
	p.touched = nil
	return errors.Join(errs...)
}

// leader waits a few seconds for a leader: right after a heal the cluster
// may still be electing one.
func leader(ctx context.Context, r *rig.Rig) (*rig.Member, error) {
	l, err := r.WaitLeader(ctx, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return l, nil
}

// ---- crashes ----

type kill struct {
	target string
	killed []*rig.Member
}

func (k *kill) Name() string { return "kill-" + k.target }

func (k *kill) Start(ctx context.Context, r *rig.Rig) (string, error) {
	var victims []*rig.Member
	switch k.target {
	case "leader":
		l, err := leader(ctx, r)
		if err != nil {
			return "", err
		}
		victims = []*rig.Member{l}
	case "random":
		victims = shuffled(r.Members)[:1]
	case "all":
		victims = r.Members
	}
	k.killed = nil
	for _, m := range victims {
		if err := m.Kill(); err != nil {
			return "", err
		}
		k.killed = append(k.killed, m)
	}
	return "SIGKILL " + names(victims), nil
}

func (k *kill) Stop(ctx context.Context, r *rig.Rig) error {
	var errs []error
	for _, m := range k.killed {
		if !m.Running() {
			errs = append(errs, m.Start())
		}
	}
	k.killed = nil
	return errors.Join(errs...)
}

type pause struct{ paused *rig.Member }

func (p *pause) Name() string { return "pause-leader" }

func (p *pause) Start(ctx context.Context, r *rig.Rig) (string, error) {
	l, err := leader(ctx, r)
	if err != nil {
		return "", err
	}
	if err := l.Pause(); err != nil {
		return "", err
	}
	p.paused = l
	return "SIGSTOP " + l.Name, nil
}

func (p *pause) Stop(ctx context.Context, r *rig.Rig) error {
	if p.paused == nil {
		return nil
	}
	err := p.paused.Resume()
	p.paused = nil
	return err
}

// restart stops a random member gracefully and starts it again at once; the
// fault window is the time it takes.
type restart struct{}

func (restart) Name() string { return "restart-random" }

func (restart) Start(ctx context.Context, r *rig.Rig) (string, error) {
	m := shuffled(r.Members)[0]
	if err := m.Terminate(10 * time.Second); err != nil {
		return "", err
	}
	if err := m.Start(); err != nil {
		return "", err
	}
	return "SIGTERM + start " + m.Name, nil
}

func (restart) Stop(context.Context, *rig.Rig) error { return nil }

// replace removes a random member from the cluster (MemberRemove through
// another member), kills it and wipes its data; the heal adds it back as a
// new member with an empty data dir, which must then catch up from the
// others (by snapshot or log), and the final HashKV check covers it.
type replace struct {
	removed *rig.Member
}

func (*replace) Name() string { return "member-replace" }

func others(r *rig.Rig, m *rig.Member) []*rig.Member {
	var out []*rig.Member
	for _, o := range r.Members {
		if o != m && o.Running() {
			out = append(out, o)
		}
	}
	return out
}

func (p *replace) Start(ctx context.Context, r *rig.Rig) (string, error) {
	m := shuffled(r.Members)[0]
	c, err := rig.Client(others(r, m))
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = removeMember(ctx, c, m)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("remove %s: %w", m.Name, err)
	}
	if err := m.Kill(); err != nil {
		return "", err
	}
	if err := m.Wipe(); err != nil {
		return "", err
	}
	p.removed = m
	return "removed and wiped " + m.Name, nil
}

func removeMember(ctx context.Context, c *clientv3.Client, m *rig.Member) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := c.MemberList(cctx)
	if err != nil {
		return err
	}
	for _, mm := range list.Members {
		for _, u := range mm.PeerURLs {
			if strings.Contains(u, m.PeerAddr()) {
				_, err := c.MemberRemove(cctx, mm.ID)
				return err
			}
		}
	}
	return fmt.Errorf("%s (%s) not in the member list", m.Name, m.PeerAddr())
}

func (p *replace) Stop(ctx context.Context, r *rig.Rig) error {
	m := p.removed
	if m == nil {
		return nil
	}
	p.removed = nil
	if r.DB() == rig.DBEtcd {
		// etcd needs the member added before it starts; Skiff members
		// add themselves through --join.
		c, err := rig.Client(others(r, m))
		if err != nil {
			return err
		}
		defer c.Close()
		deadline := time.Now().Add(15 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err = c.MemberAdd(cctx, []string{"http://" + m.PeerAddr()})
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("re-add %s: %w", m.Name, err)
		}
	}
	return m.Start()
}

// ---- tc netem ----

type netem struct {
	name    string
	args    []string
	applied []*rig.Member
	// dropped: members with the iptables fallback of loss in INPUT.
	dropped []*rig.Member
}

func (n *netem) Name() string { return n.name }

// lossFallback is the share of member-to-member packets the loss fault drops
// with iptables' statistic match when the kernel has no sch_netem.
const lossFallback = "0.30"

func (n *netem) Start(ctx context.Context, r *rig.Rig) (string, error) {
	n.applied, n.dropped = nil, nil
	for _, m := range r.Members {
		args := append([]string{"qdisc", "add", "dev", "eth0", "root", "netem"}, n.args...)
		if out, err := m.NSExec(ctx, "tc", args...); err != nil {
			if strings.Contains(out, "qdisc kind is unknown") || strings.Contains(out, "No such file") {
				if n.name == "loss" && len(n.applied) == 0 {
					return n.dropRandom(ctx, r)
				}
				return "", fmt.Errorf("%w: tc netem: the kernel lacks sch_netem (%s)", ErrUnavailable, strings.TrimSpace(out))
			}
			return "", err
		}
		n.applied = append(n.applied, m)
	}
	return "netem " + strings.Join(n.args, " ") + " on all members", nil
}

// dropRandom is loss without netem: every member drops a random 30% of the
// packets it receives from the other members (iptables statistic match in
// its namespace). Unlike netem on eth0 it spares the clients' traffic, as
// the partitions do.
func (n *netem) dropRandom(ctx context.Context, r *rig.Rig) (string, error) {
	for _, m := range r.Members {
		n.dropped = append(n.dropped, m)
		for _, o := range r.Members {
			if o == m {
				continue
			}
			if out, err := m.NSExec(ctx, "iptables", "-w", "-A", "INPUT", "-s", o.IP, "-m", "statistic", "--mode", "random", "--probability", lossFallback, "-j", "DROP"); err != nil {
				return "", fmt.Errorf("%w: no sch_netem, and iptables statistic failed too (%s)", ErrUnavailable, strings.TrimSpace(out))
			}
		}
	}
	return "30% loss of member-to-member packets (iptables statistic: this kernel has no sch_netem)", nil
}

func (n *netem) Stop(ctx context.Context, r *rig.Rig) error {
	var errs []error
	for _, m := range n.applied {
		if _, err := m.NSExec(ctx, "tc", "qdisc", "del", "dev", "eth0", "root"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range n.dropped {
		if _, err := m.NSExec(ctx, "iptables", "-w", "-F", "INPUT"); err != nil {
			errs = append(errs, err)
		}
	}
	n.applied, n.dropped = nil, nil
	return errors.Join(errs...)
}

// HealAll undoes every fault on every member regardless of who injected it:
// flushes iptables INPUT, removes netem, continues paused members and starts
// stopped ones. Used at the end of a run and on interrupt.
func HealAll(ctx context.Context, r *rig.Rig) error {
	var errs []error
	for _, m := range r.Members {
		if _, err := m.NSExec(ctx, "iptables", "-w", "-F", "INPUT"); err != nil {
			errs = append(errs, err)
		}
		_, _ = m.NSExec(ctx, "tc", "qdisc", "del", "dev", "eth0", "root")
		if m.Running() {
			_ = m.Resume()
		} else if err := m.Start(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ---- timeline ----

// Event is one fault in force from Start to End (offsets from the run's
// start). Err is set when injecting or healing failed; Unavailable when the
// host cannot inject this fault at all.
type Event struct {
	Fault       string        `json:"fault"`
	Detail      string        `json:"detail,omitempty"`
	Start       time.Duration `json:"start_ns"`
	End         time.Duration `json:"end_ns"`
	StartTime   time.Time     `json:"start_time"`
	EndTime     time.Time     `json:"end_time"`
	Err         string        `json:"error,omitempty"`
	Unavailable bool          `json:"unavailable,omitempty"`
	// Converged: from the heal until every member had applied the
	// revision the most advanced member had at the heal; -1 if not within
	// 15s (or a member was down).
	Converged time.Duration `json:"converged_ns"`
	// Outcome: what a Verifier found after the heal.
	Outcome string `json:"outcome,omitempty"`
}

// Timeline records fault events; safe for concurrent use.
type Timeline struct {
	mu     sync.Mutex
	origin time.Time
	events []Event
}

// NewTimeline starts a timeline whose offsets count from origin.
func NewTimeline(origin time.Time) *Timeline { return &Timeline{origin: origin} }

// Events returns a copy of the recorded events.
func (t *Timeline) Events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.events...)
}

func (t *Timeline) add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
}

// Schedule runs faults until ctx is done: quiet, then the next fault for
// hold, heal, and again. With random set, each cycle draws from faults at
// random; otherwise it cycles through them in order. Every fault started is
// stopped before Schedule returns, and recorded in tl.
func Schedule(ctx context.Context, r *rig.Rig, tl *Timeline, faults []Fault, random bool, quiet, hold time.Duration) {
	for i := 0; ; i++ {
		if !sleep(ctx, quiet) {
			return
		}
		f := faults[i%len(faults)]
		if random {
			f = faults[rand.IntN(len(faults))]
		}
		if IsNone(f) {
			continue
		}
		ev := Event{Fault: f.Name()}
		// Injecting and healing must finish even when ctx ends mid-fault.
		// snapshot-catchup may outlast its hold by up to fillFor.
		bg, cancel := context.WithTimeout(context.Background(), fillFor+60*time.Second)
		detail, err := f.Start(bg, r)
		// The fault is in force once Start has returned (iptables rules
		// go in one namespace after the other).
		ev.StartTime = time.Now()
		ev.Start = ev.StartTime.Sub(tl.origin)
		ev.Detail = detail
		if err != nil {
			ev.Err = err.Error()
			ev.Unavailable = errors.Is(err, ErrUnavailable)
			r.Logf("nemesis %s: start: %v", f.Name(), err)
		} else {
			r.Logf("nemesis %s: %s", f.Name(), detail)
		}
		sleep(ctx, hold)
		if serr := f.Stop(bg, r); serr != nil {
			ev.Err = joinErr(ev.Err, "heal: "+serr.Error())
			r.Logf("nemesis %s: heal: %v", f.Name(), serr)
		} else {
			r.Logf("nemesis %s: healed", f.Name())
		}
		ev.EndTime = time.Now()
		ev.End = ev.EndTime.Sub(tl.origin)
		ev.Converged = converge(bg, r, 15*time.Second)
		if v, ok := f.(Verifier); ok && err == nil {
			out, verr := v.Verify(bg, r)
			ev.Outcome = out
			if verr != nil {
				ev.Err = joinErr(ev.Err, verr.Error())
				r.Logf("nemesis %s: %v", f.Name(), verr)
			} else if out != "" {
				r.Logf("nemesis %s: %s", f.Name(), out)
			}
		}
		cancel()
		tl.add(ev)
		if ctx.Err() != nil {
			return
		}
	}
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// converge measures how long after a heal every member has caught up with
// the revision the most advanced member had at the heal.
func converge(ctx context.Context, r *rig.Rig, limit time.Duration) time.Duration {
	start := time.Now()
	var target int64
	for _, s := range r.Statuses(ctx, time.Second) {
		target = max(target, s.Revision)
	}
	for time.Since(start) < limit {
		behind := false
		for _, s := range r.Statuses(ctx, time.Second) {
			if s.Err != nil || s.Revision < target {
				behind = true
			}
		}
		if !behind {
			return time.Since(start)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			break
		}
	}
	return -1
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ---- catch-up by snapshot ----

// snapshotCatchup isolates one follower while the majority goes on
// committing: the workload's writes plus filler entries from the nemesis
// itself (transactions whose comparison always fails, so each is one raft
// entry but no MVCC revision and no event for the checkers), until every
// majority member's log says it compacted its raft log past the follower's
// last entry (or fillFor has passed); only then does it heal. With the rig's
// SmallSnapshots settings that takes a few hundred entries for Skiff and
// ~5000 for etcd (plus up to 30s when etcd's leader sent a snapshot
// recently: it pauses compaction meanwhile). After the heal the follower
// can only catch up by installing a snapshot; Verify looks in its log (only
// what it wrote since the fault started) for the install, and fails the
// fault when there was none: a fault that degraded to log catch-up is
// reported, not passed.
type snapshotCatchup struct {
	partition
	isolated  *rig.Member
	logOffset int64
	from, to  uint64 // follower's raft index when cut off; majority's applied index at the heal
	compacted uint64 // lowest compaction index over the majority at the heal
	stopFill  context.CancelFunc
	filled    chan struct{} // closed when the gap is reached or filling gave up
	fillOps   int64
	fillErr   error
	// verifyWithin bounds Verify's wait for the install line (default 20s).
	verifyWithin time.Duration
}

// fillFor bounds how long the fault may outlast its hold waiting for the
// compaction (etcd: ~5100 entries, and up to 30s after a previous snapshot
// was sent, on a shared 2-core host).
const fillFor = 60 * time.Second

// FillPrefix holds the key the filler's transactions compare (never written).
const FillPrefix = "nemesis/"

func (s *snapshotCatchup) Name() string { return "snapshot-catchup" }

func (s *snapshotCatchup) Start(ctx context.Context, r *rig.Rig) (string, error) {
	s.isolated, s.from, s.to, s.compacted, s.fillOps, s.fillErr = nil, 0, 0, 0, 0, nil
	// The follower's index just before the cut is the baseline; its log
	// from here on is what Verify reads.
	before := r.Statuses(ctx, time.Second)
	detail, err := s.partition.Start(ctx, r)
	for m, from := range s.partition.lastPlan {
		if len(from) == len(r.Members)-1 {
			s.isolated = m
		}
	}
	if err != nil || s.isolated == nil {
		return detail, err
	}
	if fi, err := os.Stat(s.isolated.LogPath); err == nil {
		s.logOffset = fi.Size()
	}
	for _, st := range before {
		if st.Member == s.isolated && st.Err == nil {
			s.from = st.RaftIndex
		}
	}
	// The follower's last entry is at most its commit index a moment
	// after the cut (entries past it would only make the gap larger).
	if st := s.isolated.Status(ctx, time.Second); st.Err == nil && st.RaftIndex > s.from {
		s.from = st.RaftIndex
	}
	var majority []*rig.Member
	for _, m := range r.Members {
		if m != s.isolated {
			majority = append(majority, m)
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), fillFor)
	s.stopFill, s.filled = cancel, make(chan struct{})
	go s.fill(fctx, r, majority)
	return fmt.Sprintf("%s at raft index %d; filling until the majority has compacted its logs past it", detail, s.from), nil
}

// fill writes filler entries through the majority until every majority
// member has compacted its log past the follower, then closes s.filled.
func (s *snapshotCatchup) fill(ctx context.Context, r *rig.Rig, majority []*rig.Member) {
	defer close(s.filled)
	c, err := rig.Client(majority)
	if err != nil {
		s.fillErr = err
		return
	}
	defer c.Close()
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ops int64
	)
	never := clientv3.Compare(clientv3.CreateRevision(FillPrefix+"never"), ">", 0)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				octx, cancel := context.WithTimeout(wctx, 2*time.Second)
				_, err := c.Txn(octx).If(never).Then(clientv3.OpPut(FillPrefix+"never", "x")).Commit()
				cancel()
				if err == nil {
					mu.Lock()
					ops++
					mu.Unlock()
				}
			}
		}()
	}
	defer func() {
		stopWriters()
		wg.Wait()
		s.fillOps = ops
	}()
	// Done when every majority member (any of them may lead after the
	// heal) has compacted its raft log past the follower's last entry,
	// as its own log says. The applied-index gap is only for the record
	// (etcd's leader, for one, does not compact for 30s after it sent a
	// snapshot, whatever the gap).
	scans := map[*rig.Member]*compactionScan{}
	for _, m := range majority {
		sc := &compactionScan{path: m.LogPath, pattern: compactedPattern[r.DB()]}
		if fi, err := os.Stat(m.LogPath); err == nil {
			sc.offset = fi.Size()
		}
		scans[m] = sc
	}
	for {
		for _, st := range r.Statuses(ctx, time.Second) {
			if st.Member != s.isolated && st.Err == nil && st.AppliedIndex > s.to {
				s.to = st.AppliedIndex
			}
		}
		done := true
		s.compacted = 0
		for _, m := range majority {
			c := scans[m].scan()
			if s.compacted == 0 || c < s.compacted {
				s.compacted = c
			}
			if c <= s.from {
				done = false
			}
		}
		if done {
			return
		}
		if !sleep(ctx, 250*time.Millisecond) {
			s.fillErr = fmt.Errorf("within %v the majority applied up to raft index %d, %d past the follower, but not every member compacted its log past %d (lowest compaction: %d)", fillFor, s.to, s.to-min(s.to, s.from), s.from, s.compacted)
			return
		}
	}
}

// compactedPattern matches a member's log line saying it compacted its raft
// log up to the captured index: hashicorp/raft in Skiff, etcd's server.
var compactedPattern = map[rig.DB]*regexp.Regexp{
	rig.DBSkiff: regexp.MustCompile(`compacting logs: from=\d+ to=(\d+)`),
	rig.DBEtcd:  regexp.MustCompile(`"compacted Raft logs","compact-index":(\d+)`),
}

// compactionScan follows a log file from an offset and keeps the highest
// compaction index seen.
type compactionScan struct {
	path    string
	pattern *regexp.Regexp
	offset  int64
	max     uint64
}

func (c *compactionScan) scan() uint64 {
	if c.pattern == nil {
		return c.max
	}
	f, err := os.Open(c.path)
	if err != nil {
		return c.max
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return c.max
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return c.max
	}
	// Whole lines only; a partial last line is read again next time.
	end := strings.LastIndexByte(string(data), '\n') + 1
	for _, m := range c.pattern.FindAllStringSubmatch(string(data[:end]), -1) {
		if v, err := strconv.ParseUint(m[1], 10, 64); err == nil && v > c.max {
			c.max = v
		}
	}
	c.offset += int64(end)
	return c.max
}

// Stop waits for the filler (bounded by fillFor from the start), then heals.
func (s *snapshotCatchup) Stop(ctx context.Context, r *rig.Rig) error {
	if s.filled != nil {
		select {
		case <-s.filled:
		case <-ctx.Done():
		}
		s.stopFill()
		<-s.filled
		s.filled = nil
	}
	return s.partition.Stop(ctx, r)
}

// Verify runs after the heal and the convergence measurement: it looks for
// the snapshot install in the isolated member's log and says what happened.
func (s *snapshotCatchup) Verify(ctx context.Context, r *rig.Rig) (string, error) {
	m := s.isolated
	if m == nil {
		return "", nil
	}
	gap := fmt.Sprintf("cut off at raft index %d; at the heal the majority had applied %d and compacted its logs up to at least %d; %d filler entries", s.from, s.to, s.compacted, s.fillOps)
	line := snapshotInstalledLine[r.DB()]
	within := s.verifyWithin
	if within == 0 {
		within = 20 * time.Second
	}
	deadline := time.Now().Add(within)
	for {
		if found, err := logHas(m.LogPath, s.logOffset, line); err != nil {
			return "", err
		} else if found {
			return fmt.Sprintf("%s installed a snapshot from the leader (%s)", m.Name, gap), nil
		}
		if time.Now().After(deadline) || !sleep(ctx, 250*time.Millisecond) {
			break
		}
	}
	why := "the leader still held the entries it missed"
	if s.fillErr != nil {
		why = s.fillErr.Error()
	}
	return "", fmt.Errorf("%s healed without installing a snapshot, so it caught up from the log: the fault degraded (%s; %s; no %q in its log)", m.Name, gap, why, line)
}

func logHas(path string, offset int64, line string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return false, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(data), line), nil
}

// snapshotInstalledLine is what a follower logs once it has restored a
// snapshot sent by the leader: hashicorp/raft in Skiff, etcd's server.
var snapshotInstalledLine = map[rig.DB]string{
	rig.DBSkiff: "Installed remote snapshot",
	rig.DBEtcd:  "applied snapshot",
}

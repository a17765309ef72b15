// Package gossip is Skiff's membership layer: every server and agent joins
// one hashicorp/memberlist pool (SWIM: random probes, indirect probes
// through other members, suspicion before death) and this package turns
// what memberlist learns into a per-node health view — alive, suspect,
// dead, left — with a channel of changes. The node lifecycle controller
// uses it as a hint to mark a node unreachable in seconds; the store stays
// the truth (see DESIGN.md).
package gossip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is the gossip port (`--listen-gossip`), Serf's and Consul's.
const DefaultPort = 7946

// Roles a member announces.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// Errors of Start and Config.Validate.
var (
	// ErrInvalidConfig wraps every Validate error.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrClosed is returned by calls on a closed Pool.
	ErrClosed = errors.New("gossip: pool closed")
)

// State is a member's health as this pool sees it.
type State int

// Member states. Suspect is memberlist's "failed a probe, others asked to
// confirm"; Dead is "suspected for the whole suspicion timeout"; Left is a
// graceful Leave.
const (
	Alive State = iota
	Suspect
	Dead
	Left
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Member is one node of the pool.
type Member struct {
	Name  string // the Node's name (agents) or the server's name
	Role  string // RoleServer or RoleAgent
	Addr  string // host:port of its gossip endpoint
	State State
	Since time.Time // when this pool saw State begin (its own clock)
}

// Event is a change of one member's state (or of its metadata: State ==
// Prev).
type Event struct {
	Member Member
	Prev   State
	New    bool // first time seen; Prev is meaningless
}

// Config configures a Pool.
type Config struct {
	// NodeName is the member's unique name: the Node name of an agent,
	// the member name of a server. Required.
	NodeName string
	// Role is RoleServer or RoleAgent.
	Role string
	// BindAddr and BindPort: where to listen (UDP and TCP). BindPort 0
	// picks a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort: what others dial, if not the bind
	// address (NAT, 0.0.0.0 binds).
	AdvertiseAddr string
	AdvertisePort int
	// Join: host:port of members to join at start and to re-join every
	// RejoinInterval, so that a healed partition merges again.
	Join []string
	// RejoinInterval (default 30s).
	RejoinInterval time.Duration
	// SecretKey encrypts gossip (AES, 16, 24 or 32 bytes); nil: plaintext.
	SecretKey []byte
	// ProbeInterval, ProbeTimeout, SuspicionMult, SuspicionMaxTimeoutMult
	// and GossipInterval tune failure detection (0: Skiff's defaults,
	// DefaultProbeInterval and the others below; see DESIGN.md). A dead
	// member is suspected within a probe round and declared dead
	// SuspicionMult*max(1, log10(N)) probe intervals later when the other
	// members confirm the suspicion, up to SuspicionMaxTimeoutMult times
	// that when they do not (lifeguard).
	ProbeInterval, ProbeTimeout time.Duration
	SuspicionMult               int
	SuspicionMaxTimeoutMult     int
	GossipInterval              time.Duration
	// DeadNodeReclaimTime: after this long dead, a member's name may come
	// back from another address (default 10s; memberlist's default never
	// allows it, which would keep an agent that restarted on a new address
	// out for good).
	DeadNodeReclaimTime time.Duration
	// Logger (default: discard). memberlist's own log lines go to it at
	// their level.
	Logger *slog.Logger
}

// Skiff's failure detection defaults (memberlist's LAN ones are 1s, 500ms,
// 4, 6 and 200ms). Probing twice as often halves the suspicion timeout: a
// dead member of a small pool is declared about 2-3 s after it dies
// instead of 5-7 s. A probe waits 300 ms for a direct answer (round trips
// on a LAN are well under a millisecond; lifeguard stretches it on a
// member that is itself slow), and the suspicion timeout without the
// expected confirmations is 3 times the nominal one rather than 6:
// lifeguard's long unconfirmed timeout guards against a slow member's
// false accusations, and Skiff never acts on gossip alone (the node
// lifecycle controller pings the node through the store first), so a
// false accusation costs a ping, not an eviction. Probes are UDP packets
// of a few dozen bytes: twice a second per member is negligible.
const (
	DefaultProbeInterval           = 500 * time.Millisecond
	DefaultProbeTimeout            = 300 * time.Millisecond
	DefaultSuspicionMult           = 4
	DefaultSuspicionMaxTimeoutMult = 3
	DefaultGossipInterval          = 200 * time.Millisecond
)

// DefaultConfig is a config for name and role on the default port.
func DefaultConfig(name, role string) Config {
	return Config{NodeName: name, Role: role, BindAddr: "0.0.0.0", BindPort: DefaultPort,
		RejoinInterval: 30 * time.Second, DeadNodeReclaimTime: 10 * time.Second}
}

// Validate checks c and the relations between its settings.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...)) }
	switch {
	case c.NodeName == "":
		return bad("NodeName is required")
	case c.Role != RoleServer && c.Role != RoleAgent:
		return bad("Role %q: want %q or %q", c.Role, RoleServer, RoleAgent)
	case c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return bad("ports must be within 0-65535")
	case c.SecretKey != nil && len(c.SecretKey) != 16 && len(c.SecretKey) != 24 && len(c.SecretKey) != 32:
		return bad("SecretKey must be 16, 24 or 32 bytes, not %d", len(c.SecretKey))
	case c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.GossipInterval < 0 || c.RejoinInterval < 0 || c.SuspicionMult < 0 ||
		c.SuspicionMaxTimeoutMult < 0:
		return bad("durations, SuspicionMult and SuspicionMaxTimeoutMult must not be negative")
	case c.probeTimeout() >= c.probeInterval():
		return bad("ProbeTimeout %v must be shorter than ProbeInterval %v", c.probeTimeout(), c.probeInterval())
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return bad("Join address %q: %v", j, err)
		}
	}
	return nil
}

// The failure detection settings, defaulted.
func (c *Config) probeInterval() time.Duration {
	return orDefault(c.ProbeInterval, DefaultProbeInterval)
}

// probeTimeout defaults to DefaultProbeTimeout, or 60% of a shorter probe
// interval.
func (c *Config) probeTimeout() time.Duration {
	return orDefault(c.ProbeTimeout, min(DefaultProbeTimeout, c.probeInterval()*3/5))
}
func (c *Config) suspicionMult() int { return orDefault(c.SuspicionMult, DefaultSuspicionMult) }
func (c *Config) suspicionMaxTimeoutMult() int {
	return orDefault(c.SuspicionMaxTimeoutMult, DefaultSuspicionMaxTimeoutMult)
}
func (c *Config) gossipInterval() time.Duration {
	return orDefault(c.GossipInterval, DefaultGossipInterval)
}

func orDefault[T time.Duration | int](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// meta is what a member carries in memberlist's node metadata.
type meta struct {
	Node string `json:"node"`
	Role string `json:"role"`
	// Leaving is set by Leave just before memberlist's own leave: the
	// node memberlist hands to NotifyLeave does not say whether it left
	// or died (v0.5.4 keeps that in a field it does not export), so the
	// member says so first.
	Leaving bool `json:"leaving,omitempty"`
}

// Pool is this process's membership in the gossip pool and its view of
// every member's health. Safe for concurrent use.
type Pool struct {
	cfg Config
	log *slog.Logger
	ml  *memberlist.Memberlist

	metaMu sync.Mutex
	meta   []byte

	mu      sync.Mutex
	members map[string]*Member
	subs    map[int]chan Event
	fns     map[int]func(node string)
	nextID  int
	dropped int
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Start creates the pool member, joins the members of cfg.Join (a failed
// join is retried every RejoinInterval, not an error: the first server
// starts alone) and starts watching health.
func Start(cfg Config) (*Pool, error) {
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = 30 * time.Second
	}
	if cfg.DeadNodeReclaimTime == 0 {
		cfg.DeadNodeReclaimTime = 10 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, log: lg.With("gossip", cfg.NodeName), members: map[string]*Member{},
		subs: map[int]chan Event{}, fns: map[int]func(string){}, stop: make(chan struct{})}
	m, err := json.Marshal(meta{Node: cfg.NodeName, Role: cfg.Role})
	if err != nil {
		return nil, err
	}
	p.meta = m

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseAddr, cfg.AdvertisePort
	if cfg.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort
	}
	mc.ProbeInterval, mc.ProbeTimeout = cfg.probeInterval(), cfg.probeTimeout()
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = cfg.suspicionMult(), cfg.suspicionMaxTimeoutMult()
	mc.GossipInterval = cfg.gossipInterval()
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.SecretKey = cfg.SecretKey
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.Logger = log.New(&logWriter{log: p.log, suspect: p.suspected}, "", 0)
	mc.Ping = (*pings)(p)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: starting member %s on %s:%d: %w", cfg.NodeName, mc.BindAddr, cfg.BindPort, err)
	}
	p.ml = ml
	if len(cfg.Join) > 0 {
		if n, err := ml.Join(cfg.Join); err != nil {
			p.log.Warn("join failed; retrying in the background", "peers", cfg.Join, "err", err)
		} else {
			p.log.Info("joined", "contacted", n)
		}
	}
	p.wg.Add(2)
	go p.watchSuspects(mc.ProbeInterval, mc.SuspicionMult, mc.SuspicionMaxTimeoutMult)
	go p.rejoin()
	return p, nil
}

// LocalAddr is the host:port other members reach this one at.
func (p *Pool) LocalAddr() string {
	n := p.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members is every member this pool has seen (dead and left ones
// included, until they come back), sorted by name.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Member, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Member is one member's view; false if never seen.
func (p *Pool) Member(name string) (Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.members[name]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// NodeDown reports whether the member named node is dead or has left, and
// since when (this process's clock). It implements the NodeHealth input of
// the node lifecycle controller. A member never seen is not down: gossip
// knows nothing of it, and the heartbeat decides.
func (p *Pool) NodeDown(node string) (bool, time.Time) {
	m, ok := p.Member(node)
	if !ok || (m.State != Dead && m.State != Left) {
		return false, time.Time{}
	}
	return true, m.Since
}

// NodeSuspect reports whether this member's own probe of node failed and
// the suspicion has not ended yet (in death, or in an answer). It
// implements the NodeSuspicion capability of the node lifecycle
// controller's health source, which pings a suspect node through the
// store at once.
func (p *Pool) NodeSuspect(node string) bool {
	m, ok := p.Member(node)
	return ok && m.State == Suspect
}

// OnChange registers fn, called with a member's name whenever its state
// or metadata changes, from memberlist's goroutines: fn must not block.
func (p *Pool) OnChange(fn func(node string)) (stop func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.nextID
	p.nextID++
	p.fns[id] = fn
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.fns, id)
	}
}

// Subscribe returns a channel of member changes with room for buf events
// (at least 1). A subscriber that falls behind loses events rather than
// stalling gossip: Members is the level to resync from. cancel closes the
// channel.
func (p *Pool) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, max(buf, 1))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(ch)
		return ch, func() {}
	}
	id := p.nextID
	p.nextID++
	p.subs[id] = ch
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if c, ok := p.subs[id]; ok {
			delete(p.subs, id)
			close(c)
		}
	}
}

// Leave announces a graceful departure (others see Left at once rather
// than Dead after the suspicion timeout), then closes the pool. timeout
// bounds each of its two broadcasts.
func (p *Pool) Leave(timeout time.Duration) error {
	if p.isClosed() {
		return ErrClosed
	}
	m, err := json.Marshal(meta{Node: p.cfg.NodeName, Role: p.cfg.Role, Leaving: true})
	if err != nil {
		return err
	}
	p.metaMu.Lock()
	p.meta = m
	p.metaMu.Unlock()
	err = p.ml.UpdateNode(timeout)
	err = errors.Join(err, p.ml.Leave(timeout))
	return errors.Join(err, p.Close())
}

// Close stops this member without a goodbye: to the others it is a crash.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	err := p.ml.Shutdown()
	p.wg.Wait()
	p.mu.Lock()
	for id, c := range p.subs {
		delete(p.subs, id)
		close(c)
	}
	p.mu.Unlock()
	return err
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// set records a member's state and metadata from memberlist's view of it.
func (p *Pool) set(n *memberlist.Node, st State) {
	role := ""
	var md meta
	if json.Unmarshal(n.Meta, &md) == nil {
		role = md.Role
	}
	p.update(n.Name, st, func(m *Member) {
		m.Role, m.Addr = role, net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	})
}

// update changes the member name's state (and, with info, its metadata)
// and tells subscribers about any change.
func (p *Pool) update(name string, st State, info func(*Member)) {
	p.mu.Lock()
	m, seen := p.members[name]
	if !seen && info == nil {
		p.mu.Unlock()
		return // a suspect never seen alive: nothing to say
	}
	ev := Event{New: !seen}
	if !seen {
		m = &Member{Name: name}
		p.members[name] = m
	} else {
		ev.Prev = m.State
	}
	before := *m
	m.State = st
	if info != nil {
		info(m)
	}
	if seen && *m == before {
		p.mu.Unlock()
		return
	}
	if !seen || before.State != st {
		m.Since = time.Now()
	}
	ev.Member = *m
	var fns []func(string)
	for _, fn := range p.fns {
		fns = append(fns, fn)
	}
	for _, c := range p.subs {
		select {
		case c <- ev:
		default:
			p.dropped++
		}
	}
	p.mu.Unlock()
	if ev.New || ev.Prev != st {
		p.log.Info("member state", "member", name, "role", m.Role, "addr", ev.Member.Addr, "state", st.String())
	}
	for _, fn := range fns {
		fn(name)
	}
}

// suspected records that this member's probe of name failed. memberlist
// reports suspicion to no delegate, only to its log (the line
// "Suspect NAME has failed, no acks received", stable in v0.5.x), so the
// log writer calls this. Suspicions gossiped by others are not seen here;
// they show as Dead when they end so.
func (p *Pool) suspected(name string) {
	if m, ok := p.Member(name); ok && m.State == Alive {
		p.update(name, Suspect, nil)
	}
}

// watchSuspects ends suspicions that were refuted: memberlist tells no
// delegate when a suspect proves alive, but a suspicion that has not ended
// in death within memberlist's longest suspicion timeout was refuted.
func (p *Pool) watchSuspects(probe time.Duration, mult, maxMult int) {
	defer p.wg.Done()
	t := time.NewTicker(max(probe/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		n := max(len(p.Members()), 1)
		// memberlist: SuspicionMult * max(1, log10(n)) * ProbeInterval,
		// up to SuspicionMaxTimeoutMult times that when unconfirmed.
		scale := max(1, math.Log10(float64(n)))
		longest := time.Duration(float64(maxMult)*float64(mult)*scale*float64(probe)) + 2*probe
		for _, m := range p.Members() {
			if m.State == Suspect && time.Since(m.Since) > longest {
				p.update(m.Name, Alive, nil)
			}
		}
	}
}

// rejoin re-contacts the configured peers and every member known dead or
// left, so two halves of a healed partition find each other again (once
// memberlist has declared the other side dead it stops gossiping to it).
func (p *Pool) rejoin() {
	defer p.wg.Done()
	if p.cfg.RejoinInterval <= 0 {
		return
	}
	t := time.NewTicker(p.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		peers := append([]string(nil), p.cfg.Join...)
		self := p.LocalAddr()
		for _, m := range p.Members() {
			if (m.State == Dead || m.State == Left) && m.Addr != self {
				peers = append(peers, m.Addr)
			}
		}
		if len(peers) == 0 || p.ml.NumMembers() > 1 && len(peers) == len(p.cfg.Join) && p.allAlive() {
			continue
		}
		if n, err := p.ml.Join(peers); err != nil && n == 0 {
			p.log.Debug("rejoin found no peer", "peers", peers, "err", err)
		}
	}
}

func (p *Pool) allAlive() bool {
	for _, m := range p.Members() {
		if m.State != Alive {
			return false
		}
	}
	return true
}

// delegate gives memberlist this member's metadata; no user messages.
type delegate Pool

func (d *delegate) NodeMeta(limit int) []byte {
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events receives memberlist's membership changes.
type events Pool

// Node.State is not maintained by memberlist v0.5.4 (its nodeState
// shadows it): the callback says what happened.
func (e *events) NotifyJoin(n *memberlist.Node)   { (*Pool)(e).set(n, Alive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Pool)(e).set(n, Alive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := Dead
	var md meta
	if json.Unmarshal(n.Meta, &md) == nil && md.Leaving {
		st = Left
	}
	(*Pool)(e).set(n, st)
}

// pings hears of successful probes: a suspect that answers is alive.
type pings Pool

func (pp *pings) AckPayload() []byte { return nil }
func (pp *pings) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	p := (*Pool)(pp)
	if m, ok := p.Member(other.Name); ok && m.State == Suspect {
		p.update(other.Name, Alive, nil)
	}
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*events)(nil)
	_ memberlist.PingDelegate  = (*pings)(nil)
)

// logWriter sends memberlist's log lines ("[WARN] memberlist: ...") to
// slog at their level, and its suspicions to suspect.
type logWriter struct {
	log     *slog.Logger
	suspect func(name string)
}

func (w *logWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
		"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			level, line = l, strings.TrimSpace(rest)
			break
		}
	}
	if rest, ok := strings.CutPrefix(line, "memberlist: Suspect "); ok {
		if name, ok := strings.CutSuffix(rest, " has failed, no acks received"); ok {
			w.suspect(name)
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(b), nil
}

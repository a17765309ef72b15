package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastConfig detects failures in about a second on loopback.
func fastConfig(t *testing.T, name, role string, join ...string) Config {
	c := DefaultConfig(name, role)
	c.BindAddr, c.BindPort = "127.0.0.1", 0
	c.Join = join
	c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.GossipInterval = 100*time.Millisecond, 50*time.Millisecond, 2, 50*time.Millisecond
	c.RejoinInterval = 500 * time.Millisecond
	if testing.Verbose() {
		c.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return c
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// eventually polls check until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = check(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
	return 0
}

func stateIs(p *Pool, name string, want State) func() error {
	return func() error {
		m, ok := p.Member(name)
		if !ok {
			return fmt.Errorf("%s does not know %s", p.cfg.NodeName, name)
		}
		if m.State != want {
			return fmt.Errorf("%s sees %s %s, want %s", p.cfg.NodeName, name, m.State, want)
		}
		return nil
	}
}

// cluster starts a server and three agents joined to it.
func cluster(t *testing.T) []*Pool {
	s := start(t, fastConfig(t, "server-1", RoleServer))
	pools := []*Pool{s}
	for i := 1; i <= 3; i++ {
		pools = append(pools, start(t, fastConfig(t, fmt.Sprintf("node-%d", i), RoleAgent, s.LocalAddr())))
	}
	eventually(t, 10*time.Second, "all members alive everywhere", func() error {
		for _, p := range pools {
			if n := len(p.Members()); n != len(pools) {
				return fmt.Errorf("%s knows %d members", p.cfg.NodeName, n)
			}
			for _, q := range pools {
				if err := stateIs(p, q.cfg.NodeName, Alive)(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return pools
}

func TestMembersCarryRole(t *testing.T) {
	pools := cluster(t)
	for _, m := range pools[3].Members() {
		want := RoleAgent
		if m.Name == "server-1" {
			want = RoleServer
		}
		if m.Role != want || m.Addr == "" {
			t.Errorf("member %+v: want role %s and an address", m, want)
		}
	}
}

func TestStoppedMemberDetectedDead(t *testing.T) {
	pools := cluster(t)
	events, cancel := pools[0].Subscribe(64)
	defer cancel()
	var mu sync.Mutex
	var changed []string
	stop := pools[0].OnChange(func(node string) { mu.Lock(); changed = append(changed, node); mu.Unlock() })
	defer stop()

	victim := pools[2]
	if err := victim.Close(); err != nil { // a crash: no goodbye
		t.Fatalf("close: %v", err)
	}
	took := eventually(t, 10*time.Second, "crashed member dead everywhere", func() error {
		for _, p := range []*Pool{pools[0], pools[1], pools[3]} {
			if err := stateIs(p, "node-2", Dead)(); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("crash detected everywhere after %v", took)
	down, since := pools[0].NodeDown("node-2")
	if !down || since.IsZero() {
		t.Errorf("NodeDown(node-2) = %v, %v; want true since the death", down, since)
	}
	if down, _ := pools[0].NodeDown("node-1"); down {
		t.Errorf("NodeDown(node-1) = true for a live member")
	}
	if down, _ := pools[0].NodeDown("never-seen"); down {
		t.Errorf("NodeDown of an unknown node = true")
	}
	// The events channel told the story: (maybe suspect, then) dead.
	deadline := time.After(5 * time.Second)
	for dead := false; !dead; {
		select {
		case ev := <-events:
			if ev.Member.Name != "node-2" {
				continue
			}
			switch ev.Member.State {
			case Dead:
				dead = true
			case Suspect:
			default:
				t.Errorf("unexpected event %+v", ev)
			}
		case <-deadline:
			t.Fatal("no Dead event for node-2")
		}
	}
	mu.Lock()
	if !strings.Contains(strings.Join(changed, ","), "node-2") {
		t.Errorf("OnChange never called for node-2: %v", changed)
	}
	mu.Unlock()

	// A member that leaves says so: Left, at once.
	if err := pools[3].Leave(time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	eventually(t, 5*time.Second, "left member seen left", stateIs(pools[0], "node-3", Left))
	if down, _ := pools[1].NodeDown("node-3"); !down {
		eventually(t, 5*time.Second, "left member down for node-1", stateIs(pools[1], "node-3", Left))
	}

	// The crashed member comes back on its address: alive again.
	back := victim.cfg
	back.BindPort = int(victim.ml.LocalNode().Port)
	back.Join = []string{pools[0].LocalAddr()}
	start(t, back)
	eventually(t, 10*time.Second, "restarted member alive again", func() error {
		for _, p := range []*Pool{pools[0], pools[1]} {
			if err := stateIs(p, "node-2", Alive)(); err != nil {
				return err
			}
		}
		return nil
	})
	if down, _ := pools[0].NodeDown("node-2"); down {
		t.Errorf("NodeDown(node-2) after its return = true")
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig("n1", RoleAgent)
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no name":                            func(c *Config) { c.NodeName = "" },
		"bad role":                           func(c *Config) { c.Role = "worker" },
		"bad key":                            func(c *Config) { c.SecretKey = []byte("short") },
		"bad port":                           func(c *Config) { c.BindPort = 70000 },
		"timeout":                            func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second },
		"join address":                       func(c *Config) { c.Join = []string{"no-port"} },
		"negative mult":                      func(c *Config) { c.SuspicionMult = -1 },
		"negative max":                       func(c *Config) { c.SuspicionMaxTimeoutMult = -1 },
		"timeout above the default interval": func(c *Config) { c.ProbeTimeout = time.Second },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestDefaultDetection: with Skiff's default failure detection (500ms
// probes, 300ms probe timeout, suspicion x4, unconfirmed x3), four members
// on loopback stay alive to each other for 8 s on whatever load the
// machine has (no false death), then a crashed one is suspected by a
// prober and dead everywhere well within the node-loss budget: the
// suspicion timeout is 2 s, 6 s at most unconfirmed, plus a probe round.
func TestDefaultDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("18 s of real gossip timing")
	}
	mk := func(name, role string, join ...string) Config {
		c := DefaultConfig(name, role)
		c.BindAddr, c.BindPort, c.Join = "127.0.0.1", 0, join
		return c
	}
	s := start(t, mk("server-1", RoleServer))
	pools := []*Pool{s}
	for i := 1; i <= 3; i++ {
		pools = append(pools, start(t, mk(fmt.Sprintf("node-%d", i), RoleAgent, s.LocalAddr())))
	}
	eventually(t, 10*time.Second, "all members alive everywhere", func() error {
		for _, p := range pools {
			for _, q := range pools {
				if err := stateIs(p, q.cfg.NodeName, Alive)(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var mu sync.Mutex
	var falseDeaths, suspects []string
	for _, p := range pools {
		ch, cancel := p.Subscribe(256)
		defer cancel()
		go func() {
			for ev := range ch {
				mu.Lock()
				switch ev.Member.State {
				case Dead, Left:
					falseDeaths = append(falseDeaths, p.cfg.NodeName+" saw "+ev.Member.Name+" "+ev.Member.State.String())
				case Suspect:
					suspects = append(suspects, p.cfg.NodeName+" suspected "+ev.Member.Name)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(8 * time.Second) // watching for false deaths, not waiting for a state
	mu.Lock()
	if len(falseDeaths) > 0 {
		t.Errorf("live members declared dead with the default timing: %v", falseDeaths)
	}
	if len(suspects) > 0 {
		t.Logf("suspicions of live members (refuted): %v", suspects)
	}
	mu.Unlock()

	victim := pools[3]
	if err := victim.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	suspected := false
	took := eventually(t, 10*time.Second, "crashed member dead everywhere", func() error {
		for _, p := range pools[:3] {
			suspected = suspected || p.NodeSuspect("node-3")
		}
		for _, p := range pools[:3] {
			if err := stateIs(p, "node-3", Dead)(); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("crash detected everywhere after %v (suspected by a prober first: %v)", took.Round(10*time.Millisecond), suspected)
	if took > 8*time.Second {
		t.Errorf("crash detected after %v with the defaults, want within the unconfirmed suspicion timeout (6s) and a probe round", took)
	}
	if pools[0].NodeSuspect("node-3") || pools[0].NodeSuspect("node-1") {
		t.Error("NodeSuspect true for a dead or a live member")
	}
}

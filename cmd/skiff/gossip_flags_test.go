package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/gossip"
)

func TestGossipFlags(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		defHost    string
		defJoin    []string
		wantBind   string
		wantPort   int
		wantAdv    string
		wantJoin   []string
		wantFallbk bool
		wantErr    string
		wantNil    bool
	}{
		{name: "defaults: the other listeners' host, port 7946, the servers' hosts", defHost: "10.0.0.1",
			defJoin: gossipAddrsOf("https://10.0.0.2:6443", "10.0.0.3:2380"), wantBind: "10.0.0.1", wantPort: 7946,
			wantJoin: []string{"10.0.0.2:7946", "10.0.0.3:7946"}, wantFallbk: true},
		{name: "wildcard host", wantBind: "0.0.0.0", wantPort: 7946, wantFallbk: true},
		{name: "explicit listen and join", args: []string{"--listen-gossip", "127.0.0.1:17946", "--gossip-join", "a.example:1,10.0.0.9"},
			wantBind: "127.0.0.1", wantPort: 17946, wantJoin: []string{"a.example:1", "10.0.0.9:7946"}},
		{name: "advertise with and without port", args: []string{"--advertise-gossip", "192.0.2.7:9000"}, wantBind: "0.0.0.0",
			wantPort: 7946, wantAdv: "192.0.2.7", wantFallbk: true},
		{name: "disabled", args: []string{"--disable-gossip"}, wantNil: true},
		{name: "listen without port", args: []string{"--listen-gossip", "10.0.0.1"}, wantErr: `--listen-gossip "10.0.0.1": want host:port`},
		{name: "listen port out of range", args: []string{"--listen-gossip", ":70000"}, wantErr: `port "70000" is not a number in 0-65535`},
		{name: "advertise a name", args: []string{"--advertise-gossip", "node-1"}, wantErr: "--advertise-gossip \"node-1\": want an IP address"},
		{name: "probe timeout not below the interval", args: []string{"--gossip-probe-interval", "200ms"},
			wantErr: "--gossip-probe-timeout 300ms must be positive and shorter than --gossip-probe-interval 200ms"},
		{name: "no suspicion", args: []string{"--gossip-suspicion-mult", "0"}, wantErr: "--gossip-suspicion-mult 0 must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g gossipFlags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			g.register(fs, "x", "y")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, fallback, err := g.config("n1", gossip.RoleAgent, tc.defHost, tc.defJoin)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if cfg != nil {
					t.Fatalf("config %+v, want none", cfg)
				}
				return
			}
			if cfg.BindAddr != tc.wantBind || cfg.BindPort != tc.wantPort || cfg.AdvertiseAddr != tc.wantAdv ||
				!reflect.DeepEqual(cfg.Join, tc.wantJoin) || fallback != tc.wantFallbk {
				t.Errorf("bind %s:%d advertise %q join %v fallback %v; want %s:%d %q %v %v", cfg.BindAddr, cfg.BindPort, cfg.AdvertiseAddr,
					cfg.Join, fallback, tc.wantBind, tc.wantPort, tc.wantAdv, tc.wantJoin, tc.wantFallbk)
			}
			if cfg.NodeName != "n1" || cfg.Role != gossip.RoleAgent {
				t.Errorf("member %s/%s, want n1/agent", cfg.NodeName, cfg.Role)
			}
		})
	}
}

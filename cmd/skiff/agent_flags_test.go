package main

import (
	"testing"

	"github.com/spf13/pflag"
)

// The agent flags reach the node config: the Ingress router is on by
// default on 80/443, moved by --ingress-http(s)-port, off with
// --disable-ingress; proxy and DNS likewise.
func TestAgentFlagsIngress(t *testing.T) {
	for _, tc := range []struct {
		args                []string
		ingress, proxy, dns bool
		httpPort, httpsPort int
	}{
		{nil, true, true, true, 80, 443},
		{[]string{"--ingress-http-port", "8080", "--ingress-https-port", "0"}, true, true, true, 8080, 0},
		{[]string{"--disable-ingress", "--disable-proxy", "--disable-dns"}, false, false, false, 80, 443},
	} {
		var af agentFlags
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		af.register(fs, "/var/lib/skiff/agent")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := af.config(nil, nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.Ingress != tc.ingress || cfg.Proxy != tc.proxy || cfg.DNS != tc.dns ||
			cfg.IngressHTTPPort != tc.httpPort || cfg.IngressHTTPSPort != tc.httpsPort {
			t.Errorf("%v: Ingress %v (%d/%d), Proxy %v, DNS %v; want Ingress %v (%d/%d), Proxy %v, DNS %v", tc.args,
				cfg.Ingress, cfg.IngressHTTPPort, cfg.IngressHTTPSPort, cfg.Proxy, cfg.DNS,
				tc.ingress, tc.httpPort, tc.httpsPort, tc.proxy, tc.dns)
		}
	}
}

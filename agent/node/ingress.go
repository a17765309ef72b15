package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/ingress"
)

// ingressShutdownGrace is how long requests in flight get when the agent
// stops before their connections are cut.
const ingressShutdownGrace = 5 * time.Second

// startIngress runs the Ingress router (Config.Ingress) on every address of
// the node. The ports are taken here, before anything else of the router
// starts, so that a port another program holds fails Start with an error
// naming the port and the flag that moves it, rather than a log line later.
// Services and Endpoints come from the caches the proxy and DNS share;
// the caller runs those two informers, after this returns. Everything else
// runs until runCtx ends.
func (a *Agent) startIngress(runCtx context.Context, svcInf, epInf *client.Informer) error {
	cfg := a.cfg
	ingInf, err := client.NewInformer(cfg.Client, "", &networkingv1.Ingress{}, client.ListOptions{}, 0)
	if err != nil {
		return err
	}
	secInf, err := client.NewInformer(cfg.Client, "", &corev1.Secret{}, client.ListOptions{}, 0)
	if err != nil {
		return err
	}
	httpLn, err := listenIngress("HTTP", cfg.IngressHTTPPort, "--ingress-http-port")
	if err != nil {
		return err
	}
	var httpsLn net.Listener
	if cfg.IngressHTTPSPort != 0 {
		if httpsLn, err = listenIngress("HTTPS", cfg.IngressHTTPSPort, "--ingress-https-port"); err != nil {
			httpLn.Close()
			return err
		}
	}
	log := a.log.With("component", "ingress")
	rcfg := ingress.DefaultConfig()
	rcfg.HTTPAddr, rcfg.HTTPSAddr = httpLn.Addr().String(), ""
	if httpsLn != nil {
		rcfg.HTTPSAddr = httpsLn.Addr().String()
	}
	rcfg.Logger = log
	r := ingress.New(rcfg, ingInf, svcInf, epInf, secInf)
	for _, inf := range []*client.Informer{ingInf, svcInf, epInf, secInf} {
		inf.AddHandler(r.Handler())
	}
	a.goRun(func() { a.runLogged(runCtx, "ingress informer", ingInf.Run) })
	a.goRun(func() { a.runLogged(runCtx, "secret informer", secInf.Run) })
	a.goRun(func() { r.RunRebuilds(runCtx) })

	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug) // TLS handshake failures and the like
	servers := []*http.Server{{Handler: r, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}}
	lns := []net.Listener{httpLn}
	if httpsLn != nil {
		tlsCfg := r.TLSConfig()
		servers = append(servers, &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog, TLSConfig: tlsCfg})
		lns = append(lns, tls.NewListener(httpsLn, tlsCfg))
	}
	a.goRun(func() { serveUntil(runCtx, servers, lns, log) })
	a.ingressAddrs = append([]string(nil), rcfg.HTTPAddr, rcfg.HTTPSAddr)
	log.Info("ingress router serving", "http", rcfg.HTTPAddr, "https", rcfg.HTTPSAddr, "class", rcfg.ClassName)
	return nil
}

// listenIngress listens on port on every address of the node.
func listenIngress(scheme string, port int, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("ingress %s port %d is already in use by another program: free it, choose another port with %s, or turn the router off with --disable-ingress (%w)",
			scheme, port, flag, err)
	}
	return nil, fmt.Errorf("ingress %s port %d (%s): %w", scheme, port, flag, err)
}

// serveUntil serves each server on its listener until ctx ends, then shuts
// them down: requests in flight get ingressShutdownGrace, then their
// connections are closed.
func serveUntil(ctx context.Context, servers []*http.Server, lns []net.Listener, log *slog.Logger) {
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("ingress listener stopped", "address", lns[i].Addr().String(), "err", err)
			}
		}()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), ingressShutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			_ = s.Close()
		}
	}
	wg.Wait()
}

// IngressAddrs are the addresses the Ingress router listens on (HTTP, then
// HTTPS, "" when it serves none), or nil without Config.Ingress.
func (a *Agent) IngressAddrs() []string { return a.ingressAddrs }

// Command benchhttpd is the HTTP server of the network benchmark
// (agent/node/bench_net_test.go, `make bench-net`). busybox httpd, the
// test image's server, forks a process per request and closes every
// connection, so a figure taken through it measures fork and exec more
// than the network path; this server answers from one process with
// keep-alive. The benchmark builds it statically (CGO_ENABLED=0) and puts
// it in an image of its own; it is not part of the skiff binary.
//
// It answers every path with 200 and one line naming the pod (hostname),
// listens on $PORT (default 80), and exits on SIGTERM: as PID 1 of a
// container it would otherwise ignore the signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "80"
	}
	host, _ := os.Hostname()
	body := []byte("skiff benchhttpd: hostname=" + host + "\n")
	srv := &http.Server{
		Addr: ":" + port,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Fprintf(os.Stderr, "skiff benchhttpd: hostname=%s port=%s\n", host, port)
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "skiff benchhttpd:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "skiff benchhttpd: shutdown:", err)
	}
}

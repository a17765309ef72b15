package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics are per member (own registry), so several members can live in one
// process (tests).
type metrics struct {
	reg           *prometheus.Registry
	leaderChanges prometheus.Counter
	applyLatency  prometheus.Histogram
	applyBatch    prometheus.Histogram
	fsyncLatency  prometheus.Histogram
	requests      *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "skiff", Subsystem: "raft", Name: name, Help: help}, fn)
	}
	raftVal := func(fn func(r *raft.Raft) uint64) func() float64 {
		return func() float64 {
			if s.raft == nil {
				return 0
			}
			return float64(fn(s.raft))
		}
	}
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "skiff", Subsystem: "raft", Name: "leader_changes_total", Help: "Leader changes seen by this member (a new leader known)."})
	m.applyLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "skiff", Subsystem: "fsm", Name: "apply_batch_seconds", Help: "Time to apply one batch of committed entries.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)})
	m.applyBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "skiff", Subsystem: "fsm", Name: "apply_batch_entries", Help: "Entries per applied batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	m.fsyncLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "skiff", Subsystem: "disk", Name: "log_store_seconds", Help: "Time to append (and fsync) log entries to the raft log store (boltdb or wal).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "skiff", Subsystem: "grpc", Name: "requests_total", Help: "etcd API requests by method and gRPC code."}, []string{"method", "code"})
	m.reg.MustRegister(
		f("term", "Current Raft term.", raftVal((*raft.Raft).CurrentTerm)),
		f("commit_index", "Raft commit index.", raftVal((*raft.Raft).CommitIndex)),
		f("last_index", "Last Raft log index.", raftVal((*raft.Raft).LastIndex)),
		f("applied_index", "Index applied to the state machine.", func() float64 { return float64(s.fsm.applied.Load()) }),
		f("is_leader", "1 when this member leads.", func() float64 {
			if s.IsLeader() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "skiff", Subsystem: "mvcc", Name: "revision", Help: "Current store revision."}, func() float64 { return float64(s.fsm.kv().Rev()) }),
		m.leaderChanges, m.applyLatency, m.applyBatch, m.fsyncLatency, m.requests,
		collectors.NewGoCollector(),
	)
	return m
}

func (m *metrics) observeApply(d time.Duration, n int) {
	m.applyLatency.Observe(d.Seconds())
	m.applyBatch.Observe(float64(n))
}

func (m *metrics) observeFsync(d time.Duration) { m.fsyncLatency.Observe(d.Seconds()) }

func (m *metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	m.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

func (m *metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	m.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return err
}

func (s *Server) startMetrics() error {
	ln, err := listen(s.cfg.ListenMetrics, "--listen-metrics")
	if err != nil {
		return err
	}
	s.metricsAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("metrics server stopped", "err", fmt.Sprint(err))
		}
	}()
	return nil
}

// timedLogStore times appends to the log store: each StoreLogs is one
// write ending in an fsync, the latency that bounds write throughput.
type timedLogStore struct {
	raft.LogStore
	observe func(time.Duration)
}

func (t *timedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := t.LogStore.StoreLogs(logs)
	t.observe(time.Since(start))
	return err
}

func (t *timedLogStore) StoreLog(l *raft.Log) error { return t.StoreLogs([]*raft.Log{l}) }

// IsMonotonic passes the store's capability (raft-wal has it, raft-boltdb
// does not) through the wrapper: raft must
// know the store cannot hold gaps, so that installing a snapshot clears the
// log instead of compacting it (which would leave a gap before the next
// append). Hiding it broke snapshot catch-up.
func (t *timedLogStore) IsMonotonic() bool {
	m, ok := t.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

var _ raft.MonotonicLogStore = (*timedLogStore)(nil)

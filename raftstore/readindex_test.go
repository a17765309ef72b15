package raftstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestReadIndexBatching: while one leadership confirmation is in flight,
// every read that arrives joins the next batch, so many concurrent reads
// cost a couple of quorum rounds, not one each.
func TestReadIndexBatching(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	release := make(chan struct{})
	ri := &readIndexer{
		reqs:     make(chan readReq, readBatchMax),
		stopped:  ctx.Done(),
		isLeader: func() bool { return true },
		leaderIndex: func(ctx context.Context) (uint64, error) {
			n := calls.Add(1)
			if n == 1 {
				<-release // the first round is slow; reads pile up behind it
			}
			return uint64(100 + n), nil
		},
		remoteIndex: func(context.Context) (uint64, error) { return 0, errors.New("not used") },
	}
	var loop sync.WaitGroup
	loop.Add(1)
	go func() { defer loop.Done(); ri.run(ctx) }()

	const readers = 200
	var wg sync.WaitGroup
	got := make([]uint64, readers)
	errs := make([]error, readers)
	first := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(first)
		got[0], errs[0] = ri.request(ctx, false)
	}()
	<-first
	// Wait until the first round is in flight, then queue the rest.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first read-index round never started")
		}
		time.Sleep(time.Millisecond) // polling a counter, not synchronising on time
	}
	for i := 1; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = ri.request(ctx, false)
		}(i)
	}
	for len(ri.reqs) < readers-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d reads queued, want %d", len(ri.reqs), readers-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	cancel()
	loop.Wait()

	if n := calls.Load(); n != 2 {
		t.Errorf("leadership confirmations for %d reads: got %d, want 2 (one slow round, one batch)", readers, n)
	}
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("read %d: %v", i, errs[i])
		}
	}
	if got[0] != 101 {
		t.Errorf("first read index: got %d, want 101", got[0])
	}
	for i := 1; i < readers; i++ {
		if got[i] != 102 {
			t.Fatalf("read %d index: got %d, want 102 (taken after it arrived)", i, got[i])
		}
	}
}

// TestReadIndexFollowerRefusesForwarded: a member that is not the leader
// answers forwarded read-index requests with ErrGRPCNotLeader instead of
// forwarding them again, and asks the leader for its own reads.
func TestReadIndexFollowerRefusesForwarded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var remote atomic.Int32
	ri := &readIndexer{
		reqs:        make(chan readReq, 16),
		stopped:     ctx.Done(),
		isLeader:    func() bool { return false },
		leaderIndex: func(context.Context) (uint64, error) { return 0, errors.New("not leader") },
		remoteIndex: func(context.Context) (uint64, error) { remote.Add(1); return 7, nil },
	}
	var loop sync.WaitGroup
	loop.Add(1)
	go func() { defer loop.Done(); ri.run(ctx) }()
	defer func() { cancel(); loop.Wait() }()

	if _, err := ri.request(ctx, true); !errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		t.Fatalf("forwarded read on a follower: got %v, want ErrGRPCNotLeader", err)
	}
	idx, err := ri.request(ctx, false)
	if err != nil || idx != 7 {
		t.Fatalf("local read on a follower: got %d, %v; want the leader's index 7", idx, err)
	}
	if remote.Load() != 1 {
		t.Fatalf("remote read-index calls: got %d, want 1", remote.Load())
	}
}

package raftstore

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A heartbeat being handled when Close fences the transport finishes before
// fence returns, and heartbeats after it never reach Raft.
func TestHeartbeatGuardFenceWaitsAndRefuses(t *testing.T) {
	g := &heartbeatGuard{}
	entered := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	h := g.guard(func(rpc raft.RPC) {
		calls++
		if calls == 1 {
			close(entered)
			<-release
		}
		rpc.Respond(&raft.AppendEntriesResponse{}, nil)
	})

	first := make(chan raft.RPCResponse, 1)
	go h(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: first})
	<-entered

	fenced := make(chan struct{})
	go func() {
		g.fence()
		close(fenced)
	}()
	select {
	case <-fenced:
		t.Fatal("fence returned while a heartbeat was still being handled")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-fenced:
	case <-time.After(10 * time.Second):
		t.Fatal("fence did not return after the heartbeat finished")
	}
	if r := <-first; r.Error != nil {
		t.Fatalf("in-flight heartbeat answered %v, want success", r.Error)
	}

	late := make(chan raft.RPCResponse, 1)
	h(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: late})
	if calls != 1 {
		t.Fatalf("handler ran %d times, want 1: a heartbeat after fence reached Raft", calls)
	}
	if r := <-late; !errors.Is(r.Error, raft.ErrTransportShutdown) {
		t.Fatalf("heartbeat after fence answered %v, want %v", r.Error, raft.ErrTransportShutdown)
	}
}

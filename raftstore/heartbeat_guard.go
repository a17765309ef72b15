package raftstore

import (
	"sync"

	"github.com/hashicorp/raft"
)

// heartbeatGuard wraps the Raft transport so that heartbeats cannot reach
// a closed log store.
//
// hashicorp/raft handles heartbeats on the transport's connection
// goroutines, outside the goroutines Raft.Shutdown waits for: a heartbeat
// that passed Raft's shutdown check just before Shutdown can still be
// writing the current term after Shutdown returned, and Raft panics when
// that write fails because Close has already closed the store. fence makes
// later heartbeats fail and waits for any still running, so Close calls it
// between Shutdown and closing the stores.
type heartbeatGuard struct {
	*raft.NetworkTransport

	mu     sync.RWMutex
	fenced bool
}

// SetHeartbeatHandler installs cb behind the guard.
func (g *heartbeatGuard) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(g.guard(cb))
}

func (g *heartbeatGuard) guard(cb func(rpc raft.RPC)) func(rpc raft.RPC) {
	return func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.fenced {
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		cb(rpc)
	}
}

// fence refuses heartbeats from now on and returns once none is running.
func (g *heartbeatGuard) fence() {
	g.mu.Lock()
	g.fenced = true
	g.mu.Unlock()
}

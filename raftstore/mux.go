package raftstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The peer port carries two protocols: Raft's own transport and the gRPC
// PeerService. Each connection announces itself with one byte before anything
// else, so both can share one address (one flag, one firewall rule):
const (
	muxRaft byte = 'R'
	muxGRPC byte = 'G'
)

// muxHandshakeTimeout bounds how long an accepted connection may take to send
// its protocol byte, so a silent client cannot pin an accept goroutine.
const muxHandshakeTimeout = 10 * time.Second

// peerMux accepts connections on the peer listener and hands each one, after
// reading its protocol byte, to the Raft stream layer or the gRPC listener.
type peerMux struct {
	ln   net.Listener
	raft chan net.Conn
	grpc chan net.Conn

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newPeerMux(ln net.Listener) *peerMux {
	m := &peerMux{
		ln:   ln,
		raft: make(chan net.Conn),
		grpc: make(chan net.Conn),
		done: make(chan struct{}),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *peerMux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads the protocol byte and delivers the connection. It runs once
// per accepted connection (connections are pooled and long-lived on both
// sides, so this is not a hot path).
func (m *peerMux) route(c net.Conn) {
	defer m.wg.Done()
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var ch chan net.Conn
	switch b[0] {
	case muxRaft:
		ch = m.raft
	case muxGRPC:
		ch = m.grpc
	default:
		c.Close()
		return
	}
	select {
	case ch <- c:
	case <-m.done:
		c.Close()
	}
}

// Close stops accepting and closes the listener; connections already handed
// out belong to their consumers.
func (m *peerMux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.wg.Wait()
	})
	return err
}

func (m *peerMux) accept(ch chan net.Conn, closed chan struct{}) (net.Conn, error) {
	select {
	case c := <-ch:
		return c, nil
	case <-closed:
		return nil, net.ErrClosed
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// dialPeer connects to a member's peer port and announces the protocol.
func dialPeer(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// raftStream is the raft.StreamLayer over the mux.
type raftStream struct {
	m         *peerMux
	advertise net.Addr
	closed    chan struct{}
	once      sync.Once
}

var _ raft.StreamLayer = (*raftStream)(nil)

func (s *raftStream) Accept() (net.Conn, error) { return s.m.accept(s.m.raft, s.closed) }
func (s *raftStream) Addr() net.Addr            { return s.advertise }
func (s *raftStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialPeer(ctx, string(address), muxRaft)
}

// grpcListener hands the mux's gRPC connections to a grpc.Server.
type grpcListener struct {
	m      *peerMux
	closed chan struct{}
	once   sync.Once
}

func (l *grpcListener) Accept() (net.Conn, error) { return l.m.accept(l.m.grpc, l.closed) }
func (l *grpcListener) Addr() net.Addr            { return l.m.ln.Addr() }
func (l *grpcListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// advertiseAddr is a net.Addr for an advertised host:port that may not be a
// local interface address.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

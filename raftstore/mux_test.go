package raftstore

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestPeerMuxRoutesByFirstByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newPeerMux(ln)
	defer m.Close()
	rs := &raftStream{m: m, advertise: advertiseAddr(ln.Addr().String()), closed: make(chan struct{})}
	gl := &grpcListener{m: m, closed: make(chan struct{})}
	addr := ln.Addr().String()

	for _, tc := range []struct {
		name   string
		proto  byte
		accept func() (net.Conn, error)
	}{
		{"raft", muxRaft, rs.Accept},
		{"grpc", muxGRPC, gl.Accept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := dialPeer(ctx, addr, tc.proto)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			s, err := tc.accept()
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			defer s.Close()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("read after protocol byte: got %q, %v; want hello", buf, err)
			}
		})
	}

	t.Run("unknown protocol is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{'X'}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read on a connection with an unknown protocol byte: got %v, want EOF (closed by the mux)", err)
		}
	})

	t.Run("raft dial through the stream layer", func(t *testing.T) {
		c, err := rs.Dial(raft.ServerAddress(addr), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := rs.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})

	t.Run("close ends accepts", func(t *testing.T) {
		rs.Close()
		if _, err := rs.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after stream close: got %v, want net.ErrClosed", err)
		}
		m.Close()
		if _, err := gl.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after mux close: got %v, want net.ErrClosed", err)
		}
	})
}

package raftstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkPut measures puts through the leader and through a follower
// with 1 and 64 concurrent clients on an in-process 3-member cluster (the
// process-level comparison with etcd is `skiff bench store`).
func BenchmarkPut(b *testing.B) {
	for _, via := range []string{"leader", "follower"} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("via=%s/clients=%d", via, clients), func(b *testing.B) {
				benchPut(b, via, clients)
			})
		}
	}
}

func benchPut(b *testing.B, via string, clients int) {
	ms := benchCluster(b)
	leader, followers := func() (*Server, []*Server) {
		for {
			for i, m := range ms {
				if m.IsLeader() {
					rest := append(append([]*Server(nil), ms[:i]...), ms[i+1:]...)
					return m, rest
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	target := leader
	if via == "follower" {
		target = followers[0]
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{target.ClientAddr()}, Logger: nopLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/clients + 1
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := c.Put(ctx, fmt.Sprintf("k%d", w), "value"); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

func benchCluster(b *testing.B) []*Server {
	var ms []*Server
	for i := 0; i < 3; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.DataDir = b.TempDir()
		cfg.ListenClient = "127.0.0.1:0"
		cfg.ListenPeer = "127.0.0.1:0"
		if i > 0 {
			cfg.Join = []string{ms[0].PeerAddr()}
		}
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := s.WaitLeader(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.Cleanup(func() { s.Close() })
		ms = append(ms, s)
	}
	return ms
}

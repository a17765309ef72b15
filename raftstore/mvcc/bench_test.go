package mvcc

import (
	"bytes"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

var benchValue = make([]byte, 256)

func benchKey(i int) []byte { return []byte(fmt.Sprintf("/registry/pods/default/pod-%07d", i)) }

// BenchmarkPut: puts over 10k keys (so most are updates), as the raft FSM
// applies them.
func BenchmarkPut(b *testing.B) {
	s := New(Options{})
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Put(&pb.PutRequest{Key: keys[i%len(keys)], Value: benchValue}); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 9999 {
			// Keep history bounded as auto-compaction would.
			if err := s.Compact(s.Rev() - 1000); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkTxnCAS: compare mod revision and put, the API server's update.
func BenchmarkTxnCAS(b *testing.B) {
	s := New(Options{})
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = benchKey(i)
		mustPut(b, s, string(keys[i]), "x")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		mod := get(b, s, &pb.RangeRequest{Key: k}).Kvs[0].ModRevision
		resp, _, err := s.Txn(&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: k, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: mod}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: benchValue}}}},
		})
		if err != nil || !resp.Succeeded {
			b.Fatalf("cas: %v %v", resp, err)
		}
	}
}

func rangeBenchStore(b *testing.B) *Store {
	s := New(Options{})
	for i := 0; i < 10000; i++ {
		if _, _, err := s.Put(&pb.PutRequest{Key: benchKey(i), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkRange: single-key gets over 10k keys.
func BenchmarkRange(b *testing.B) {
	s := rangeBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := s.Range(&pb.RangeRequest{Key: benchKey(i % 10000)})
		if err != nil || len(resp.Kvs) != 1 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkRangePrefix100: a 100-key prefix list, like listing a namespace.
func BenchmarkRangePrefix100(b *testing.B) {
	s := rangeBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := (i % 99) * 100
		resp, err := s.Range(&pb.RangeRequest{Key: benchKey(start), RangeEnd: benchKey(start + 100)})
		if err != nil || len(resp.Kvs) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkRangeParallel: concurrent single-key gets (read lock sharing).
func BenchmarkRangeParallel(b *testing.B) {
	s := rangeBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		i := 0
		for pb_.Next() {
			if _, err := s.Range(&pb.RangeRequest{Key: benchKey(i % 10000)}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkEventsCatchUp: a watcher replaying 100 events from history.
func BenchmarkEventsCatchUp(b *testing.B) {
	s := rangeBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := int64(2 + (i%90)*100)
		evs, _, err := s.Events(from, []byte("/registry/"), []byte("/registry0"), true, 100)
		if err != nil || len(evs) != 100 {
			b.Fatal(len(evs), err)
		}
	}
}

// BenchmarkSnapshotWriteRestore: encode and decode a 10k-key store with
// some history (what a raft snapshot and a follower's install cost).
func BenchmarkSnapshotWriteRestore(b *testing.B) {
	s := rangeBenchStore(b)
	for i := 0; i < 10000; i += 3 {
		if _, _, err := s.Put(&pb.PutRequest{Key: benchKey(i), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if _, err := s.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
		if _, err := Restore(bytes.NewReader(buf.Bytes()), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotTake: the O(1) image plus the copy-on-write cost it
// adds to the next 100 writes.
func BenchmarkSnapshotTake(b *testing.B) {
	s := rangeBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = s.Snapshot()
		for j := 0; j < 100; j++ {
			if _, _, err := s.Put(&pb.PutRequest{Key: benchKey((i*100 + j) % 10000), Value: benchValue}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

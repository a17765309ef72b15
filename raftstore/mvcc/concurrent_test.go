package mvcc

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestConcurrentReaders runs readers against a writing store under -race
// and checks that every read sees a whole revision: the writer puts the
// same revision-stamped value to two keys in one txn, so a reader that sees
// them differ saw half a txn.
func TestConcurrentReaders(t *testing.T) {
	s := New(Options{})
	const writes = 1500
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			var last int64
			for !done.Load() {
				resp, err := s.Range(&pb.RangeRequest{Key: []byte("pair/"), RangeEnd: []byte("pair0")})
				if err != nil {
					report(err)
					return
				}
				if len(resp.Kvs) == 2 && string(resp.Kvs[0].Value) != string(resp.Kvs[1].Value) {
					report(fmt.Errorf("reader %d saw half a txn: %v", r, keysOf(resp.Kvs)))
					return
				}
				rev := s.Rev()
				if rev < last {
					report(fmt.Errorf("reader %d: revision went backwards: %d after %d", r, rev, last))
					return
				}
				last = rev
				switch r {
				case 0:
					if _, _, err := s.Events(s.CompactRev()+1, []byte("pair/"), []byte("pair0"), true, 10); err != nil && err != ErrCompacted {
						report(err)
						return
					}
				case 1:
					if _, _, _, err := s.HashKV(0); err != nil {
						report(err)
						return
					}
				case 2:
					_ = s.LeaseKeys(1)
					_ = s.Size()
				}
			}
		}(r)
	}
	for i := 0; i < writes; i++ {
		v := fmt.Sprint(i)
		if _, _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
			opPutReq(&pb.PutRequest{Key: []byte("pair/a"), Value: []byte(v), Lease: 1}),
			opPut("pair/b", v),
		}}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if err := s.Compact(s.Rev() - 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.Rev() != writes+1 {
		t.Fatalf("rev %d, want %d", s.Rev(), writes+1)
	}
}

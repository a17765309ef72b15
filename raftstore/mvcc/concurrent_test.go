package mvcc

import (
	"bytes"
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
					// A read-only txn runs under the read lock.
					resp, res, err := s.Txn(&pb.TxnRequest{
						Compare: []*pb.Compare{cmp("pair/a", pb.Compare_VERSION, pb.Compare_GREATER, 0)},
						Success: []*pb.RequestOp{opGet("pair/", "pair0")},
					})
					if err != nil || len(res.Events) != 0 {
						report(fmt.Errorf("read-only txn: %v %v", res, err))
						return
					}
					if resp.Succeeded {
						kvs := resp.Responses[0].GetResponseRange().Kvs
						if len(kvs) != 2 || string(kvs[0].Value) != string(kvs[1].Value) {
							report(fmt.Errorf("read-only txn saw half a txn: %v", keysOf(kvs)))
							return
						}
					}
				}
			}
		}(r)
	}
	// A persister writes images taken by the writer while it keeps
	// writing, as raft's FSMSnapshot.Persist does.
	type image struct {
		sn   *Snapshot
		hash uint32
	}
	images := make(chan image, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for img := range images {
			var buf bytes.Buffer
			if _, err := img.sn.WriteTo(&buf); err != nil {
				report(err)
				continue
			}
			r, err := Restore(&buf, Options{})
			if err != nil {
				report(err)
				continue
			}
			if h, _, _, _ := r.HashKV(0); h != img.hash || r.Rev() != img.sn.Rev() {
				report(fmt.Errorf("image at %d restored with hash %x rev %d, want %x", img.sn.Rev(), h, r.Rev(), img.hash))
			}
		}
	}()
	for i := 0; i < writes; i++ {
		if i%300 == 150 {
			h, _, _, err := s.HashKV(0)
			if err != nil {
				t.Fatal(err)
			}
			images <- image{sn: s.Snapshot(), hash: h}
		}
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
	close(images)
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

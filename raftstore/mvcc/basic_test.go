package mvcc

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestBasicLifecycle(t *testing.T) {
	s := New(Options{})
	if got := s.Rev(); got != 1 {
		t.Fatalf("empty store rev = %d, want 1", got)
	}
	res := mustPut(t, s, "a", "1")
	if res.Rev != 2 || len(res.Events) != 1 {
		t.Fatalf("first put: rev %d events %d, want 2 and 1", res.Rev, len(res.Events))
	}
	mustPut(t, s, "a", "2")
	mustPut(t, s, "b", "1")
	r := get(t, s, rangeReq("a", ""))
	if len(r.Kvs) != 1 || r.Kvs[0].Version != 2 || r.Kvs[0].CreateRevision != 2 || r.Kvs[0].ModRevision != 3 {
		t.Fatalf("get a: %v", keysOf(r.Kvs))
	}
	d := mustDel(t, s, "a", "c")
	if d.Deleted != 2 || s.Rev() != 5 {
		t.Fatalf("delete: deleted %d rev %d, want 2 and 5", d.Deleted, s.Rev())
	}
	if d := mustDel(t, s, "a", "c"); d.Deleted != 0 || s.Rev() != 5 {
		t.Fatalf("delete of nothing: deleted %d rev %d, want 0 and 5", d.Deleted, s.Rev())
	}
	old := get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: 4})
	if got := keysOf(old.Kvs); !eqStrings(got, []string{"a=2", "b=1"}) {
		t.Fatalf("range at 4: %v", got)
	}
	evs, next, err := s.Events(1, []byte("a"), []byte("\x00"), true, 0)
	if err != nil || next != 6 || len(evs) != 5 {
		t.Fatalf("events: %v next %d err %v", fmtEvents(evs), next, err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	s2, err := Restore(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h1, _, _, _ := s.HashKV(0)
	h2, _, _, _ := s2.HashKV(0)
	if h1 != h2 || s2.Rev() != 5 {
		t.Fatalf("restore: hash %x vs %x, rev %d", h1, h2, s2.Rev())
	}
	tr, res, err := s.Txn(&pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_EQUAL, 0)},
		Success: []*pb.RequestOp{opPut("a", "x"), opGet("a", "")},
	})
	if err != nil || !tr.Succeeded || res.Rev != 6 {
		t.Fatalf("txn: %v %v %v", tr, res, err)
	}
	if got := tr.Responses[1].GetResponseRange().Kvs; len(got) != 1 || string(got[0].Value) != "x" {
		t.Fatalf("txn read own write: %v", keysOf(got))
	}
}

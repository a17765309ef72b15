package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The property test drives a Store and a deliberately naive model with the
// same random operations and compares every observable result.

// mVer is one version of a key in the model; ver == 0 is a tombstone.
type mVer struct {
	value            string
	create, mod, sub int64
	ver, lease       int64
}

type mChange struct {
	main, sub int64
	key       string
}

// model keeps every version forever and only remembers the compaction
// revision to know which reads must fail.
type model struct {
	rev, compactRev int64
	keys            map[string][]mVer
	log             []mChange
}

func newModel() *model { return &model{rev: 1, keys: map[string][]mVer{}} }

func (m *model) at(k string, rev int64) *mVer {
	vs := m.keys[k]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].mod <= rev {
			if vs[i].ver == 0 {
				return nil
			}
			return &vs[i]
		}
	}
	return nil
}

func inRange(key, k, end string) bool {
	switch {
	case end == "":
		return key == k
	case end == "\x00":
		return key >= k
	default:
		return key >= k && key < end
	}
}

func (m *model) keysAt(k, end string, rev int64) []string {
	var out []string
	for key := range m.keys {
		if inRange(key, k, end) && m.at(key, rev) != nil {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func mkv(k string, v *mVer) string {
	return fmtKV(&mvccpb.KeyValue{Key: []byte(k), Value: []byte(v.value), CreateRevision: v.create, ModRevision: v.mod, Version: v.ver, Lease: v.lease})
}

// mWrite is a model write: changes take main revision m.rev+1.
type mWrite struct {
	m *model
	n int64
}

func (w *mWrite) main() int64 { return w.m.rev + 1 }

func (w *mWrite) readRev() int64 {
	if w.n > 0 {
		return w.main()
	}
	return w.m.rev
}

func (w *mWrite) put(k, v string, lease int64) {
	m := w.m
	nv := mVer{value: v, create: w.main(), mod: w.main(), sub: w.n, ver: 1, lease: lease}
	if cur := m.at(k, w.readRev()); cur != nil {
		nv.create, nv.ver = cur.create, cur.ver+1
	}
	m.keys[k] = append(m.keys[k], nv)
	m.log = append(m.log, mChange{w.main(), w.n, k})
	w.n++
}

func (w *mWrite) del(k, end string) []string {
	keys := w.m.keysAt(k, end, w.readRev())
	var prev []string
	for _, key := range keys {
		prev = append(prev, mkv(key, w.m.at(key, w.readRev())))
	}
	for _, key := range keys {
		w.m.keys[key] = append(w.m.keys[key], mVer{mod: w.main(), sub: w.n})
		w.m.log = append(w.m.log, mChange{w.main(), w.n, key})
		w.n++
	}
	return prev
}

func (w *mWrite) commit() {
	if w.n > 0 {
		w.m.rev++
	}
}

func (m *model) leaseKeys(id int64) []string {
	var out []string
	for k := range m.keys {
		if v := m.at(k, m.rev); v != nil && v.lease == id {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) events(from int64, k, end string, maxEvents int) ([]string, int64) {
	var out []string
	lastMain := int64(-1)
	for _, c := range m.log {
		if c.main < from || !inRange(c.key, k, end) {
			continue
		}
		if maxEvents > 0 && len(out) >= maxEvents && c.main != lastMain {
			return out, c.main
		}
		var v *mVer
		for i := range m.keys[c.key] {
			if x := &m.keys[c.key][i]; x.mod == c.main && x.sub == c.sub {
				v = x
			}
		}
		ev := &mvccpb.Event{}
		if v.ver == 0 {
			ev.Type = mvccpb.DELETE
			ev.Kv = &mvccpb.KeyValue{Key: []byte(c.key), ModRevision: c.main}
		} else {
			ev.Type = mvccpb.PUT
			ev.Kv = &mvccpb.KeyValue{Key: []byte(c.key), Value: []byte(v.value), CreateRevision: v.create, ModRevision: v.mod, Version: v.ver, Lease: v.lease}
		}
		if !(v.ver == 1) {
			if p := m.at(c.key, c.main-1); p != nil {
				ev.PrevKv = &mvccpb.KeyValue{Key: []byte(c.key), Value: []byte(p.value), CreateRevision: p.create, ModRevision: p.mod, Version: p.ver, Lease: p.lease}
			}
		}
		out = append(out, fmtEvent(ev))
		lastMain = c.main
	}
	return out, max(m.rev+1, from)
}

// propRun holds the generator state of one seeded run.
type propRun struct {
	t   *testing.T
	rnd *rand.Rand
	s   *Store
	m   *model
	// twin, once set, is a store restored from a snapshot of s that gets
	// the same operations; its hash must keep matching.
	twin *Store
	// images are Snapshots taken along the way, checked later, after more
	// writes, against what the store held when they were taken.
	images []propImage
}

type propImage struct {
	sn              *Snapshot
	hash            uint32
	rev, compactRev int64
	op              int
}

func (p *propRun) takeImage(i int) {
	h, _, _, err := p.s.HashKV(0)
	if err != nil {
		p.t.Fatal(err)
	}
	p.images = append(p.images, propImage{sn: p.s.Snapshot(), hash: h, rev: p.m.rev, compactRev: p.m.compactRev, op: i})
}

// checkImage restores an image taken earlier and compares it with the
// hash taken then and with the model at that revision.
func (p *propRun) checkImage(i int) {
	t, m := p.t, p.m
	k := p.rnd.Intn(len(p.images))
	img := p.images[k]
	p.images = append(p.images[:k], p.images[k+1:]...)
	var buf bytes.Buffer
	if _, err := img.sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf, Options{LeaseExists: leaseExists})
	if err != nil {
		t.Fatalf("op %d: restore of image from op %d: %v", i, img.op, err)
	}
	h, _, _, _ := r.HashKV(0)
	if h != img.hash || r.Rev() != img.rev || r.CompactRev() != img.compactRev {
		t.Fatalf("op %d: image from op %d restored to hash %x rev %d/%d, was %x rev %d/%d",
			i, img.op, h, r.Rev(), r.CompactRev(), img.hash, img.rev, img.compactRev)
	}
	rev := img.rev
	if img.rev > img.compactRev {
		rev = img.compactRev + p.rnd.Int63n(img.rev-img.compactRev+1)
	}
	if rev < 1 {
		rev = 1
	}
	resp, err := r.Range(&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: rev})
	if err != nil {
		t.Fatalf("op %d: range of image from op %d at %d: %v", i, img.op, rev, err)
	}
	var want, got []string
	for _, key := range m.keysAt("\x00", "\x00", rev) {
		want = append(want, mkv(key, m.at(key, rev)))
	}
	for _, kv := range resp.Kvs {
		got = append(got, fmtKV(kv))
	}
	if !eqStrings(got, want) {
		t.Fatalf("op %d: image from op %d at rev %d:\n got %q\nwant %q", i, img.op, rev, got, want)
	}
}

const propKeys = 16

func (p *propRun) key() string { return fmt.Sprintf("k%02d", p.rnd.Intn(propKeys)) }

// keyRange returns a random etcd range: single key, [a, b), from-key, or all.
func (p *propRun) keyRange() (string, string) {
	switch p.rnd.Intn(6) {
	case 0, 1:
		return p.key(), ""
	case 2:
		return p.key(), "\x00"
	case 3:
		return "\x00", "\x00"
	default:
		a, b := p.key(), p.key()
		if a > b {
			a, b = b, a
		}
		if p.rnd.Intn(4) == 0 {
			b = a + "\xff" // a prefix-like range
		}
		return a, b
	}
}

func (p *propRun) value() string {
	if p.rnd.Intn(8) == 0 {
		return ""
	}
	return fmt.Sprintf("v%d", p.rnd.Intn(1000))
}

// lease picks 0 most of the time, sometimes a lease, sometimes the missing
// lease 99.
func (p *propRun) lease() int64 {
	switch n := p.rnd.Intn(10); {
	case n < 6:
		return 0
	case n < 9:
		return int64(n - 5)
	default:
		return 99
	}
}

func leaseExists(id int64) bool { return id != 99 }

func (p *propRun) both(f func(s *Store)) {
	f(p.s)
	if p.twin != nil {
		f(p.twin)
	}
}

func (p *propRun) step(i int) {
	t := p.t
	m := p.m
	before := m.rev
	switch op := p.rnd.Intn(100); {
	case op < 40: // put
		k, v, l := p.key(), p.value(), p.lease()
		req := &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: l, PrevKv: true}
		if p.rnd.Intn(10) == 0 {
			req.IgnoreValue, req.Value, v = true, nil, ""
		}
		cur := m.at(k, m.rev)
		var wantErr error
		switch {
		case !leaseExists(l):
			wantErr = ErrLeaseNotFound
		case req.IgnoreValue && cur == nil:
			wantErr = ErrKeyNotFound
		}
		var resp *pb.PutResponse
		var res Result
		var err error
		p.both(func(s *Store) { resp, res, err = s.Put(req) })
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Fatalf("op %d put %q lease %d: err %v, want %v", i, k, l, err, wantErr)
		}
		if err != nil {
			return
		}
		wantPrev := "<nil>"
		if cur != nil {
			wantPrev = mkv(k, cur)
			if req.IgnoreValue {
				v = cur.value
			}
		}
		if got := fmtKV(resp.PrevKv); got != wantPrev {
			t.Fatalf("op %d put %q prev_kv: got %s want %s", i, k, got, wantPrev)
		}
		w := &mWrite{m: m}
		w.put(k, v, l)
		w.commit()
		p.checkResult(i, res, before)
	case op < 55: // delete range
		k, end := p.keyRange()
		req := &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end), PrevKv: true}
		var resp *pb.DeleteRangeResponse
		var res Result
		var err error
		p.both(func(s *Store) { resp, res, err = s.DeleteRange(req) })
		if err != nil {
			t.Fatalf("op %d delete %q-%q: %v", i, k, end, err)
		}
		w := &mWrite{m: m}
		wantPrev := w.del(k, end)
		w.commit()
		got := make([]string, 0, len(resp.PrevKvs))
		for _, kv := range resp.PrevKvs {
			got = append(got, fmtKV(kv))
		}
		if !eqStrings(got, wantPrev) || resp.Deleted != int64(len(wantPrev)) {
			t.Fatalf("op %d delete %q-%q: deleted %d %v, want %v", i, k, end, resp.Deleted, got, wantPrev)
		}
		p.checkResult(i, res, before)
	case op < 75: // txn
		p.txn(i, before)
	case op < 80: // compact
		if m.rev <= m.compactRev {
			return
		}
		rev := m.compactRev + 1 + p.rnd.Int63n(m.rev-m.compactRev)
		var err error
		p.both(func(s *Store) { err = s.Compact(rev) })
		if err != nil {
			t.Fatalf("op %d compact %d: %v", i, rev, err)
		}
		m.compactRev = rev
		p.both(func(s *Store) {
			if err := s.Compact(rev); !errors.Is(err, ErrCompacted) {
				t.Fatalf("op %d compact %d again: %v", i, rev, err)
			}
		})
	case op < 83: // lease revocation
		id := int64(1 + p.rnd.Intn(3))
		keys := m.leaseKeys(id)
		var res Result
		p.both(func(s *Store) { res = s.DeleteKeys(s.LeaseKeys(id)) })
		w := &mWrite{m: m}
		for _, k := range keys {
			w.del(k, "")
		}
		w.commit()
		p.checkResult(i, res, before)
	case op < 86: // point-in-time image, checked later
		p.takeImage(i)
	case op < 89:
		if len(p.images) > 0 {
			p.checkImage(i)
		}
	default: // reads only
	}
	p.checkReads(i)
}

// checkResult compares a write's Result with the model's change log.
func (p *propRun) checkResult(i int, res Result, before int64) {
	if res.Rev != p.m.rev {
		p.t.Fatalf("op %d: result rev %d, model %d", i, res.Rev, p.m.rev)
	}
	var want []string
	if p.m.rev != before {
		want, _ = p.m.events(p.m.rev, "\x00", "\x00", 0)
	}
	if got := fmtEvents(res.Events); !eqStrings(got, want) {
		p.t.Fatalf("op %d: result events\n got %q\nwant %q", i, got, want)
	}
}

// mTxn is a generated txn with what the model expects of it.
type mTxn struct {
	req        *pb.TxnRequest
	want       bool // the compare's outcome against the state before the txn
	succ, fail []mOp
}

type mOp struct {
	kind      int // 0 put, 1 delete, 2 get, 3 nested txn
	k, end, v string
	lease     int64
	txn       *mTxn
}

// genTxn builds a random txn; its compare is evaluated by the model now,
// against the state before the txn, as etcd evaluates nested compares too.
func (p *propRun) genTxn(depth int) *mTxn {
	m := p.m
	ck := p.key()
	cur := m.at(ck, m.rev)
	var ver, mod int64
	if cur != nil {
		ver, mod = cur.ver, cur.mod
	}
	mt := &mTxn{req: &pb.TxnRequest{}}
	switch p.rnd.Intn(4) {
	case 0:
		v := int64(p.rnd.Intn(3))
		mt.req.Compare = []*pb.Compare{cmp(ck, pb.Compare_VERSION, pb.Compare_EQUAL, int(v))}
		mt.want = ver == v
	case 1:
		v := p.rnd.Int63n(m.rev + 1)
		mt.req.Compare = []*pb.Compare{cmp(ck, pb.Compare_MOD, pb.Compare_LESS, int(v))}
		mt.want = mod < v
	case 2:
		v := p.value()
		mt.req.Compare = []*pb.Compare{cmp(ck, pb.Compare_VALUE, pb.Compare_EQUAL, v)}
		mt.want = cur != nil && cur.value == v
	default:
		mt.want = true
	}
	gen := func() ([]*pb.RequestOp, []mOp) {
		var ops []*pb.RequestOp
		var mops []mOp
		for n := p.rnd.Intn(4); n > 0; n-- {
			kind := p.rnd.Intn(3)
			if depth < 2 && p.rnd.Intn(6) == 0 {
				kind = 3
			}
			switch kind {
			case 0:
				o := mOp{kind: 0, k: p.key(), v: p.value(), lease: p.lease()}
				ops = append(ops, opPutReq(&pb.PutRequest{Key: []byte(o.k), Value: []byte(o.v), Lease: o.lease}))
				mops = append(mops, o)
			case 1:
				k, end := p.keyRange()
				ops = append(ops, opDel(k, end))
				mops = append(mops, mOp{kind: 1, k: k, end: end})
			case 2:
				k, end := p.keyRange()
				ops = append(ops, opGet(k, end))
				mops = append(mops, mOp{kind: 2, k: k, end: end})
			default:
				nested := p.genTxn(depth + 1)
				ops = append(ops, opTxn(nested.req))
				mops = append(mops, mOp{kind: 3, txn: nested})
			}
		}
		return ops, mops
	}
	mt.req.Success, mt.succ = gen()
	mt.req.Failure, mt.fail = gen()
	return mt
}

func (mt *mTxn) taken() []mOp {
	if mt.want {
		return mt.succ
	}
	return mt.fail
}

// badLease reports whether a put on the taken path uses the missing lease.
func (mt *mTxn) badLease() bool {
	for _, o := range mt.taken() {
		if (o.kind == 0 && !leaseExists(o.lease)) || (o.kind == 3 && o.txn.badLease()) {
			return true
		}
	}
	return false
}

// apply runs the taken ops on the model and checks the store's response.
func (p *propRun) applyTxn(i int, w *mWrite, mt *mTxn, resp *pb.TxnResponse, path string) {
	t, m := p.t, p.m
	mops := mt.taken()
	if resp == nil || resp.Succeeded != mt.want || len(resp.Responses) != len(mops) {
		t.Fatalf("op %d txn%s: %v, want succeeded %v with %d responses", i, path, resp, mt.want, len(mops))
	}
	for j, o := range mops {
		switch o.kind {
		case 0:
			w.put(o.k, o.v, o.lease)
			if resp.Responses[j].GetResponsePut() == nil {
				t.Fatalf("op %d txn%s response %d is not a put", i, path, j)
			}
		case 1:
			prev := w.del(o.k, o.end)
			dr := resp.Responses[j].GetResponseDeleteRange()
			if dr == nil || dr.Deleted != int64(len(prev)) {
				t.Fatalf("op %d txn%s response %d: %v, want %d deleted", i, path, j, dr, len(prev))
			}
		case 2:
			var wantKVs []string
			for _, k := range m.keysAt(o.k, o.end, w.readRev()) {
				wantKVs = append(wantKVs, mkv(k, m.at(k, w.readRev())))
			}
			rr := resp.Responses[j].GetResponseRange()
			var got []string
			for _, kv := range rr.GetKvs() {
				got = append(got, fmtKV(kv))
			}
			if !eqStrings(got, wantKVs) {
				t.Fatalf("op %d txn%s get %q-%q (own writes):\n got %q\nwant %q", i, path, o.k, o.end, got, wantKVs)
			}
		case 3:
			p.applyTxn(i, w, o.txn, resp.Responses[j].GetResponseTxn(), fmt.Sprintf("%s/%d", path, j))
		}
	}
}

func (p *propRun) txn(i int, before int64) {
	t, m := p.t, p.m
	mt := p.genTxn(0)
	var resp *pb.TxnResponse
	var res Result
	var err error
	p.both(func(s *Store) { resp, res, err = s.Txn(mt.req) })
	if mt.badLease() || err != nil {
		if !errors.Is(err, ErrLeaseNotFound) || !mt.badLease() {
			t.Fatalf("op %d txn: err %v, want lease not found: %v", i, err, mt.badLease())
		}
		if res.Rev != m.rev || len(res.Events) != 0 {
			t.Fatalf("op %d failed txn changed something: %+v", i, res)
		}
		return
	}
	w := &mWrite{m: m}
	p.applyTxn(i, w, mt, resp, "")
	w.commit()
	p.checkResult(i, res, before)
}

// checkReads compares ranges at the current and an older revision, events
// from a random revision, and lease attachments.
func (p *propRun) checkReads(i int) {
	t, m, s := p.t, p.m, p.s
	revs := []int64{0, 1 + p.rnd.Int63n(m.rev)}
	for _, rev := range revs {
		k, end := p.keyRange()
		limit := int64(p.rnd.Intn(4))
		req := &pb.RangeRequest{Key: []byte(k), RangeEnd: []byte(end), Revision: rev, Limit: limit}
		if p.rnd.Intn(3) == 0 {
			req.SortOrder = pb.RangeRequest_SortOrder(p.rnd.Intn(3))
			req.SortTarget = pb.RangeRequest_SortTarget(p.rnd.Intn(5))
		}
		if p.rnd.Intn(4) == 0 {
			req.MinModRevision = p.rnd.Int63n(m.rev + 1)
		}
		if p.rnd.Intn(4) == 0 {
			req.MaxCreateRevision = p.rnd.Int63n(m.rev + 1)
		}
		resp, err := s.Range(req)
		at := rev
		if at == 0 {
			at = m.rev
		}
		if at < m.compactRev {
			if !errors.Is(err, ErrCompacted) {
				t.Fatalf("op %d range at %d (compacted at %d): err %v", i, rev, m.compactRev, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("op %d range %q-%q at %d: %v", i, k, end, rev, err)
		}
		keys := m.keysAt(k, end, at)
		type row struct {
			key string
			v   *mVer
		}
		var rows []row
		for _, key := range keys {
			v := m.at(key, at)
			if (req.MinModRevision != 0 && v.mod < req.MinModRevision) || (req.MaxCreateRevision != 0 && v.create > req.MaxCreateRevision) {
				continue
			}
			rows = append(rows, row{key, v})
		}
		// etcd fetches only limit+1 keys (in key order) when there is no
		// sort order and no filter, and sorts those: with sort order NONE
		// and another target, only that prefix is sorted.
		filtered := req.MinModRevision != 0 || req.MaxCreateRevision != 0
		if req.SortOrder == pb.RangeRequest_NONE && !filtered && limit > 0 && int64(len(rows)) > limit+1 {
			rows = rows[:limit+1]
		}
		// Model of etcd's sort: NONE with a target other than KEY is
		// ascending; ties stay in key order.
		if req.SortOrder != pb.RangeRequest_NONE || req.SortTarget != pb.RangeRequest_KEY {
			less := func(a, b row) bool {
				switch req.SortTarget {
				case pb.RangeRequest_VERSION:
					return a.v.ver < b.v.ver
				case pb.RangeRequest_CREATE:
					return a.v.create < b.v.create
				case pb.RangeRequest_MOD:
					return a.v.mod < b.v.mod
				case pb.RangeRequest_VALUE:
					return a.v.value < b.v.value
				}
				return a.key < b.key
			}
			if req.SortOrder == pb.RangeRequest_DESCEND {
				sort.SliceStable(rows, func(i, j int) bool { return less(rows[j], rows[i]) })
			} else {
				sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
			}
		}
		var want []string
		for _, r := range rows {
			want = append(want, mkv(r.key, r.v))
		}
		wantMore := limit > 0 && int64(len(want)) > limit
		if wantMore {
			want = want[:limit]
		}
		var got []string
		for _, kv := range resp.Kvs {
			got = append(got, fmtKV(kv))
		}
		if !eqStrings(got, want) || resp.Count != int64(len(keys)) || resp.More != wantMore {
			t.Fatalf("op %d range %v:\n got %q count %d more %v\nwant %q count %d more %v",
				i, req, got, resp.Count, resp.More, want, len(keys), wantMore)
		}
	}

	from := 1 + p.rnd.Int63n(m.rev+1)
	k, end := p.keyRange()
	maxEv := p.rnd.Intn(5)
	evs, next, err := s.Events(from, []byte(k), []byte(end), true, maxEv)
	if from < m.compactRev {
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("op %d events from %d (compacted at %d): err %v", i, from, m.compactRev, err)
		}
	} else {
		if err != nil {
			t.Fatalf("op %d events from %d: %v", i, from, err)
		}
		want, wantNext := m.events(from, k, end, maxEv)
		if got := fmtEvents(evs); !eqStrings(got, want) || next != wantNext {
			t.Fatalf("op %d events from %d %q-%q max %d:\n got %q next %d\nwant %q next %d", i, from, k, end, maxEv, got, next, want, wantNext)
		}
	}

	id := int64(1 + p.rnd.Intn(3))
	var got []string
	for _, k := range s.LeaseKeys(id) {
		got = append(got, string(k))
	}
	if want := m.leaseKeys(id); !eqStrings(got, want) {
		t.Fatalf("op %d lease %d keys: got %q want %q", i, id, got, want)
	}
	if s.Rev() != m.rev || s.CompactRev() != m.compactRev {
		t.Fatalf("op %d: store rev %d/%d, model %d/%d", i, s.Rev(), s.CompactRev(), m.rev, m.compactRev)
	}
	if p.twin != nil && p.rnd.Intn(8) == 0 {
		p.compareTwin(i)
	}
}

func (p *propRun) compareTwin(i int) {
	h1, r1, c1, err1 := p.s.HashKV(0)
	h2, r2, c2, err2 := p.twin.HashKV(0)
	if err1 != nil || err2 != nil || h1 != h2 || r1 != r2 || c1 != c2 {
		p.t.Fatalf("op %d: hash of store %x@%d/%d (%v), restored twin %x@%d/%d (%v)", i, h1, r1, c1, err1, h2, r2, c2, err2)
	}
	if p.s.Size() != p.twin.Size() {
		p.t.Fatalf("op %d: size %d vs twin %d", i, p.s.Size(), p.twin.Size())
	}
}

func TestPropertyAgainstModel(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 500
	}
	for _, seed := range []int64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			p := &propRun{t: t, rnd: rand.New(rand.NewSource(seed)), s: New(Options{LeaseExists: leaseExists}), m: newModel()}
			for i := 0; i < ops; i++ {
				if i == ops/2 {
					var buf bytes.Buffer
					if _, err := p.s.WriteTo(&buf); err != nil {
						t.Fatal(err)
					}
					twin, err := Restore(&buf, Options{LeaseExists: leaseExists})
					if err != nil {
						t.Fatalf("restore at op %d: %v", i, err)
					}
					p.twin = twin
					p.compareTwin(i)
				}
				p.step(i)
			}
			p.compareTwin(ops)
			for len(p.images) > 0 {
				p.checkImage(ops)
			}
			// The restored twin must answer reads like the original too.
			p.s, p.twin = p.twin, nil
			for i := 0; i < 50; i++ {
				p.checkReads(ops + i)
			}
		})
	}
}

package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A stricter history than the register's: every operation also records
// revisions (the mod revision a read returned, the revision a write got), and
// compare-and-put may compare on the mod revision, as Skiff's API server does.
// Besides porcupine, the history is checked against a watch of the same keys:
// the watch must show every acknowledged write at the revision it was
// acknowledged with, and nothing nobody wrote.

type revInput struct {
	kind      opKind
	key       string
	value     string
	expect    string // opCAS on value
	expectRev int64  // opCASRev: compare mod_revision (0 = absent)
}

const opCASRev opKind = 10

type revOutput struct {
	value   string
	rev     int64 // get: mod revision read (0 absent); write: revision assigned
	ok      bool
	unknown bool
}

// revState is one key: its value and mod revision; rev -1 means "written by
// an operation whose outcome, and so revision, is unknown".
type revState struct {
	value string
	rev   int64
}

var revisionModel = porcupine.NondeterministicModel{
	Partition: registerModelPartition(func(in interface{}) string { return in.(revInput).key }),
	Init:      func() []interface{} { return []interface{}{revState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		s := state.(revState)
		in := input.(revInput)
		out := output.(revOutput)
		switch in.kind {
		case opGet:
			if out.value != s.value || (s.rev != -1 && out.rev != s.rev) {
				return nil
			}
			return []interface{}{revState{out.value, out.rev}}
		case opPut:
			if out.unknown {
				return []interface{}{revState{in.value, -1}}
			}
			return []interface{}{revState{in.value, out.rev}}
		}
		// Compare-and-put, on value or on mod revision.
		var holds, maybe bool
		if in.kind == opCAS {
			holds = s.value == in.expect
		} else {
			holds = s.rev == in.expectRev
			maybe = s.rev == -1 // unknown revision: either answer is possible
		}
		applied := revState{in.value, out.rev}
		if out.unknown {
			applied.rev = -1
		}
		switch {
		case out.unknown && (holds || maybe):
			return []interface{}{applied, s}
		case out.unknown:
			return []interface{}{s}
		case out.ok && (holds || maybe):
			return []interface{}{applied}
		case !out.ok && (!holds || maybe):
			return []interface{}{s}
		}
		return nil
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(revInput), output.(revOutput)
		res := fmt.Sprintf("-> ok=%v rev=%d", out.ok, out.rev)
		if out.unknown {
			res = "-> ?"
		}
		switch in.kind {
		case opGet:
			return fmt.Sprintf("get(%s) -> %q@%d", in.key, out.value, out.rev)
		case opPut:
			return fmt.Sprintf("put(%s, %q) %s", in.key, in.value, res)
		case opCAS:
			return fmt.Sprintf("cas(%s, %q -> %q) %s", in.key, in.expect, in.value, res)
		default:
			return fmt.Sprintf("casrev(%s, @%d -> %q) %s", in.key, in.expectRev, in.value, res)
		}
	},
}

func registerModelPartition(keyOf func(interface{}) string) func([]porcupine.Operation) [][]porcupine.Operation {
	return func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := keyOf(op.Input)
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	}
}

func TestRevisionModelRejects(t *testing.T) {
	op := func(call, ret int64, in revInput, out revOutput) porcupine.Operation {
		return porcupine.Operation{Call: call, Return: ret, Input: in, Output: out}
	}
	m := revisionModel.ToModel()
	for _, tc := range []struct {
		name string
		h    []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read returns the wrong mod revision", []porcupine.Operation{
			op(0, 10, revInput{kind: opPut, key: "x", value: "a"}, revOutput{rev: 5}),
			op(20, 30, revInput{kind: opGet, key: "x"}, revOutput{value: "a", rev: 4}),
		}, porcupine.Illegal},
		{"cas on a stale revision succeeds", []porcupine.Operation{
			op(0, 10, revInput{kind: opPut, key: "x", value: "a"}, revOutput{rev: 5}),
			op(20, 30, revInput{kind: opPut, key: "x", value: "b"}, revOutput{rev: 6}),
			op(40, 50, revInput{kind: opCASRev, key: "x", value: "c", expectRev: 5}, revOutput{ok: true, rev: 7}),
		}, porcupine.Illegal},
		{"cas on the current revision fails", []porcupine.Operation{
			op(0, 10, revInput{kind: opPut, key: "x", value: "a"}, revOutput{rev: 5}),
			op(40, 50, revInput{kind: opCASRev, key: "x", value: "c", expectRev: 5}, revOutput{ok: false, rev: 7}),
		}, porcupine.Illegal},
		{"unknown put then cas on the revision a read saw", []porcupine.Operation{
			op(0, math.MaxInt64, revInput{kind: opPut, key: "x", value: "a"}, revOutput{unknown: true}),
			op(20, 30, revInput{kind: opGet, key: "x"}, revOutput{value: "a", rev: 9}),
			op(40, 50, revInput{kind: opCASRev, key: "x", value: "c", expectRev: 9}, revOutput{ok: true, rev: 11}),
			op(60, 70, revInput{kind: opGet, key: "x"}, revOutput{value: "c", rev: 11}),
		}, porcupine.Ok},
		{"unknown cas may or may not apply", []porcupine.Operation{
			op(0, 10, revInput{kind: opPut, key: "x", value: "a"}, revOutput{rev: 5}),
			op(20, math.MaxInt64, revInput{kind: opCASRev, key: "x", value: "b", expectRev: 5}, revOutput{unknown: true}),
			op(30, 40, revInput{kind: opGet, key: "x"}, revOutput{value: "a", rev: 5}),
			op(50, 60, revInput{kind: opGet, key: "x"}, revOutput{value: "b", rev: 8}),
		}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(m, tc.h, 10*time.Second); got != tc.want {
				t.Errorf("checker says %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLinearizableRevisionsAcrossRepeatedFailovers: clients put, read and
// compare-and-put (on value and on mod revision) while the leader is killed
// and restarted twice. Checks: the history is linearizable with revisions;
// acknowledged writes have distinct revisions; each client sees response
// revisions never go backwards; a watch over the keys (resuming across the
// failovers) shows exactly the writes, at their acknowledged revisions.
func TestLinearizableRevisionsAcrossRepeatedFailovers(t *testing.T) {
	c := newCluster(t, 3, opts{})
	keys := []string{"lr/a", "lr/b", "lr/c", "lr/d"}
	start := mustGet(t, c.Client(), "lr-probe").Header.Revision + 1

	// The watch: one client over every member, so it resumes elsewhere.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	wch := c.Client().Watch(wctx, "lr/", clientv3.WithPrefix(), clientv3.WithRev(start))
	type wev struct {
		key, value string
		rev        int64
		typ        mvccpb.Event_EventType
	}
	var (
		wmu      sync.Mutex
		watched  []wev
		watchErr error
	)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for r := range wch {
			wmu.Lock()
			if err := r.Err(); err != nil {
				watchErr = err
				wmu.Unlock()
				return
			}
			for _, e := range r.Events {
				watched = append(watched, wev{string(e.Kv.Key), string(e.Kv.Value), e.Kv.ModRevision, e.Type})
			}
			wmu.Unlock()
		}
	}()

	rec := &recorder{start: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const clients = 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	perClient := make([][]int64, clients) // response header revisions in order
	counts := map[string]int{}
	for i := 0; i < clients; i++ {
		cli := c.Client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(100 + i)))
			lastVal := map[string]string{}
			lastRev := map[string]int64{}
			for n := 0; ctx.Err() == nil; n++ {
				key := keys[rng.Intn(len(keys))]
				in := revInput{key: key}
				switch p := rng.Intn(10); {
				case p < 4:
					in.kind = opGet
				case p < 6:
					in.kind, in.value = opPut, fmt.Sprintf("c%d-%d", i, n)
				case p < 8:
					in.kind, in.value, in.expect = opCAS, fmt.Sprintf("c%d-%d", i, n), lastVal[key]
				default:
					in.kind, in.value, in.expectRev = opCASRev, fmt.Sprintf("c%d-%d", i, n), lastRev[key]
				}
				call := rec.now()
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				out, hdrRev, err := doRevOp(octx, cli, in)
				ocancel()
				if err != nil {
					if in.kind == opGet {
						continue
					}
					out = revOutput{unknown: true}
				} else {
					perClient[i] = append(perClient[i], hdrRev)
				}
				if in.kind == opGet {
					lastVal[key], lastRev[key] = out.value, out.rev
				} else if out.ok && !out.unknown {
					lastVal[key], lastRev[key] = in.value, out.rev
				}
				ret := rec.now()
				if out.unknown {
					ret = math.MaxInt64
				}
				rec.mu.Lock()
				rec.ops = append(rec.ops, porcupine.Operation{ClientId: i, Input: in, Call: call, Output: out, Return: ret})
				rec.mu.Unlock()
				mu.Lock()
				switch {
				case out.unknown:
					counts["unknown"]++
				case in.kind == opGet:
					counts["get"]++
				case out.ok:
					counts["write ok"]++
				default:
					counts["cas failed"]++
				}
				mu.Unlock()
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	opsNow := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.ops)
	}
	waitMoreOps := func(n int) {
		base := opsNow()
		eventually(t, 60*time.Second, fmt.Sprintf("%d more operations", n), func() error {
			if got := opsNow() - base; got < n {
				return fmt.Errorf("%d so far", got)
			}
			return nil
		})
	}
	waitMoreOps(200)
	for round := 0; round < 2; round++ {
		old := c.Leader()
		c.Kill(old)
		c.WaitLeader(30 * time.Second)
		waitMoreOps(200)
		c.Restart(old)
		waitMoreOps(200)
	}
	cancel()
	wg.Wait()
	t.Logf("history: %d operations %v", len(rec.ops), counts)

	// Acknowledged writes and their revisions.
	type write struct {
		key, value string
		rev        int64
	}
	var acked []write
	issued := map[string]bool{} // key/value of every write issued, acked or not
	for _, op := range rec.ops {
		in, out := op.Input.(revInput), op.Output.(revOutput)
		if in.kind == opGet {
			continue
		}
		issued[in.key+"="+in.value] = true
		if !out.unknown && out.ok {
			acked = append(acked, write{in.key, in.value, out.rev})
		}
	}
	byRev := map[int64]write{}
	for _, w := range acked {
		if prev, dup := byRev[w.rev]; dup {
			t.Errorf("two acknowledged writes at revision %d: %v and %v", w.rev, prev, w)
		}
		byRev[w.rev] = w
	}
	for i, revs := range perClient {
		for j := 1; j < len(revs); j++ {
			if revs[j] < revs[j-1] {
				t.Errorf("client %d: response revision went backwards: %d after %d", i, revs[j], revs[j-1])
				break
			}
		}
	}

	// The watch must catch up to the last acknowledged write, then show
	// exactly what was written.
	var maxRev int64
	for _, w := range acked {
		maxRev = max(maxRev, w.rev)
	}
	eventually(t, 30*time.Second, fmt.Sprintf("watch reaching revision %d", maxRev), func() error {
		wmu.Lock()
		defer wmu.Unlock()
		if watchErr != nil {
			t.Fatalf("watch failed: %v", watchErr)
		}
		if n := len(watched); n == 0 || watched[n-1].rev < maxRev {
			return fmt.Errorf("watch has %d events", n)
		}
		return nil
	})
	wcancel()
	<-watchDone
	seenAt := map[int64]wev{}
	once := map[string]int64{}
	for i, e := range watched {
		// Values are unique: a write applied twice (say, a forwarded
		// proposal retried after a leader change) shows up twice.
		if prev, dup := once[e.key+"="+e.value]; dup {
			t.Errorf("write %s=%q applied twice: at revisions %d and %d", e.key, e.value, prev, e.rev)
		}
		once[e.key+"="+e.value] = e.rev
		if i > 0 && e.rev <= watched[i-1].rev {
			t.Errorf("watch revisions not increasing: %v then %v", watched[i-1], e)
		}
		if e.typ != mvccpb.PUT {
			t.Errorf("unexpected %v event %v", e.typ, e)
		}
		if !issued[e.key+"="+e.value] {
			t.Errorf("watch shows a write nobody issued: %v", e)
		}
		seenAt[e.rev] = e
	}
	for _, w := range acked {
		e, ok := seenAt[w.rev]
		if !ok || e.key != w.key || e.value != w.value {
			t.Errorf("acknowledged write %s=%q at revision %d: watch has %v at that revision", w.key, w.value, w.rev, e)
		}
	}
	res, info := porcupine.CheckOperationsVerbose(revisionModel.ToModel(), rec.ops, 60*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-revisions-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(revisionModel.ToModel(), info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("history of %d operations is not linearizable with revisions: porcupine says %s", len(rec.ops), res)
	}
}

// doRevOp runs one operation and returns its output and the response's
// header revision.
func doRevOp(ctx context.Context, cli *clientv3.Client, in revInput) (revOutput, int64, error) {
	switch in.kind {
	case opGet:
		r, err := cli.Get(ctx, in.key)
		if err != nil {
			return revOutput{}, 0, err
		}
		if len(r.Kvs) == 0 {
			return revOutput{}, r.Header.Revision, nil
		}
		return revOutput{value: string(r.Kvs[0].Value), rev: r.Kvs[0].ModRevision}, r.Header.Revision, nil
	case opPut:
		r, err := cli.Put(ctx, in.key, in.value)
		if err != nil {
			return revOutput{}, 0, err
		}
		return revOutput{ok: true, rev: r.Header.Revision}, r.Header.Revision, nil
	}
	var cmp clientv3.Cmp
	switch {
	case in.kind == opCASRev:
		cmp = clientv3.Compare(clientv3.ModRevision(in.key), "=", in.expectRev)
	case in.expect == "":
		cmp = clientv3.Compare(clientv3.CreateRevision(in.key), "=", 0)
	default:
		cmp = clientv3.Compare(clientv3.Value(in.key), "=", in.expect)
	}
	r, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(in.key, in.value)).Commit()
	if err != nil {
		return revOutput{}, 0, err
	}
	return revOutput{ok: r.Succeeded, rev: r.Header.Revision}, r.Header.Revision, nil
}

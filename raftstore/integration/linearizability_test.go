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
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The register model: each key is an independent register whose state is its
// value ("" while the key does not exist). Clients write unique non-empty
// values, so "" is never written and a compare-and-put on a value identifies
// exactly one earlier write.

type opKind int

const (
	opGet opKind = iota
	opPut
	opCAS // put value if the key's value is expect ("" = absent)
)

type regInput struct {
	kind   opKind
	key    string
	value  string
	expect string
}

type regOutput struct {
	value   string // get: value read
	ok      bool   // cas: whether the compare held
	unknown bool   // write with no answer (timeout, failover): may or may not have happened
}

// registerModel is a per-key register. Writes with an unknown outcome are
// recorded with a return time of +inf, so the checker may place them anywhere
// after their call, including after every other operation, which is the same
// as "never happened"; their step therefore just applies them.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
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
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		s := state.(string)
		in := input.(regInput)
		out := output.(regOutput)
		switch in.kind {
		case opGet:
			return out.value == s, s
		case opPut:
			return true, in.value
		case opCAS:
			holds := s == in.expect
			if out.unknown {
				if holds {
					return true, in.value
				}
				return true, s
			}
			if out.ok != holds {
				return false, s
			}
			if holds {
				return true, in.value
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regInput), output.(regOutput)
		res := ""
		if out.unknown {
			res = " -> ?"
		}
		switch in.kind {
		case opGet:
			return fmt.Sprintf("get(%s) -> %q", in.key, out.value)
		case opPut:
			return fmt.Sprintf("put(%s, %q)%s", in.key, in.value, res)
		default:
			if res == "" {
				res = fmt.Sprintf(" -> %v", out.ok)
			}
			return fmt.Sprintf("cas(%s, %q -> %q)%s", in.key, in.expect, in.value, res)
		}
	},
}

// checkLinearizable fails the test unless the history is linearizable;
// porcupine.Unknown (the checker timed out) is a failure too.
func checkLinearizable(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 60*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("history of %d operations is not linearizable: porcupine says %s", len(history), res)
	}
}

// TestCheckerRejectsNonLinearizable proves the model and checker can fail: hand-made
// histories that no sequential order explains are rejected.
func TestCheckerRejectsNonLinearizable(t *testing.T) {
	op := func(client int, call, ret int64, in regInput, out regOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"stale read after a completed overwrite", []porcupine.Operation{
			op(0, 0, 10, regInput{kind: opPut, key: "x", value: "a"}, regOutput{}),
			op(0, 20, 30, regInput{kind: opPut, key: "x", value: "b"}, regOutput{}),
			op(1, 40, 50, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
		}, porcupine.Illegal},
		{"two create-if-absent both succeed", []porcupine.Operation{
			op(0, 0, 10, regInput{kind: opCAS, key: "x", value: "a"}, regOutput{ok: true}),
			op(1, 20, 30, regInput{kind: opCAS, key: "x", value: "b"}, regOutput{ok: true}),
		}, porcupine.Illegal},
		{"read of a value never written", []porcupine.Operation{
			op(0, 0, 10, regInput{kind: opGet, key: "x"}, regOutput{value: "z"}),
		}, porcupine.Illegal},
		{"read going back in time", []porcupine.Operation{
			op(0, 0, 10, regInput{kind: opPut, key: "x", value: "a"}, regOutput{}),
			op(0, 0, 10, regInput{kind: opPut, key: "y", value: "a"}, regOutput{}),
			op(1, 5, 100, regInput{kind: opPut, key: "x", value: "b"}, regOutput{}),
			op(2, 20, 30, regInput{kind: opGet, key: "x"}, regOutput{value: "b"}),
			op(3, 40, 50, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
		}, porcupine.Illegal},
		{"concurrent overlapping ops in either order", []porcupine.Operation{
			op(0, 0, 100, regInput{kind: opPut, key: "x", value: "a"}, regOutput{}),
			op(1, 10, 20, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
			op(2, 30, 40, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
			op(3, 50, 60, regInput{kind: opCAS, key: "x", expect: "a", value: "b"}, regOutput{ok: true}),
		}, porcupine.Ok},
		{"unknown write may be seen later", []porcupine.Operation{
			op(0, 0, math.MaxInt64, regInput{kind: opPut, key: "x", value: "a"}, regOutput{unknown: true}),
			op(1, 50, 60, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
		}, porcupine.Ok},
		{"unknown write may never happen", []porcupine.Operation{
			op(0, 0, math.MaxInt64, regInput{kind: opCAS, key: "x", value: "a"}, regOutput{unknown: true}),
			op(1, 50, 60, regInput{kind: opGet, key: "x"}, regOutput{value: ""}),
		}, porcupine.Ok},
		{"unknown write cannot be seen before it was called", []porcupine.Operation{
			op(1, 0, 10, regInput{kind: opGet, key: "x"}, regOutput{value: "a"}),
			op(0, 20, math.MaxInt64, regInput{kind: opPut, key: "x", value: "a"}, regOutput{unknown: true}),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(registerModel, tc.history, 10*time.Second); got != tc.want {
				t.Errorf("checker says %s, want %s", got, tc.want)
			}
		})
	}
}

// recorder collects a concurrent history with timestamps from one clock.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(client int, call int64, in regInput, out regOutput) {
	ret := r.now()
	if out.unknown {
		ret = math.MaxInt64
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// TestLinearizableAcrossFailover: concurrent clients do get/put/cas over a few
// keys while the leader is killed and later restarted; the history must be
// linearizable per key.
func TestLinearizableAcrossFailover(t *testing.T) {
	c := newCluster(t, 3, opts{})
	const clients = 6
	keys := []string{"lin/a", "lin/b", "lin/c"}
	rec := &recorder{start: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for i := 0; i < clients; i++ {
		cli := c.Client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			last := map[string]string{} // last value this client saw per key
			for n := 0; ctx.Err() == nil; n++ {
				key := keys[rng.Intn(len(keys))]
				in := regInput{key: key}
				switch p := rng.Intn(10); {
				case p < 4:
					in.kind = opGet
				case p < 7:
					in.kind, in.value = opPut, fmt.Sprintf("c%d-%d", i, n)
				default:
					in.kind, in.value, in.expect = opCAS, fmt.Sprintf("c%d-%d", i, n), last[key]
				}
				call := rec.now()
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				out, err := doRegisterOp(octx, cli, in)
				ocancel()
				if err != nil {
					if in.kind == opGet {
						// A failed read observed nothing; leave it out.
						mu.Lock()
						counts["read error"]++
						mu.Unlock()
						continue
					}
					out = regOutput{unknown: true}
				}
				if in.kind == opGet {
					last[key] = out.value
				}
				rec.add(i, call, in, out)
				mu.Lock()
				switch {
				case out.unknown:
					counts["unknown"]++
				case in.kind == opCAS && out.ok:
					counts["cas ok"]++
				default:
					counts["ok"]++
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
	waitOps := func(n int) {
		eventually(t, 30*time.Second, fmt.Sprintf("%d operations recorded", n), func() error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.ops) < n {
				return fmt.Errorf("%d so far", len(rec.ops))
			}
			return nil
		})
	}
	waitOps(300)
	old := c.Leader()
	c.Kill(old)
	rec.mu.Lock()
	base := len(rec.ops)
	rec.mu.Unlock()
	c.WaitLeader(30 * time.Second)
	waitOps(base + 300)
	c.Restart(old)
	rec.mu.Lock()
	base = len(rec.ops)
	rec.mu.Unlock()
	waitOps(base + 300)
	cancel()
	wg.Wait()
	t.Logf("history: %d operations %v", len(rec.ops), counts)
	checkLinearizable(t, rec.ops)
}

// TestCheckerCatchesStaleFollowerReads runs the same checker against a Skiff
// cluster with its planted bug (followers serve linearizable reads locally):
// one client writes through the leader and at once reads through a follower,
// which has usually not heard of the commit yet. The history must be
// rejected, proving the end-to-end check can fail on a real server.
func TestCheckerCatchesStaleFollowerReads(t *testing.T) {
	if selectBackend(t).Name() != "skiff" {
		t.Skip("the planted stale-read bug exists only in Skiff")
	}
	c := newCluster(t, 3, opts{UnsafeFollowerReads: true})
	lcli := c.memberClient(c.Leader())
	fcli := c.memberClient(c.Followers()[0])
	rec := &recorder{start: time.Now()}
	stale := 0
	for i := 0; i < 200 && stale < 3; i++ {
		in := regInput{kind: opPut, key: "stale", value: fmt.Sprintf("v%d", i)}
		call := rec.now()
		if _, err := doRegisterOp(tctx(t, opTimeout), lcli, in); err != nil {
			t.Fatalf("put: %v", err)
		}
		rec.add(0, call, in, regOutput{})
		in = regInput{kind: opGet, key: "stale"}
		call = rec.now()
		out, err := doRegisterOp(tctx(t, opTimeout), fcli, in)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		rec.add(0, call, in, out)
		if out.value != fmt.Sprintf("v%d", i) {
			stale++
		}
	}
	if stale == 0 {
		t.Skip("no stale read happened in 200 tries; nothing to catch")
	}
	if res := porcupine.CheckOperationsTimeout(registerModel, rec.ops, 30*time.Second); res != porcupine.Illegal {
		t.Fatalf("%d stale reads in the history, yet the checker says %s", stale, res)
	}
	t.Logf("%d stale follower reads, rejected by the checker", stale)
}

func doRegisterOp(ctx context.Context, cli *clientv3.Client, in regInput) (regOutput, error) {
	switch in.kind {
	case opGet:
		r, err := cli.Get(ctx, in.key)
		if err != nil {
			return regOutput{}, err
		}
		if len(r.Kvs) == 0 {
			return regOutput{}, nil
		}
		return regOutput{value: string(r.Kvs[0].Value)}, nil
	case opPut:
		_, err := cli.Put(ctx, in.key, in.value)
		return regOutput{}, err
	default:
		cmp := clientv3.Compare(clientv3.Value(in.key), "=", in.expect)
		if in.expect == "" {
			cmp = clientv3.Compare(clientv3.CreateRevision(in.key), "=", 0)
		}
		r, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(in.key, in.value)).Commit()
		if err != nil {
			return regOutput{}, err
		}
		return regOutput{ok: r.Succeeded}, nil
	}
}

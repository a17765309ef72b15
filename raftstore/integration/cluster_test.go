package integration

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// writeLoad is a set of clients writing unique keys in a loop and recording
// which writes were acknowledged.
type writeLoad struct {
	prefix string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	acked  map[string]string
	maxRev int64
	errs   int
	last   error
}

// startWrites runs n writers on cli until stop is called.
func startWrites(t *testing.T, cli *clientv3.Client, prefix string, n int) *writeLoad {
	return startWritesSized(t, cli, prefix, n, 0)
}

// startWritesSized is startWrites with values padded to size bytes.
func startWritesSized(t *testing.T, cli *clientv3.Client, prefix string, n, size int) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeLoad{prefix: prefix, cancel: cancel, acked: map[string]string{}}
	t.Cleanup(w.stop)
	for i := 0; i < n; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				k := fmt.Sprintf("%s%02d/%06d", prefix, i, j)
				v := fmt.Sprintf("v%d-%d", i, j)
				if len(v) < size {
					v += strings.Repeat("x", size-len(v))
				}
				octx, ocancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := cli.Put(octx, k, v)
				ocancel()
				w.mu.Lock()
				if err == nil {
					w.acked[k] = v
					if r.Header.Revision > w.maxRev {
						w.maxRev = r.Header.Revision
					}
				} else {
					w.errs++
					w.last = err
				}
				w.mu.Unlock()
				if err != nil && ctx.Err() == nil {
					// Do not spin while there is no leader.
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	return w
}

func (w *writeLoad) stop() { w.cancel(); w.wg.Wait() }

// count returns the number of acknowledged writes so far.
func (w *writeLoad) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcked waits until at least n more writes than now were acknowledged.
func (w *writeLoad) waitMore(t *testing.T, n int, d time.Duration) {
	t.Helper()
	base := w.count()
	eventually(t, d, fmt.Sprintf("%d more acknowledged writes", n), func() error {
		if got := w.count() - base; got < n {
			w.mu.Lock()
			defer w.mu.Unlock()
			return fmt.Errorf("%d so far (%d errors, last %v)", got, w.errs, w.last)
		}
		return nil
	})
}

// checkAll asserts every acknowledged write is readable on member m with a
// serializable (local) read, once m has caught up. This is the "no
// acknowledged write lost" check.
func (w *writeLoad) checkAll(t *testing.T, c *Cluster, m node, d time.Duration) {
	t.Helper()
	w.mu.Lock()
	acked := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		acked[k] = v
	}
	w.mu.Unlock()
	mc := c.memberClient(m)
	c.eventually(d, fmt.Sprintf("%d acknowledged writes on %s", len(acked), m.ClientAddr()), func() error {
		// Read in pages: one range of thousands of 12 KiB values is a
		// response of tens of MiB, which under -race on a loaded machine
		// can outlast opTimeout on every try.
		have := make(map[string]string, len(acked))
		end := clientv3.GetPrefixRangeEnd(w.prefix)
		for from := w.prefix; ; {
			g, err := mc.Get(tctx(t, opTimeout), from, clientv3.WithRange(end), clientv3.WithLimit(256),
				clientv3.WithSerializable(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
			if err != nil {
				return err
			}
			for _, kv := range g.Kvs {
				have[string(kv.Key)] = string(kv.Value)
			}
			if !g.More || len(g.Kvs) == 0 {
				break
			}
			from = string(g.Kvs[len(g.Kvs)-1].Key) + "\x00"
		}
		var missing []string
		for k, v := range acked {
			if have[k] != v {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			if len(missing) > 5 {
				missing = append(missing[:5], "...")
			}
			return fmt.Errorf("acknowledged writes missing: %d of %d (%s)", len(missing), len(acked), strings.Join(missing, " "))
		}
		return nil
	})
}

func memberID(t *testing.T, c *Cluster, m node) uint64 {
	t.Helper()
	st, err := c.status(m)
	if err != nil {
		t.Fatalf("status of %s: %v", m.ClientAddr(), err)
	}
	return st.Header.MemberId
}

// TestMembership: start one member, join two, remove one, while a client
// keeps writing through the first member.
func TestMembership(t *testing.T) {
	c := newCluster(t, 1, opts{})
	first := c.Members()[0]
	cli := c.memberClient(first)
	load := startWrites(t, cli, "mb/", 2)
	load.waitMore(t, 20, 20*time.Second)

	a := c.Join()
	load.waitMore(t, 20, 30*time.Second)
	b := c.Join()
	load.waitMore(t, 20, 30*time.Second)
	c.WaitLeader(30 * time.Second)

	for _, m := range c.Members() {
		mc := c.memberClient(m)
		c.eventually(20*time.Second, "3 members in the list of "+m.ClientAddr(), func() error {
			ml, err := mc.MemberList(tctx(t, opTimeout))
			if err != nil {
				return err
			}
			if len(ml.Members) != 3 {
				return fmt.Errorf("%d members: %v", len(ml.Members), ml.Members)
			}
			for _, mem := range ml.Members {
				if mem.Name == "" || len(mem.PeerURLs) == 0 || len(mem.ClientURLs) == 0 {
					return fmt.Errorf("member %x incomplete: name %q peers %v clients %v", mem.ID, mem.Name, mem.PeerURLs, mem.ClientURLs)
				}
			}
			return nil
		})
	}
	// The joined members hold everything written before they joined.
	load.checkAll(t, c, a, 30*time.Second)
	load.checkAll(t, c, b, 30*time.Second)

	// A joined member restarts on its data dir (with its Join setting still
	// there, which must be ignored) and keeps up; the quorum holds meanwhile.
	c.Kill(b)
	load.waitMore(t, 20, 30*time.Second)
	c.Restart(b)
	load.waitMore(t, 20, 30*time.Second)
	load.checkAll(t, c, b, 30*time.Second)
	if ml, err := cli.MemberList(tctx(t, opTimeout)); err != nil || len(ml.Members) != 3 {
		t.Errorf("member list after restarting a joined member: %v err %v, want 3 members", ml, err)
	}

	// Remove a follower that is not the first member.
	victim := a
	if c.Leader() == a {
		victim = b
	}
	vid := memberID(t, c, victim)
	memberRemove(t, cli, vid)
	c.Kill(victim)
	c.Forget(victim)
	load.waitMore(t, 20, 30*time.Second)
	ml, err := cli.MemberList(tctx(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 2 {
		t.Errorf("after remove: %d members %v, want 2", len(ml.Members), ml.Members)
	}
	for _, mem := range ml.Members {
		if mem.ID == vid {
			t.Errorf("removed member %x still listed", vid)
		}
	}
	_, err = cli.MemberRemove(tctx(t, opTimeout), vid)
	wantErr(t, "removing a removed member", err, rpctypes.ErrMemberNotFound)

	// MemberAdd through the API (a peer that never starts), then remove it:
	// with 2 live voters of 3 the cluster keeps a quorum throughout.
	var add *clientv3.MemberAddResponse
	eventually(t, 30*time.Second, "member add", func() error {
		add, err = cli.MemberAdd(tctx(t, opTimeout), []string{"http://127.0.0.1:1"})
		return retryUnhealthy(t, err)
	})
	if add.Member == nil || add.Member.ID == 0 || len(add.Members) != 3 {
		t.Errorf("member add answer: member %v, %d members, want an id and 3 members", add.Member, len(add.Members))
	}
	memberRemove(t, cli, add.Member.ID)
	load.waitMore(t, 20, 30*time.Second)
	load.stop()
	for _, m := range c.Members() {
		load.checkAll(t, c, m, 30*time.Second)
	}

	if load.errs > 0 {
		t.Logf("%d writes failed (outcome unknown) during membership changes; last: %v", load.errs, load.last)
	}
}

// retryUnhealthy turns etcd's "unhealthy cluster" (a reconfiguration refused
// because a member connected only recently) into a retry, and any other error
// into a test failure.
func retryUnhealthy(t *testing.T, err error) error {
	t.Helper()
	if err == nil {
		return nil
	}
	if errors.Is(err, rpctypes.ErrUnhealthy) {
		return err
	}
	t.Fatalf("membership change: %v", err)
	return nil
}

func memberRemove(t *testing.T, cli *clientv3.Client, id uint64) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("member remove %x", id), func() error {
		_, err := cli.MemberRemove(tctx(t, opTimeout), id)
		return retryUnhealthy(t, err)
	})
}

// TestMaintenance: Status fields, HashKV equal on every member, no alarms.
func TestMaintenance(t *testing.T) {
	c := newCluster(t, 3, opts{})
	cli := c.Client()
	var last int64
	for i := 0; i < 50; i++ {
		last = mustPut(t, cli, fmt.Sprintf("mt/%d", i%7), fmt.Sprint(i)).Header.Revision
	}
	if _, err := cli.Delete(tctx(t, opTimeout), "mt/3"); err != nil {
		t.Fatal(err)
	}
	var leader uint64
	for _, m := range c.Members() {
		st, err := c.memberClient(m).Status(tctx(t, opTimeout), m.ClientAddr())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(st.Version, "3.") {
			t.Errorf("%s: version %q, want 3.x", m.ClientAddr(), st.Version)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			t.Errorf("%s: leader %x (others said %x)", m.ClientAddr(), st.Leader, leader)
		}
		leader = st.Leader
		if st.RaftIndex == 0 || st.RaftTerm == 0 || st.DbSize <= 0 {
			t.Errorf("%s: raft index %d term %d db size %d, want all > 0", m.ClientAddr(), st.RaftIndex, st.RaftTerm, st.DbSize)
		}
		checkHeader(t, "status of "+m.ClientAddr(), st.Header)
	}
	// HashKV at one revision is the same everywhere once all have applied it.
	var hashes []string
	c.eventually(20*time.Second, "equal HashKV on all members", func() error {
		hashes = hashes[:0]
		seen := map[uint32]bool{}
		for _, m := range c.Members() {
			h, err := c.memberClient(m).HashKV(tctx(t, opTimeout), m.ClientAddr(), last)
			if err != nil {
				return err
			}
			seen[h.Hash] = true
			hashes = append(hashes, fmt.Sprintf("%s=%x", m.ClientAddr(), h.Hash))
			if h.Hash == 0 {
				return errors.New("hash 0")
			}
		}
		if len(seen) != 1 {
			return fmt.Errorf("hashes differ: %v", hashes)
		}
		return nil
	})
	al, err := cli.AlarmList(tctx(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if len(al.Alarms) != 0 {
		t.Errorf("alarms: %v, want none", al.Alarms)
	}
}

// TestAutoCompaction: with periodic auto-compaction on, old revisions become
// compacted without anyone asking, while the latest data stays.
func TestAutoCompaction(t *testing.T) {
	c := newCluster(t, 3, opts{AutoCompactionRetention: time.Second})
	cli := c.Client()
	r1 := mustPut(t, cli, "ac/a", "1").Header.Revision
	c.eventually(60*time.Second, "revision "+fmt.Sprint(r1)+" compacted automatically", func() error {
		// Keep writing so there is always something newer to keep.
		mustPut(t, cli, "ac/b", time.Now().String())
		_, err := cli.Get(tctx(t, opTimeout), "ac/a", clientv3.WithRev(r1-1))
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Errorf("range at %d: %v", r1-1, err)
		}
		return nil
	})
	if g := mustGet(t, cli, "ac/a"); len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "1" {
		t.Errorf("latest value after auto-compaction: %v", g.Kvs)
	}
}

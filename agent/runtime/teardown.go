package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	client "github.com/containerd/containerd"
)

// Teardown budget: a pod's removal is a handful of containerd calls, a CNI
// DEL (two plugin runs) and cgroup removals, well under a second on an idle
// node but several seconds each on a loaded one, so the time allowed grows
// with the number of pods.
const (
	teardownBase   = 60 * time.Second
	teardownPerPod = 2 * time.Second
	// teardownWorkers pods are removed at once: enough to overlap the
	// waits on containerd and the plugins, few enough not to bury a small
	// node (and whoever shares it) under hundreds of processes.
	teardownWorkers = 4
	// teardownPodTimeout bounds one pod's removal, so that one stuck pod
	// does not eat the others' time; it is tried again in the next pass.
	teardownPodTimeout = 60 * time.Second
	// sweepTimeout bounds the last sweep of netns and cgroups, which runs
	// even when the budget is spent.
	sweepTimeout = 30 * time.Second
)

// TeardownBudget is the time Teardown allows itself for pods pods.
func TeardownBudget(pods int) time.Duration {
	return teardownBase + time.Duration(pods)*teardownPerPod
}

// Teardown removes every pod of this runtime's namespace, the node bridge
// and the cgroup parent: what `make down` and tests need to leave the host
// clean. The pods are removed a few at a time, in passes that start again
// on what is left until nothing is or the budget ends: ctx's deadline or,
// sooner, TeardownBudget of the pods found. Then, whatever happened, a
// sweep removes what a pod cut short can leave on the host: network
// namespaces named after the bridge (with a CNI DEL) and cgroups under the
// parent (killing the processes still in them). The error names what is
// still there.
func (r *Runtime) Teardown(ctx context.Context) error {
	uids, err := r.podUIDs(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, TeardownBudget(len(uids)))
	defer cancel()
	var passErr error
	for pass := 1; ; pass++ {
		if passErr = r.teardownPass(ctx, uids); passErr == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(pass) * 200 * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
		if uids, err = r.podUIDs(ctx); err != nil {
			passErr = err
			break
		}
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), sweepTimeout)
	defer scancel()
	if err := r.sweep(sctx); err != nil {
		if passErr != nil {
			return fmt.Errorf("%w; after the sweep: %w", passErr, err)
		}
		return err
	}
	// The sweep finished what the passes could not: the host is clean.
	return nil
}

// teardownPass removes the pods uids, teardownWorkers at a time, then the
// bridge and the cgroup parent.
func (r *Runtime) teardownPass(ctx context.Context, uids []string) error {
	work := make(chan string)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(teardownWorkers, len(uids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for uid := range work {
				pctx, cancel := context.WithTimeout(ctx, teardownPodTimeout)
				err := r.RemovePod(pctx, uid, 0)
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("pod %s: %w", uid, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, uid := range uids {
		select {
		case work <- uid:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the bridge stays for the next pass
	}
	if err := r.net.deleteBridge(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroupTree("/"+r.cfg.CgroupParent, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// podUIDs lists the pods the runtime has anything of: containerd
// containers (by label; no per-container call) and pod directories (a pod
// whose containers are gone can still have a netns, cgroups or mounts).
func (r *Runtime) podUIDs(ctx context.Context) ([]string, error) {
	ctx = r.ns(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf(`labels.%q`, LabelPodUID))
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, c := range cs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		if uid := info.Labels[LabelPodUID]; uid != "" {
			set[uid] = true
		}
	}
	ents, err := os.ReadDir(filepath.Join(r.cfg.DataDir, "pods"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() {
			set[e.Name()] = true
		}
	}
	uids := make([]string, 0, len(set))
	for uid := range set {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	return uids, nil
}

// sweep removes, without containerd, what pods can leave on the host when
// their removal was cut short: every network namespace named after the
// node bridge (CNI DEL first, so the veth and the address go too), the
// processes still in the cgroups under the parent (SIGKILL: only this
// runtime's containers live there), and those cgroups in every hierarchy;
// then the bridge. It returns what it could not remove.
func (r *Runtime) sweep(ctx context.Context) error {
	var errs []error
	for _, path := range r.leftoverNetns() {
		key := strings.TrimPrefix(filepath.Base(path), r.cfg.BridgeName+"-")
		if err := r.net.teardown(ctx, sandboxIDOfKey(key), path); err != nil {
			errs = append(errs, fmt.Errorf("netns %s: %w", path, err))
		}
		if err := unpinNetns(path); err != nil {
			errs = append(errs, err)
		}
	}
	parent := "/" + r.cfg.CgroupParent
	if err := removeCgroupTree(parent, 0); err != nil {
		killCgroupProcs(parent)
		if err := removeCgroupTree(parent, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.net.deleteBridge(ctx); err != nil {
		errs = append(errs, err)
	}
	if left := r.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still on the host: %s", strings.Join(left, ", ")))
	}
	return errors.Join(errs...)
}

// leftoverNetns lists the pinned network namespaces of this node's pods.
func (r *Runtime) leftoverNetns() []string {
	ents, _ := os.ReadDir(r.cfg.NetnsDir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), r.cfg.BridgeName+"-") {
			out = append(out, filepath.Join(r.cfg.NetnsDir, e.Name()))
		}
	}
	return out
}

// Leftovers lists what of this runtime's pods is on the host outside
// containerd: pod network namespaces (named after the bridge) and the
// cgroup parent in any hierarchy. Empty after a complete Teardown.
func (r *Runtime) Leftovers() []string {
	var out []string
	for _, p := range r.leftoverNetns() {
		out = append(out, "netns "+p)
	}
	hier, _ := os.ReadDir(cgroupRoot)
	for _, h := range hier {
		dir := filepath.Join(cgroupRoot, h.Name(), r.cfg.CgroupParent)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out = append(out, "cgroup "+dir)
		}
	}
	return out
}

// killCgroupProcs SIGKILLs every process in the cgroup path (and below) of
// every hierarchy.
func killCgroupProcs(path string) {
	hier, _ := os.ReadDir(cgroupRoot)
	for _, h := range hier {
		root := filepath.Join(cgroupRoot, h.Name(), path)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is where the v1 hierarchies (and the v2 "unified" one in hybrid
// mode) are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// createPodCgroup makes the pod-level cgroup (a path relative to each
// hierarchy's root) and sets the pod's totals. runc creates the container
// cgroups below it; the pod cgroup caps them together.
func createPodCgroup(path string, r containerResources, pidsLimit int64) error {
	write := func(ctrl, file, value string) error {
		dir := filepath.Join(cgroupRoot, ctrl, path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if file == "" {
			return nil
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
			return fmt.Errorf("cgroup %s/%s: %w", dir, file, err)
		}
		return nil
	}
	steps := []struct{ ctrl, file, value string }{
		{"memory", "", ""},
		{"cpu", "cpu.shares", strconv.FormatUint(r.CPUShares, 10)},
		{"pids", "", ""},
	}
	if r.MemoryLimit > 0 {
		steps = append(steps, struct{ ctrl, file, value string }{"memory", "memory.limit_in_bytes", strconv.FormatInt(r.MemoryLimit, 10)})
	}
	if r.CPUQuota > 0 {
		steps = append(steps,
			struct{ ctrl, file, value string }{"cpu", "cpu.cfs_period_us", strconv.FormatUint(r.CPUPeriod, 10)},
			struct{ ctrl, file, value string }{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(r.CPUQuota, 10)})
	}
	if pidsLimit > 0 {
		steps = append(steps, struct{ ctrl, file, value string }{"pids", "pids.max", strconv.FormatInt(pidsLimit, 10)})
	}
	for _, s := range steps {
		if err := write(s.ctrl, s.file, s.value); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroupTree removes path and every cgroup below it in every mounted
// hierarchy, including "unified" and "name=systemd" where runc also creates
// directories but removes only the leaves. Cgroups still holding processes
// (tasks being reaped) are retried until the deadline.
func removeCgroupTree(path string, timeout time.Duration) error {
	if strings.Trim(path, "/") == "" {
		return errors.New("refusing to remove a cgroup root")
	}
	hier, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var errs []error
	for _, h := range hier {
		if !h.IsDir() {
			continue
		}
		dir := filepath.Join(cgroupRoot, h.Name(), path)
		for {
			err := rmdirTree(dir)
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					errs = append(errs, err)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// rmdirTree removes a cgroup directory bottom-up (cgroup files cannot be
// unlinked; only the directories are removed).
func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}

// oomKills reads the oom_kill counter of a memory cgroup: how many of its
// own processes the kernel OOM-killed. ok is false when the cgroup (deleted
// with its task) or the counter is not there.
func oomKills(path string) (kills int, ok bool) {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "memory", path, "memory.oom_control"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "oom_kill "); found {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

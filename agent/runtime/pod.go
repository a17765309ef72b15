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
	"time"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/images"
)

const runcRuntime = "io.containerd.runc.v2"

// RunPod runs a whole pod: the sandbox, then each init container to
// successful completion in order, then every app container. It is
// idempotent: containers that already exist are not started again (a
// completed init container is skipped, a running one waited for), so a
// RunPod cut short can simply be called again. It is the simple path; the
// agent's pod workers can call RunSandbox and StartContainer themselves to
// apply restart policies and back-off.
func (r *Runtime) RunPod(ctx context.Context, in PodInput) (*PodStatus, error) {
	st, err := r.RunSandbox(ctx, in)
	if err != nil {
		return nil, err
	}
	uid := string(in.Pod.UID)
	for _, c := range in.Pod.Spec.InitContainers {
		cur, exists := st.Container(c.Name)
		if !exists || cur.State == StateCreated {
			if _, err := r.StartContainer(ctx, in, c.Name); err != nil {
				return nil, err
			}
		}
		if exists && cur.State == StateExited && cur.ExitCode == 0 {
			continue
		}
		code, err := r.WaitContainer(ctx, uid, c.Name)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, fmt.Errorf("pod %s/%s: init container %s exited %d", in.Pod.Namespace, in.Pod.Name, c.Name, code)
		}
	}
	for _, c := range in.Pod.Spec.Containers {
		if cur, exists := st.Container(c.Name); exists && cur.State != StateCreated {
			continue
		}
		if _, err := r.StartContainer(ctx, in, c.Name); err != nil {
			return nil, err
		}
	}
	return r.PodStatus(ctx, uid)
}

// RunSandbox creates the pod's sandbox: pod dir and /etc files, pinned netns
// with a CNI address, pod cgroup with the pod's totals, volumes, pinned UTS
// and IPC namespaces, and the sandbox's containerd container (labels only:
// no task, no snapshot). It is idempotent: a pod whose sandbox exists is returned
// as is. On failure everything made is removed again.
func (r *Runtime) RunSandbox(ctx context.Context, in PodInput) (_ *PodStatus, err error) {
	if err := validatePod(in.Pod); err != nil {
		return nil, err
	}
	pod := in.Pod
	uid := string(pod.UID)
	unlock := r.lockPod(uid)
	defer unlock()
	ctx = r.ns(ctx)

	if _, err := r.client.LoadContainer(ctx, sandboxID(uid)); err == nil {
		return r.podStatus(ctx, uid)
	}
	defer func() {
		if err != nil {
			_ = r.removePodLocked(context.WithoutCancel(ctx), uid, 0)
		}
	}()

	dir := r.podDir(uid)
	for _, d := range []string{dir, filepath.Join(dir, "volumes"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	netns := r.netnsPath(uid)
	if err := pinNetns(netns); err != nil {
		return nil, err
	}
	ip, err := r.net.setup(ctx, sandboxID(uid), netns)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s network: %w", pod.Namespace, pod.Name, err)
	}
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.") // the kubelet's rule
	}
	if err := r.writePodFiles(uid, hostname, ip.String(), in.ResolvConf); err != nil {
		return nil, err
	}
	if err := createPodCgroup(r.podCgroup(uid), podResources(pod), r.cfg.PidsLimit); err != nil {
		return nil, err
	}
	if err := r.prepareVolumes(in); err != nil {
		return nil, err
	}

	// The pod's UTS (with its hostname) and IPC namespaces are pinned like
	// its netns; no pause process holds them. The sandbox is a containerd
	// container without a task or a snapshot: the record of the pod (its
	// labels), one call.
	utsPath, ipcPath := r.podNSPath(uid, "uts"), r.podNSPath(uid, "ipc")
	if err := pinPodNamespaces(utsPath, ipcPath, hostname); err != nil {
		return nil, err
	}
	labels := podLabels(pod)
	labels[LabelRole] = roleSandbox
	labels[LabelNetns] = netns
	labels[LabelUTSNS] = utsPath
	labels[LabelIPCNS] = ipcPath
	labels[LabelPodIP] = ip.String()
	labels[LabelQOS] = string(QOSClass(pod))
	labels[LabelCgroup] = r.podCgroup(uid)
	id := sandboxID(uid)
	if _, err := r.client.NewContainer(ctx, id,
		client.WithRuntime(runcRuntime, &options.Options{Root: filepath.Join(r.cfg.DataDir, "runc")}),
		client.WithContainerLabels(labels),
		client.WithSpec(&oci.Spec{Version: specs.Version}),
	); err != nil {
		return nil, fmt.Errorf("create sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return r.podStatus(ctx, uid)
}

func (r *Runtime) writePodFiles(uid, hostname, ip string, resolvConf []byte) error {
	dir := r.podDir(uid)
	resolv := []byte{}
	if resolvConf != nil {
		resolv = resolvConf
	} else if r.cfg.ResolvConf != "" {
		if b, err := os.ReadFile(r.cfg.ResolvConf); err == nil {
			resolv = b
		}
	}
	files := map[string][]byte{
		"hosts": []byte(fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
			ip, hostname)),
		"hostname":    []byte(hostname + "\n"),
		"resolv.conf": resolv,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// prepareVolumes makes the pod's volume directories: emptyDir (a tmpfs
// capped at sizeLimit for medium Memory), files of resolved configMap,
// secret, downwardAPI and projected volumes, and hostPath checks; a
// persistentVolumeClaim's directory must have been resolved and exist.
func (r *Runtime) prepareVolumes(in PodInput) error {
	for i := range in.Pod.Spec.Volumes {
		v := &in.Pod.Spec.Volumes[i]
		dir := r.volumeSource(in, v)
		switch {
		case v.PersistentVolumeClaim != nil:
			if dir == "" {
				return fmt.Errorf("%w: volume %s: the directory of claim %s must be resolved by the caller (PodInput.VolumePaths)",
					ErrInvalidInput, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return fmt.Errorf("%w: volume %s: claim %s: %s is not a directory", ErrInvalidInput, v.Name,
					v.PersistentVolumeClaim.ClaimName, dir)
			}
			continue
		case v.HostPath != nil:
			if err := prepareHostPath(v); err != nil {
				return err
			}
			continue
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
			if v.EmptyDir.Medium == corev1.StorageMediumMemory {
				data := "mode=0777"
				if v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero() {
					data += ",size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
				}
				if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
					return fmt.Errorf("volume %s: tmpfs: %w", v.Name, err)
				}
			}
			_ = os.Chmod(dir, 0o777)
		default:
			files, ok := in.VolumeFiles[v.Name]
			if !ok {
				return fmt.Errorf("%w: volume %s: its files must be resolved by the caller (PodInput.VolumeFiles)",
					ErrInvalidInput, v.Name)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for rel, data := range files {
				if filepath.IsAbs(rel) || strings.Contains(rel, "..") {
					return fmt.Errorf("%w: volume %s: file path %q", ErrInvalidInput, v.Name, rel)
				}
				p := filepath.Join(dir, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func prepareHostPath(v *corev1.Volume) error {
	p := v.HostPath.Path
	var t corev1.HostPathType
	if v.HostPath.Type != nil {
		t = *v.HostPath.Type
	}
	st, err := os.Stat(p)
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return os.MkdirAll(p, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	case corev1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return fmt.Errorf("%w: volume %s: hostPath %s is not a directory", ErrInvalidInput, v.Name, p)
		}
	case corev1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%w: volume %s: hostPath %s is not a file", ErrInvalidInput, v.Name, p)
		}
	case corev1.HostPathUnset:
	default:
		if err != nil {
			return fmt.Errorf("%w: volume %s: hostPath %s: %v", ErrInvalidInput, v.Name, p, err)
		}
	}
	return nil
}

func (r *Runtime) image(ctx context.Context, ref string) (client.Image, error) {
	full, err := images.Normalize(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	img, err := r.client.GetImage(ctx, full)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %s (import it with `skiff image import FILE`; build the test images with `skiff image build-test`)",
			ErrImageNotFound, full)
	}
	if err != nil {
		return nil, err
	}
	// Images imported by other tools may not be unpacked for our
	// snapshotter. Checking reads the manifest, the config and the
	// snapshot (five containerd calls): an image content once found
	// unpacked is not checked again (every pod start needs two images).
	target := img.Target().Digest
	r.mu.Lock()
	known := r.unpacked[target]
	r.mu.Unlock()
	if known {
		return img, nil
	}
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err == nil && !ok {
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s for %s: %w", full, r.cfg.Snapshotter, err)
		}
	}
	if err == nil {
		r.mu.Lock()
		r.unpacked[target] = true
		r.mu.Unlock()
	}
	return img, nil
}

// forgetUnpacked makes the next use of img check its snapshot again (a
// container could not be made from it: the snapshot may be gone).
func (r *Runtime) forgetUnpacked(img client.Image) {
	r.mu.Lock()
	delete(r.unpacked, img.Target().Digest)
	r.mu.Unlock()
}

// StartContainer creates and starts the named (init or app) container of a
// pod whose sandbox runs. An exited earlier instance is removed first, its
// termination recorded on the new one and its log kept as the previous
// log; the restart count goes up by one.
func (r *Runtime) StartContainer(ctx context.Context, in PodInput, name string) (ContainerStatus, error) {
	if err := validatePod(in.Pod); err != nil {
		return ContainerStatus{}, err
	}
	pod := in.Pod
	uid := string(pod.UID)
	unlock := r.lockPod(uid)
	defer unlock()
	ctx = r.ns(ctx)

	spec, isInit, err := findContainer(pod, name)
	if err != nil {
		return ContainerStatus{}, err
	}
	sb, err := r.client.LoadContainer(ctx, sandboxID(uid))
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("%w: %s/%s (uid %s) has no sandbox", ErrPodNotFound, pod.Namespace, pod.Name, uid)
	}
	sbLabels, err := sb.Labels(ctx)
	if err != nil {
		return ContainerStatus{}, err
	}
	utsNS, ipcNS, err := r.sandboxNamespaces(ctx, sb, sbLabels)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("sandbox of %s/%s: %w", pod.Namespace, pod.Name, err)
	}

	labels := podLabels(pod)
	labels[LabelContainer] = name
	labels[LabelImage] = spec.Image
	labels[LabelRole] = roleContainer
	if isInit {
		labels[LabelRole] = roleInit
	}
	restart := 0
	prev, err := r.containersOf(ctx, uid, name)
	if err != nil {
		return ContainerStatus{}, err
	}
	for _, p := range prev {
		st := r.containerStatus(ctx, p)
		if st.State == StateRunning {
			return st, fmt.Errorf("%w: %s/%s container %s (%s)", ErrAlreadyRunning, pod.Namespace, pod.Name, name, st.ID)
		}
		if st.State == StateCreated || st.StartedAt.IsZero() {
			// Created but never started (the agent stopped in between):
			// replace it without counting a restart.
			if st.RestartCount > restart {
				restart = st.RestartCount
			}
			if lt := st.LastTermination; lt != nil {
				labels[LabelLastExitCode] = strconv.Itoa(int(lt.ExitCode))
				labels[LabelLastReason] = lt.Reason
				labels[LabelLastStartedAt] = formatTime(lt.StartedAt)
				labels[LabelLastFinishedAt] = formatTime(lt.FinishedAt)
			}
		} else if st.RestartCount+1 > restart {
			restart = st.RestartCount + 1
			labels[LabelLastExitCode] = strconv.Itoa(int(st.ExitCode))
			labels[LabelLastReason] = st.Reason
			labels[LabelLastStartedAt] = formatTime(st.StartedAt)
			labels[LabelLastFinishedAt] = formatTime(st.FinishedAt)
		}
		if err := r.deleteContainer(ctx, p); err != nil {
			return ContainerStatus{}, err
		}
	}
	labels[LabelRestartCount] = strconv.Itoa(restart)

	img, err := r.image(ctx, spec.Image)
	if err != nil {
		return ContainerStatus{}, err
	}
	id := containerID(uid, name, restart)
	logPath := r.LogPath(uid, name, restart)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return ContainerStatus{}, err
	}
	pruneLogs(filepath.Dir(logPath), restart)
	labels[LabelLogPath] = logPath
	if r.cfg.LoggerBinary == "" {
		labels[LabelLogMode] = logModeAgent
	}

	specOpts, err := r.containerSpecOpts(ctx, in, spec, img, id, utsNS, ipcNS, sbLabels[LabelNetns], sbLabels[LabelPodIP])
	if err != nil {
		return ContainerStatus{}, err
	}
	ctr, err := r.client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter(r.cfg.Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithRuntime(runcRuntime, &options.Options{Root: filepath.Join(r.cfg.DataDir, "runc")}),
		client.WithContainerLabels(labels),
		client.WithNewSpec(specOpts...),
	)
	if err != nil {
		r.forgetUnpacked(img)
		return ContainerStatus{}, fmt.Errorf("create container %s of %s/%s: %w", name, pod.Namespace, pod.Name, err)
	}
	// Undo on a context of its own: the caller's may be why we failed. A
	// task whose creation or start was cut short may exist in the shim.
	undo := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = r.stopTask(cctx, ctr, 0)
		_ = r.deleteContainer(cctx, ctr)
	}
	task, err := ctr.NewTask(ctx, r.logCreator(id, logPath))
	if err != nil {
		undo()
		return ContainerStatus{}, fmt.Errorf("create task %s of %s/%s: %w", name, pod.Namespace, pod.Name, err)
	}
	if err := task.Start(ctx); err != nil {
		undo()
		return ContainerStatus{}, fmt.Errorf("start %s of %s/%s: %w", name, pod.Namespace, pod.Name, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{LabelStartedAt: formatTime(time.Now())}); err != nil {
		return ContainerStatus{}, err
	}
	return r.containerStatus(ctx, ctr), nil
}

// sandboxNamespaces returns the UTS and IPC namespaces the pod's
// containers join: the pinned ones, or, for a sandbox made by an earlier
// agent, its running pause process's.
func (r *Runtime) sandboxNamespaces(ctx context.Context, sb client.Container, l map[string]string) (uts, ipc string, err error) {
	if l[LabelUTSNS] != "" {
		for _, p := range []string{l[LabelUTSNS], l[LabelIPCNS], l[LabelNetns]} {
			if !isPinnedNamespace(p) {
				return "", "", fmt.Errorf("namespace %s is gone", p)
			}
		}
		return l[LabelUTSNS], l[LabelIPCNS], nil
	}
	task, err := sb.Task(ctx, nil)
	if err != nil {
		return "", "", fmt.Errorf("no pause task: %w", err)
	}
	if st, err := task.Status(ctx); err != nil || st.Status != client.Running {
		return "", "", fmt.Errorf("pause process is not running (%v, %v)", st.Status, err)
	}
	return fmt.Sprintf("/proc/%d/ns/uts", task.Pid()), fmt.Sprintf("/proc/%d/ns/ipc", task.Pid()), nil
}

func (r *Runtime) logCreator(id, path string) cio.Creator {
	if r.cfg.LoggerBinary != "" {
		return cio.BinaryIO(r.cfg.LoggerBinary, map[string]string{"cri-logger": path})
	}
	return r.logs.creator(id, path)
}

// pruneLogs keeps the log of the instance before current (for --previous)
// and removes older ones.
func pruneLogs(dir string, current int) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log"))
		if err == nil && n < current-1 {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// containersOf lists the pod's containerd containers, of one name if name
// is not empty (the sandbox has no name).
func (r *Runtime) containersOf(ctx context.Context, uid, name string) ([]client.Container, error) {
	filter := fmt.Sprintf(`labels.%q==%q`, LabelPodUID, uid)
	if name != "" {
		filter += fmt.Sprintf(`,labels.%q==%q`, LabelContainer, name)
	}
	return r.client.Containers(ctx, filter)
}

// deleteContainer removes a container's task and the container with its
// snapshot. The OOM kill counter is read first, as the task's deletion
// removes the cgroup that holds it.
//
// A task delete can fail with "ttrpc: closed" when the pod's shim exits
// under it (the last task of a shim group going): the task is then looked
// up again, and is usually gone.
func (r *Runtime) deleteContainer(ctx context.Context, c client.Container) error {
	drain := time.Duration(0) // no task: no shim ever opened the log FIFOs
	for attempt := 0; ; attempt++ {
		task, err := c.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			break
		} else if err != nil {
			return err
		}
		drain = logDrainWait
		r.noteCgroupOOM(ctx, c)
		_, err = task.Delete(ctx, client.WithProcessKill)
		if err == nil || errdefs.IsNotFound(err) {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "ttrpc: closed") {
			return fmt.Errorf("delete task %s: %w", c.ID(), err)
		}
	}
	// The task is gone, so the shim has closed (or is closing) the log
	// FIFOs: the copy ends once it has read what they still hold.
	r.logs.stop(c.ID(), drain)
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", c.ID(), err)
	}
	return nil
}

// WaitContainer blocks until the named container's current instance exits
// and returns its exit code. A wait cut by a containerd restart is retried.
func (r *Runtime) WaitContainer(ctx context.Context, uid, name string) (uint32, error) {
	ctx = r.ns(ctx)
	for {
		cs, err := r.containersOf(ctx, uid, name)
		if err != nil {
			return 0, err
		}
		if len(cs) == 0 {
			return 0, fmt.Errorf("%w: pod %s container %s", ErrContainerNotFound, uid, name)
		}
		task, err := cs[0].Task(ctx, nil)
		if err != nil {
			return 0, err
		}
		ch, err := task.Wait(ctx)
		if err == nil {
			select {
			case st := <-ch:
				if st.Error() == nil {
					return st.ExitCode(), nil
				}
				err = st.Error()
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !errdefs.IsUnavailable(err) && !strings.Contains(err.Error(), "transport") {
			return 0, err
		}
		time.Sleep(200 * time.Millisecond) // containerd restarting
	}
}

// StopContainer stops the named container's current instance: SIGTERM, up
// to grace for it to exit, then SIGKILL to every process of the container.
// The stopped container stays, so its exit shows in the status.
func (r *Runtime) StopContainer(ctx context.Context, uid, name string, grace time.Duration) error {
	ctx = r.ns(ctx)
	cs, err := r.containersOf(ctx, uid, name)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w: pod %s container %s", ErrContainerNotFound, uid, name)
	}
	for _, c := range cs {
		if err := r.stopTask(ctx, c, grace); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runtime) stopTask(ctx context.Context, c client.Container, grace time.Duration) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status == client.Stopped {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if grace > 0 {
		if err := task.Kill(ctx, unix.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("SIGTERM %s: %w", c.ID(), err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exited:
			return nil
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, unix.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL %s: %w", c.ID(), err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopPod stops every app and init container (in parallel, each with the
// grace period), then the sandbox.
func (r *Runtime) StopPod(ctx context.Context, uid string, grace time.Duration) error {
	unlock := r.lockPod(uid)
	defer unlock()
	return r.stopPodLocked(r.ns(ctx), uid, grace)
}

func (r *Runtime) stopPodLocked(ctx context.Context, uid string, grace time.Duration) error {
	cs, err := r.containersOf(ctx, uid, "")
	if err != nil {
		return err
	}
	var sandbox []client.Container
	errc := make(chan error, len(cs))
	n := 0
	for _, c := range cs {
		if c.ID() == sandboxID(uid) {
			sandbox = append(sandbox, c)
			continue
		}
		n++
		go func(c client.Container) { errc <- r.stopTask(ctx, c, grace) }(c)
	}
	var errs []error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range sandbox {
		if err := r.stopTask(ctx, c, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemovePod stops the pod (with grace for its containers) and removes every
// trace of it: containers and snapshots, the CNI attachment, the netns, the
// pod cgroups in every hierarchy, tmpfs volumes and the pod dir with its
// logs. It works from what containerd and the host hold, so it also cleans
// up after a half-created pod or an agent restart. Removing an absent pod
// is not an error.
func (r *Runtime) RemovePod(ctx context.Context, uid string, grace time.Duration) error {
	unlock := r.lockPod(uid)
	defer unlock()
	return r.removePodLocked(r.ns(ctx), uid, grace)
}

func (r *Runtime) removePodLocked(ctx context.Context, uid string, grace time.Duration) error {
	var errs []error
	if err := r.stopPodLocked(ctx, uid, grace); err != nil {
		errs = append(errs, err)
	}
	cs, err := r.containersOf(ctx, uid, "")
	if err != nil {
		return err
	}
	netns := r.netnsPath(uid)
	errc := make(chan error, len(cs))
	for _, c := range cs {
		if c.ID() == sandboxID(uid) {
			if l, err := c.Labels(ctx); err == nil && l[LabelNetns] != "" {
				netns = l[LabelNetns]
			}
		}
		go func(c client.Container) { errc <- r.deleteContainer(ctx, c) }(c)
	}
	for range cs {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	for _, c := range cs {
		delete(r.oomSeen, c.ID())
	}
	r.mu.Unlock()
	if err := r.net.teardown(ctx, sandboxID(uid), netns); err != nil {
		errs = append(errs, err)
	}
	if err := unpinNetns(netns); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(r.podDir(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroupTree(r.podCgroup(uid), 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(r.podDir(uid)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	prefix := filepath.Clean(dir) + "/"
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

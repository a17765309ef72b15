package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// pinNetns creates a new network namespace with its loopback interface up
// and bind-mounts it on path, so it lives without any process in it until
// unpinNetns.
func pinNetns(path string) error {
	if err := newMountPoint(path, "netns"); err != nil {
		return err
	}
	err := inNewNamespaces(unix.CLONE_NEWNET, func(tid int) error {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("netns %s: loopback up: %w", path, err)
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), tid)
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin netns on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// nsKinds names the /proc/<pid>/task/<tid>/ns entries of unshare flags.
var nsKinds = []struct {
	flag int
	name string
}{{unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWUTS, "uts"}, {unix.CLONE_NEWIPC, "ipc"}}

// inNewNamespaces runs fn on a thread of its own that has just unshared the
// namespaces in flags, then moves that thread back to the namespaces it came
// from. fn gets the thread's ID (to bind-mount /proc/<pid>/task/<tid>/ns/*).
//
// The thread goes back to the scheduler only once it is back in the
// agent's own namespaces; if it cannot get back it stays locked, and Go
// retires it when the goroutine ends. Retiring alone is not enough: the
// goroutine may run on the main thread, which Go never ends, and
// /proc/<agent pid>/ns would then name a pod's namespaces.
func inNewNamespaces(flags int, fn func(tid int) error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		tid := unix.Gettid()
		var back []int
		defer func() {
			for _, fd := range back {
				unix.Close(fd)
			}
		}()
		for _, k := range nsKinds {
			if flags&k.flag == 0 {
				continue
			}
			fd, err := unix.Open(fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, k.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				goruntime.UnlockOSThread()
				errc <- fmt.Errorf("open own %s namespace: %w", k.name, err)
				return
			}
			back = append(back, fd)
		}
		if err := unix.Unshare(flags); err != nil {
			goruntime.UnlockOSThread() // nothing changed
			errc <- fmt.Errorf("unshare %#x: %w", flags, err)
			return
		}
		err := fn(tid)
		for _, fd := range back {
			if unix.Setns(fd, 0) != nil {
				errc <- err // stays locked: retired with the pod's namespaces
				return
			}
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newMountPoint makes the empty file a namespace is bind-mounted on; one
// that exists already is an error (what names the namespace in it).
func newMountPoint(path, what string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return f.Close()
}

// unpinNetns unmounts and removes a pinned namespace (network, UTS or
// IPC); a missing one is fine.
func unpinNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// loopbackUp sets the calling thread's network namespace's "lo" up: what
// the CNI loopback plugin does, without running a plugin per pod (one
// process less on every sandbox's path).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// pinPodNamespaces creates a UTS namespace with the pod's hostname and an
// IPC namespace, and bind-mounts them on utsPath and ipcPath: the pod's
// containers join them by path, so no process has to hold them (the pause
// container did, at the cost of a runc create and start per pod).
func pinPodNamespaces(utsPath, ipcPath, hostname string) error {
	for _, p := range []string{utsPath, ipcPath} {
		if err := newMountPoint(p, "pod namespace"); err != nil {
			return err
		}
	}
	err := inNewNamespaces(unix.CLONE_NEWUTS|unix.CLONE_NEWIPC, func(tid int) error {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("hostname %q: %w", hostname, err)
		}
		for _, m := range []struct{ ns, path string }{{"uts", utsPath}, {"ipc", ipcPath}} {
			src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, m.ns)
			if err := unix.Mount(src, m.path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("pin %s namespace on %s: %w", m.ns, m.path, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = unpinNetns(utsPath)
		_ = unpinNetns(ipcPath)
		return err
	}
	return nil
}

// isPinnedNamespace says whether path is a namespace bind mount (after a
// reboot the files are still there, but no longer namespaces).
func isPinnedNamespace(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

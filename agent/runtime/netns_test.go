package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Threads that created a pod's namespaces go back to the agent's own: no
// thread of the process, the main one included, is left in a namespace
// it unshared, and what fn did there (the hostname) stays there.
func TestInNewNamespacesReturnsThreads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare)")
	}
	own, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/uts", os.Getpid(), unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	for i := 0; i < 40; i++ {
		var inside string
		err := inNewNamespaces(unix.CLONE_NEWUTS|unix.CLONE_NEWIPC, func(tid int) error {
			inside, err = os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/uts", os.Getpid(), tid))
			if err != nil {
				return err
			}
			return unix.Sethostname([]byte("pod-host"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside == own {
			t.Fatalf("round %d: fn ran in the agent's own UTS namespace %s", i, own)
		}
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/uts", os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tasks {
			if ns, err := os.Readlink(p); err == nil && ns != own {
				t.Fatalf("round %d: %s is %s, want the process's own %s", i, p, ns, own)
			}
		}
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Fatalf("hostname is %q after the rounds, want %q", h, hostname)
	}
}

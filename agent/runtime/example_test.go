package runtime_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/runtime"
)

// Example shows how an agent wires the pieces: its private containerd, a
// runtime for the node's pod CIDR, a pod run, its events, and removal.
func Example() {
	ctx := context.Background()
	dataDir := "/var/lib/skiff"
	d, err := containerd.Open(ctx, containerd.DefaultConfig(dataDir)) // starts or adopts
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()                       // the daemon and pods keep running
	go d.Supervise(ctx, time.Second, nil) // restart it if it dies
	cfg := runtime.DefaultConfig(dataDir, "10.244.1.0/24")
	cfg.LoggerBinary, _ = os.Executable() // `skiff cri-logger PATH`
	rt, err := runtime.New(ctx, d.Client(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	pods, _ := rt.ListPods(ctx) // what survived an agent restart
	fmt.Println(len(pods))

	var pod *corev1.Pod // from the API server, bound to this node
	st, err := rt.RunPod(ctx, runtime.PodInput{Pod: pod})
	if err == nil {
		fmt.Println(st.IP)
	}
	go func() {
		for ev := range rt.Events() { // hints: reconcile from PodStatus
			fmt.Println(ev.PodUID, ev.Container, ev.Kind, ev.ExitCode)
		}
	}()
	_ = rt.RemovePod(ctx, string(pod.UID), 30*time.Second)
}

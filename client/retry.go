package client

import (
	"context"
	"time"
)

// RetryOnConflict runs fn until it returns something other than a Conflict,
// at most attempts times, with a short growing pause between tries. fn must
// read the object afresh each time (read-modify-write):
//
//	err := client.RetryOnConflict(ctx, 5, func() error {
//		pod := &corev1.Pod{}
//		if err := c.Get(ctx, ns, name, pod); err != nil {
//			return err
//		}
//		pod.Spec.NodeName = node
//		return c.Update(ctx, pod)
//	})
func RetryOnConflict(ctx context.Context, attempts int, fn func() error) error {
	pause := 10 * time.Millisecond
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); !IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
	return err
}

package node

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
)

// PullSecrets is the pod workers' PullSecrets: it reads the pod's
// imagePullSecrets from its namespace through g. It returns the secrets it
// found and an error naming those it could not get (the workers then pull
// with the others, as the kubelet does).
func PullSecrets(g Getter) func(ctx context.Context, pod *corev1.Pod) ([]*corev1.Secret, error) {
	return func(ctx context.Context, pod *corev1.Pod) ([]*corev1.Secret, error) {
		var (
			out      []*corev1.Secret
			problems []string
		)
		for _, ref := range pod.Spec.ImagePullSecrets {
			if ref.Name == "" {
				continue
			}
			s := &corev1.Secret{}
			if err := g.Get(ctx, pod.Namespace, ref.Name, s); err != nil {
				if client.IsNotFound(err) {
					problems = append(problems, fmt.Sprintf("secret %s/%s not found", pod.Namespace, ref.Name))
				} else {
					problems = append(problems, fmt.Sprintf("secret %s/%s: %v", pod.Namespace, ref.Name, err))
				}
				continue
			}
			out = append(out, s)
		}
		if len(problems) > 0 {
			return out, fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return out, nil
	}
}

package node_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/client"
)

// TestRegistryPullsThroughAgent: pods created through the API get their
// images from registries on loopback (one open, one wanting the login of
// a kubernetes.io/dockerconfigjson Secret), with the kubelet's events and
// waiting reasons in the API.
func TestRegistryPullsThroughAgent(t *testing.T) {
	e := newEnv(t)
	open := nodetest.StartRegistry(t, "")
	private := nodetest.StartRegistry(t, nodetest.RegistryHtpasswd)
	a := e.startAgent("n1")
	image := open.Host + "/skiff/busybox:1"
	nodetest.PushImage(t, a.Daemon(), image, "open")
	privateImage := private.Host + "/skiff/busybox:1"
	nodetest.PushImage(t, a.Daemon(), privateImage, "private", nodetest.RegistryUser, nodetest.RegistryPassword)
	ctx := e.ctx()

	auth := base64.StdEncoding.EncodeToString([]byte(nodetest.RegistryUser + ":" + nodetest.RegistryPassword))
	if err := e.c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, private.Host, auth))},
	}); err != nil {
		t.Fatal(err)
	}
	create := func(name, image string, secrets ...string) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: int64Ptr(0),
				Containers: []corev1.Container{{Name: "c", Image: image, Command: []string{"sleep", "3600"}}}},
		}
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	events := func(pod string) []string {
		var evs corev1.EventList
		if err := e.c.List(context.Background(), "default", &evs, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == pod {
				out = append(out, ev.Type+" "+ev.Reason+": "+ev.Message)
			}
		}
		return out
	}
	waitEvent := func(pod, reason string) {
		t.Helper()
		nodetest.Poll(t, 30*time.Second, pod+": event "+reason, func() (bool, error) {
			evs := events(pod)
			for _, ev := range evs {
				if strings.Contains(ev, " "+reason+": ") {
					return true, nil
				}
			}
			return false, fmt.Errorf("events %q", evs)
		})
	}
	waiting := func(pod, reason, part string) {
		t.Helper()
		e.waitPod("default", pod, 60*time.Second, reason, func(p *corev1.Pod) bool {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && w.Reason == reason && strings.Contains(w.Message, part) {
					return true
				}
			}
			return false
		})
	}

	create("open", image)
	e.waitPod("default", "open", 90*time.Second, "Running", running)
	waitEvent("open", "Pulling")
	waitEvent("open", "Pulled")

	create("unknown-tag", open.Host+"/skiff/busybox:nope")
	waiting("unknown-tag", "ErrImagePull", "skiff image import")
	waiting("unknown-tag", "ImagePullBackOff", "skiff image import")

	create("no-login", privateImage)
	waiting("no-login", "ErrImagePull", "imagePullSecrets")
	create("login", privateImage, "regcred")
	e.waitPod("default", "login", 90*time.Second, "Running", running)
	waitEvent("login", "Pulled")
}

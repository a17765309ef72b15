package podworker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/podstate"
	"github.com/skiffhq/skiff/agent/podworker"
	"github.com/skiffhq/skiff/agent/runtime"
)

// podEvents records the events and waiting states the manager reports.
type podEvents struct {
	mu      sync.Mutex
	events  map[string][]string                       // pod name -> "Type Reason: message"
	waiting map[string][]corev1.ContainerStateWaiting // pod name -> every waiting state seen
	last    map[types.UID]corev1.PodStatus
}

func newPodEvents() *podEvents {
	return &podEvents{events: map[string][]string{}, waiting: map[string][]corev1.ContainerStateWaiting{},
		last: map[types.UID]corev1.PodStatus{}}
}

func (e *podEvents) onEvent(pod *corev1.Pod, typ, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events[pod.Name] = append(e.events[pod.Name], typ+" "+reason+": "+msg)
}

func (e *podEvents) onStatus(pod *corev1.Pod, st corev1.PodStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last[pod.UID] = st
	for _, cs := range st.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			e.waiting[pod.Name] = append(e.waiting[pod.Name], *w)
		}
	}
}

// find returns the pod's events that contain every one of parts.
func (e *podEvents) find(pod string, parts ...string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
next:
	for _, ev := range e.events[pod] {
		for _, p := range parts {
			if !strings.Contains(ev, p) {
				continue next
			}
		}
		out = append(out, ev)
	}
	return out
}

func (e *podEvents) all(pod string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.events[pod], "\n")
}

// sawWaiting returns the first waiting state of reason the pod showed.
func (e *podEvents) sawWaiting(pod, reason string) (corev1.ContainerStateWaiting, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.waiting[pod] {
		if w.Reason == reason {
			return w, true
		}
	}
	return corev1.ContainerStateWaiting{}, false
}

func (e *podEvents) running(uid types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.last[uid]
	return st.Phase == corev1.PodRunning && len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Running != nil
}

// TestRegistryPulls runs pods whose images come from a real registry
// (docker-registry on loopback, plain HTTP) through the pull policies.
func TestRegistryPulls(t *testing.T) {
	nodetest.RequireNode(t)
	reg := nodetest.StartRegistry(t, "")
	rt, d := nodetest.Runtime(t, false)
	ev := newPodEvents()
	m := podworker.New(rt, podworker.Config{
		NodeIP:   "192.0.2.10",
		Resync:   200 * time.Millisecond,
		Backoff:  podstate.NewBackoff(2*time.Second, 4*time.Second, time.Minute),
		Images:   containerd.NodeImages{Daemon: d},
		OnStatus: ev.onStatus,
		OnEvent:  ev.onEvent,
	})
	t.Cleanup(m.Close)

	repo := reg.Host + "/skiff/busybox"
	v1 := nodetest.PushImage(t, d, repo+":1", "1")
	nodetest.PushImage(t, d, repo+":latest", "latest")

	var desired []*corev1.Pod
	run := func(name, image string, policy corev1.PullPolicy) *corev1.Pod {
		p := newPod(name, corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: image, ImagePullPolicy: policy,
			Command: []string{"sleep", "3600"}})
		desired = append(desired, p)
		m.Update(desired)
		return p
	}
	waitRunning := func(p *corev1.Pod) {
		t.Helper()
		nodetest.Poll(t, 60*time.Second, p.Name+" Running", func() (bool, error) {
			return ev.running(p.UID), fmt.Errorf("events:\n%s", ev.all(p.Name))
		})
	}
	build := func(p *corev1.Pod) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out bytes.Buffer
		code, err := rt.Exec(ctx, string(p.UID), "c", runtime.ExecOptions{Cmd: []string{"sh", "-c", "echo $SKIFF_BUILD"}, Stdout: &out, Stderr: &out})
		if err != nil || code != 0 {
			t.Fatalf("exec in %s: code %d, %v: %s", p.Name, code, err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	nodeDigest := func(ref string) string {
		t.Helper()
		info, err := d.Image(context.Background(), ref)
		if err != nil {
			t.Fatalf("image %s on the node: %v", ref, err)
		}
		return info.Digest
	}
	mustEvent := func(pod string, parts ...string) {
		t.Helper()
		if len(ev.find(pod, parts...)) == 0 {
			t.Errorf("%s: no event with %q; events:\n%s", pod, parts, ev.all(pod))
		}
	}
	noEvent := func(pod string, parts ...string) {
		t.Helper()
		if got := ev.find(pod, parts...); len(got) > 0 {
			t.Errorf("%s: unexpected event %q", pod, got)
		}
	}

	// Not on the node: pulled (the tag "1" defaults to IfNotPresent).
	if ok, _ := d.HasImage(context.Background(), repo+":1"); ok {
		t.Fatalf("%s:1 is on the node before any pod asked for it", repo)
	}
	pulled := run("pulled", repo+":1", "")
	waitRunning(pulled)
	mustEvent("pulled", "Normal Pulling", repo+":1")
	mustEvent("pulled", "Normal Pulled", "Successfully pulled image")
	if got := nodeDigest(repo + ":1"); got != v1 {
		t.Errorf("node has %s:1 at %s, want the pushed %s", repo, got, v1)
	}
	if got := build(pulled); got != "1" {
		t.Errorf("pulled pod runs SKIFF_BUILD=%q, want 1", got)
	}

	// IfNotPresent with the image present: no request to the registry.
	before := reg.ManifestRequests("skiff/busybox")
	if before == 0 {
		t.Fatalf("the registry's access log shows no manifest request for the first pull:\n%s", reg.Log())
	}
	present := run("present", repo+":1", corev1.PullIfNotPresent)
	waitRunning(present)
	mustEvent("present", "Normal Pulled", "already present on machine")
	noEvent("present", "Pulling")
	if after := reg.ManifestRequests("skiff/busybox"); after != before {
		t.Errorf("IfNotPresent with the image present asked the registry: %d manifest requests, was %d", after, before)
	}

	// Always: the re-pushed tag (another digest) is what the next pod runs.
	v2 := nodetest.PushImage(t, d, repo+":1", "2")
	if v2 == v1 {
		t.Fatalf("re-push gave the same digest %s", v2)
	}
	always := run("always", repo+":1", corev1.PullAlways)
	waitRunning(always)
	mustEvent("always", "Normal Pulling")
	mustEvent("always", "Normal Pulled", "Successfully pulled image")
	if got := nodeDigest(repo + ":1"); got != v2 {
		t.Errorf("after an Always pull the node has %s:1 at %s, want the re-pushed %s", repo, got, v2)
	}
	if got := build(always); got != "2" {
		t.Errorf("Always pod runs SKIFF_BUILD=%q, want the re-pushed 2", got)
	}

	// No tag, and :latest, default to Always: the second pod pulls again
	// although the first one put the image on the node.
	notag := run("notag", repo, "")
	waitRunning(notag)
	mustEvent("notag", "Normal Pulling")
	latest := run("latest", repo+":latest", "")
	waitRunning(latest)
	mustEvent("latest", "Normal Pulling")
	mustEvent("latest", "Normal Pulled", "Successfully pulled image")

	// Never with the image absent: ErrImageNeverPull, nothing asked.
	beforeNever := reg.ManifestRequests("skiff/absent")
	run("never", reg.Host+"/skiff/absent:1", corev1.PullNever)
	nodetest.Poll(t, 30*time.Second, "never: ErrImageNeverPull", func() (bool, error) {
		w, ok := ev.sawWaiting("never", "ErrImageNeverPull")
		return ok && strings.Contains(w.Message, "pull policy of Never") && strings.Contains(w.Message, "skiff image import"),
			fmt.Errorf("waiting %+v, events:\n%s", w, ev.all("never"))
	})
	mustEvent("never", "Warning ErrImageNeverPull")
	if n := reg.ManifestRequests("skiff/absent"); n != beforeNever {
		t.Errorf("Never asked the registry %d times", n-beforeNever)
	}

	// A tag the registry does not have: ErrImagePull, then
	// ImagePullBackOff, both saying how to import the image.
	run("notfound", repo+":nope", "")
	nodetest.Poll(t, 60*time.Second, "notfound: ErrImagePull then ImagePullBackOff", func() (bool, error) {
		e, ok1 := ev.sawWaiting("notfound", "ErrImagePull")
		b, ok2 := ev.sawWaiting("notfound", "ImagePullBackOff")
		return ok1 && ok2, fmt.Errorf("ErrImagePull %+v, ImagePullBackOff %+v", e, b)
	})
	for _, reason := range []string{"ErrImagePull", "ImagePullBackOff"} {
		w, _ := ev.sawWaiting("notfound", reason)
		if !strings.Contains(w.Message, "not found") || !strings.Contains(w.Message, "skiff image import") {
			t.Errorf("%s message %q should say the tag was not found and how to import the image", reason, w.Message)
		}
	}
	mustEvent("notfound", "Warning Failed", "Failed to pull image", "not found")
	mustEvent("notfound", "Normal BackOff", "Back-off pulling image")
	if w, ok := ev.sawWaiting("notfound", "ImagePullBackOff"); ok {
		t.Logf("ImagePullBackOff: %s", w.Message)
	}

	// The registry gone: a present image still runs under IfNotPresent
	// (nothing asks the registry) and under Always (the failed pull falls
	// back to the node's copy, with a warning); an absent one cannot be
	// had.
	reg.Stop()
	offline := run("offline", repo+":1", corev1.PullIfNotPresent)
	waitRunning(offline)
	mustEvent("offline", "Normal Pulled", "already present on machine")
	offAlways := run("offline-always", repo+":1", corev1.PullAlways)
	waitRunning(offAlways)
	mustEvent("offline-always", "Warning Failed", "Failed to pull image", "image present on the node")
	run("offline-absent", reg.Host+"/skiff/other:1", "")
	nodetest.Poll(t, 60*time.Second, "offline-absent: ErrImagePull", func() (bool, error) {
		w, ok := ev.sawWaiting("offline-absent", "ErrImagePull")
		return ok && strings.Contains(w.Message, "skiff image import"), fmt.Errorf("waiting %+v", w)
	})
}

// TestRegistryPullSecrets: a registry that wants a login (htpasswd) serves
// a pod whose imagePullSecrets hold it, and refuses pods without it or with
// a wrong password, with a message that says what to do.
func TestRegistryPullSecrets(t *testing.T) {
	nodetest.RequireNode(t)
	reg := nodetest.StartRegistry(t, nodetest.RegistryHtpasswd)
	rt, d := nodetest.Runtime(t, false)
	dockerConfig := func(user, pass string) []byte {
		return []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host,
			base64.StdEncoding.EncodeToString([]byte(user+":"+pass))))
	}
	secrets := map[string]*corev1.Secret{
		"regcred": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(nodetest.RegistryUser, nodetest.RegistryPassword)}},
		"wrongcred": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "wrongcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(nodetest.RegistryUser, "wrong")}},
	}
	ev := newPodEvents()
	m := podworker.New(rt, podworker.Config{
		NodeIP:  "192.0.2.10",
		Resync:  200 * time.Millisecond,
		Backoff: podstate.NewBackoff(2*time.Second, 4*time.Second, time.Minute),
		Images:  containerd.NodeImages{Daemon: d},
		PullSecrets: func(_ context.Context, pod *corev1.Pod) ([]*corev1.Secret, error) {
			var out []*corev1.Secret
			var missing []string
			for _, ref := range pod.Spec.ImagePullSecrets {
				if s, ok := secrets[ref.Name]; ok {
					out = append(out, s)
				} else {
					missing = append(missing, pod.Namespace+"/"+ref.Name)
				}
			}
			if len(missing) > 0 {
				return out, fmt.Errorf("secrets not found: %s", strings.Join(missing, ", "))
			}
			return out, nil
		},
		OnStatus: ev.onStatus,
		OnEvent:  ev.onEvent,
	})
	t.Cleanup(m.Close)

	image := reg.Host + "/private/busybox:1"
	nodetest.PushImage(t, d, image, "private", nodetest.RegistryUser, nodetest.RegistryPassword)

	var desired []*corev1.Pod
	run := func(name string, secrets ...string) *corev1.Pod {
		p := newPod(name, corev1.RestartPolicyAlways, corev1.Container{Name: "c", Image: image, Command: []string{"sleep", "3600"}})
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		desired = append(desired, p)
		m.Update(desired)
		return p
	}
	for name, secret := range map[string]string{"anonymous": "", "wrong-password": "wrongcred"} {
		var sec []string
		if secret != "" {
			sec = []string{secret}
		}
		run(name, sec...)
		nodetest.Poll(t, 60*time.Second, name+": ErrImagePull asking for imagePullSecrets", func() (bool, error) {
			w, ok := ev.sawWaiting(name, "ErrImagePull")
			return ok && strings.Contains(w.Message, "imagePullSecrets"), fmt.Errorf("waiting %+v", w)
		})
		w, _ := ev.sawWaiting(name, "ErrImagePull")
		t.Logf("%s: ErrImagePull: %s", name, w.Message)
	}
	if ok, _ := d.HasImage(context.Background(), image); ok {
		t.Fatalf("%s is on the node although no pod had the login", image)
	}
	authed := run("authed", "nosuch", "regcred")
	nodetest.Poll(t, 60*time.Second, "authed Running", func() (bool, error) {
		return ev.running(authed.UID), fmt.Errorf("events:\n%s", ev.all("authed"))
	})
	if len(ev.find("authed", "Normal Pulled", "Successfully pulled image")) == 0 {
		t.Errorf("authed: no Pulled event; events:\n%s", ev.all("authed"))
	}
	if len(ev.find("authed", "Warning FailedToRetrieveImagePullSecret", "default/nosuch")) == 0 {
		t.Errorf("authed: the missing secret default/nosuch was not told; events:\n%s", ev.all("authed"))
	}
}

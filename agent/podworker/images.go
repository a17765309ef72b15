package podworker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
)

// ImageService is the node's image store as the workers need it. Its
// methods are called from the pods' worker goroutines, concurrently, with
// normalised references (docker.io/library/busybox:latest). PullImage may
// block as long as the download takes; ctx bounds it.
// containerd.NodeImages implements it.
type ImageService interface {
	HasImage(ctx context.Context, ref string) (bool, error)
	PullImage(ctx context.Context, ref string, opts ...containerd.PullOption) (containerd.ImageInfo, error)
}

var _ ImageService = containerd.NodeImages{}

// localDomain is the registry host of the images Skiff builds and users
// import (skiff.local/busybox:latest): no registry answers for it, so its
// images are never pulled, whatever the policy says.
const localDomain = "skiff.local"

// pullTimeout bounds one pull: a worker that pulls notices nothing else
// (not even its pod's deletion) until the pull ends.
const pullTimeout = 10 * time.Minute

// Errors ensureImage returns when a container cannot start for its image;
// the waiting reason in the status says which.
var (
	errNeverPull    = errors.New("image not present and pull policy is Never")
	errInvalidImage = errors.New("invalid image name")
)

// PullPolicy is c's imagePullPolicy, defaulted as the API server does for a
// container that has none: Always for an image without a tag or with
// :latest (and no digest), IfNotPresent otherwise.
func PullPolicy(c *corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	if strings.Contains(c.Image, "@") {
		return corev1.PullIfNotPresent
	}
	name := c.Image[strings.LastIndexByte(c.Image, '/')+1:]
	if i := strings.LastIndexByte(name, ':'); i < 0 || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// ensureImage gets c's image onto the node by its pull policy, as the
// kubelet's image manager does:
//   - IfNotPresent: pull only when the node does not have the image;
//   - Always: pull on every container start (a moved tag is picked up);
//   - Never: use what the node has, else ErrImageNeverPull.
//
// Skiff runs where no registry may be reachable and images are imported
// by hand (skiff image import), so one thing differs from the kubelet: an
// Always pull that fails while the node has the image starts the container
// from that copy, with a Warning event saying the pull failed (the kubelet
// would stop at ErrImagePull). skiff.local images are never pulled.
//
// A failed pull is ErrImagePull and starts the pull back-off (the next
// passes show ImagePullBackOff). Without an ImageService nothing is done.
func (w *worker) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container, key string, log interface {
	Info(string, ...any)
	Error(string, ...any)
}) error {
	is := w.m.cfg.Images
	if is == nil {
		return nil
	}
	ref, err := images.Normalize(c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		if prev := w.waiting[c.Name]; prev == nil || prev.Reason != "InvalidImageName" {
			w.event(pod, corev1.EventTypeWarning, "InspectFailed", "%s", msg)
		}
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: msg}
		return fmt.Errorf("%w: %s", errInvalidImage, msg)
	}
	present, err := is.HasImage(ctx, ref)
	if err != nil {
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerError",
			Message: fmt.Sprintf("looking up image %q on the node: %v", ref, err)}
		return err
	}
	policy := PullPolicy(c)
	local := strings.HasPrefix(ref, localDomain+"/")
	switch {
	case present && (policy != corev1.PullAlways || local):
		w.event(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
		return nil
	case !present && policy == corev1.PullNever:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never "+
			"(import it on the node with `skiff image import FILE`, or set imagePullPolicy: IfNotPresent to pull it)", c.Image)
		if prev := w.waiting[c.Name]; prev == nil || prev.Reason != "ErrImageNeverPull" {
			w.event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
			w.event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImageNeverPull")
		}
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}
		return fmt.Errorf("%w: %s", errNeverPull, ref)
	case !present && local:
		err := fmt.Errorf("%w: %s is not on this node, and %s images are never pulled "+
			"(import it with `skiff image import FILE`; `skiff image build-test` writes the test images)",
			containerd.ErrImagePull, ref, localDomain)
		return w.pullFailed(pod, c, key, err, log)
	}

	w.event(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	start := time.Now()
	info, err := is.PullImage(pctx, ref, w.pullCredentials(ctx, pod)...)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		if present && ctx.Err() == nil {
			log.Error("pull failed; using the image present on the node", "container", c.Name, "image", ref, "err", err)
			w.event(pod, corev1.EventTypeWarning, "Failed",
				"Failed to pull image %q: %v; starting the container from the image present on the node", c.Image, err)
			return nil
		}
		return w.pullFailed(pod, c, key, err, log)
	}
	w.m.cfg.Backoff.Forget(pullKey(key))
	log.Info("image pulled", "container", c.Name, "image", ref, "digest", info.Digest, "took", took)
	w.event(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v. Image size: %d bytes.",
		c.Image, took, info.Size)
	return nil
}

// pullFailed records a failed pull: ErrImagePull now, the back-off after.
func (w *worker) pullFailed(pod *corev1.Pod, c *corev1.Container, key string, err error, log interface {
	Error(string, ...any)
}) error {
	w.m.cfg.Backoff.Next(pullKey(key), time.Now())
	w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
	log.Error("pull image", "container", c.Name, "image", c.Image, "err", err)
	w.event(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
	w.event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
	return err
}

// pullCredentials are the registry logins of the pod's imagePullSecrets of
// type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg, as pull
// options (none without secrets). Secrets that cannot be had or read are
// told as a FailedToRetrieveImagePullSecret event; the pull is tried with
// the others.
func (w *worker) pullCredentials(ctx context.Context, pod *corev1.Pod) []containerd.PullOption {
	if len(pod.Spec.ImagePullSecrets) == 0 || w.m.cfg.PullSecrets == nil {
		return nil
	}
	secrets, err := w.m.cfg.PullSecrets(ctx, pod)
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	creds := containerd.Credentials{}
	for _, s := range secrets {
		var (
			c    containerd.Credentials
			perr error
		)
		data := func(key string) []byte { // stringData may be kept unmerged
			if v, ok := s.Data[key]; ok {
				return v
			}
			return []byte(s.StringData[key])
		}
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			c, perr = containerd.ParseDockerConfig(data(corev1.DockerConfigJsonKey), false)
		case corev1.SecretTypeDockercfg:
			c, perr = containerd.ParseDockerConfig(data(corev1.DockerConfigKey), true)
		default:
			perr = fmt.Errorf("type %s is not %s", s.Type, corev1.SecretTypeDockerConfigJson)
		}
		if perr != nil {
			problems = append(problems, fmt.Sprintf("secret %s/%s: %v", s.Namespace, s.Name, perr))
			continue
		}
		for host, l := range c {
			if _, ok := creds[host]; !ok { // the first secret naming a host wins
				creds[host] = l
			}
		}
	}
	if len(problems) > 0 {
		w.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(problems, "; "))
	}
	return []containerd.PullOption{containerd.WithCredentials(creds.Lookup)}
}

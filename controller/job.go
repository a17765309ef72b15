package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// Reasons of a Job's conditions and events, as Kubernetes words them.
const (
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
	ReasonCompletionsReached   = "CompletionsReached"
	ReasonJobSuspended         = "JobSuspended"
	ReasonJobResumed           = "JobResumed"
)

// maxJobBackoff caps the delay before a failed Job pod is replaced.
const maxJobBackoff = 6 * time.Minute

// JobController runs a Job's pods until spec.completions of them have
// succeeded (or, without completions, until one has and none is left
// running), at most spec.parallelism at a time. A failed pod is replaced
// after a delay that doubles with every failure (JobBackoff, capped at six
// minutes) until more than backoffLimit pods have failed; with restartPolicy
// OnFailure the containers' restarts count as failures, as in Kubernetes.
// activeDeadlineSeconds fails the Job when it has run that long since
// status.startTime. A finished Job keeps its pods (for their logs) except
// the ones still running when it failed, which are deleted; with
// ttlSecondsAfterFinished it is itself deleted (and its pods collected)
// that long after it finished. suspend deletes the running pods and stops
// the clock of activeDeadlineSeconds until resumed.
//
// Succeeded and failed are counted from the pods that exist, and never go
// down: a finished pod deleted by someone is not counted twice, but a new
// failure after such a deletion is missed (Kubernetes tracks pods with
// finalizers to be exact; Skiff does not yet).
type JobController struct {
	jobs, pods Cache
	w          Writer
	exp        *Expectations
	backoff    time.Duration
	now        func() time.Time
	log        *slog.Logger
	events     EventRecorder
}

// NewJobController reconciles batch/v1 Jobs; backoff is the first delay
// before replacing a failed pod (0: DefaultJobBackoff).
func NewJobController(jobs, pods Cache, w Writer, backoff time.Duration, log *slog.Logger) *JobController {
	if backoff <= 0 {
		backoff = DefaultJobBackoff
	}
	if log == nil {
		log = discardLogger()
	}
	return &JobController{jobs: jobs, pods: pods, w: w, exp: NewExpectations(0, nil), backoff: backoff, now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name.
func (c *JobController) Name() string { return "job" }

func jobCondition(st *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setJobCondition sets a condition, keeping its transition time when the
// status does not change.
func setJobCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	if c := jobCondition(st, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, now
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastProbeTime: now, LastTransitionTime: now})
}

// jobFinished is the Complete or Failed condition that is true, or nil.
func jobFinished(st *batchv1.JobStatus) *batchv1.JobCondition {
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if c := jobCondition(st, t); c != nil && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// finishedAt is when a pod stopped: its containers' latest termination,
// else its latest condition change, else its creation.
func finishedAt(p *corev1.Pod) time.Time {
	var t time.Time
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Terminated != nil && s.State.Terminated.FinishedAt.After(t) {
			t = s.State.Terminated.FinishedAt.Time
		}
	}
	if t.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.LastTransitionTime.After(t) {
				t = c.LastTransitionTime.Time
			}
		}
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	return t
}

// Reconcile brings the Job with key (namespace/name) one step closer to
// finished.
func (c *JobController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.jobs.Get(key)
	if !ok {
		c.exp.Forget(key)
		return Result{}, nil
	}
	job := cached.(*batchv1.Job).DeepCopy()
	if job.DeletionTimestamp != nil {
		return Result{}, nil
	}
	now := c.now()
	mnow := metav1.NewTime(now)
	st := job.Status.DeepCopy()

	var active, succeeded, failed []*corev1.Pod
	var ready, restartFailures int32
	for _, p := range ownedPods(c.pods, job.Namespace, job.UID) {
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded = append(succeeded, p)
		case p.Status.Phase == corev1.PodFailed:
			failed = append(failed, p)
		case p.DeletionTimestamp == nil:
			active = append(active, p)
			if isReady(p) {
				ready++
			}
			if job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
				restartFailures += restarts(p)
			}
		}
	}
	st.Succeeded = max(st.Succeeded, int32(len(succeeded)))
	st.Failed = max(st.Failed, int32(len(failed))+restartFailures)
	st.Active = int32(len(active))
	st.Ready = &ready

	var res Result
	var errs []error
	if done := jobFinished(st); done != nil {
		if done.Type == batchv1.JobFailed {
			errs = append(errs, c.deletePods(ctx, key, job, active))
		}
		if ttl := job.Spec.TTLSecondsAfterFinished; ttl != nil {
			at := done.LastTransitionTime.Add(time.Duration(*ttl) * time.Second)
			if !now.Before(at) {
				return Result{}, c.expire(ctx, job)
			}
			res.RequeueAfter = at.Sub(now)
		}
		return res, errors.Join(append(errs, c.writeStatus(ctx, job, st))...)
	}

	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	if suspended {
		if cond := jobCondition(st, batchv1.JobSuspended); cond == nil || cond.Status != corev1.ConditionTrue {
			setJobCondition(st, batchv1.JobSuspended, corev1.ConditionTrue, ReasonJobSuspended, "Job suspended", mnow)
			c.events.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
		}
		// The deadline counts running time: it restarts on resume.
		st.StartTime = nil
		errs = append(errs, c.deletePods(ctx, key, job, active))
		return res, errors.Join(append(errs, c.writeStatus(ctx, job, st))...)
	}
	if cond := jobCondition(st, batchv1.JobSuspended); cond != nil && cond.Status == corev1.ConditionTrue {
		setJobCondition(st, batchv1.JobSuspended, corev1.ConditionFalse, ReasonJobResumed, "Job resumed", mnow)
		c.events.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
	}
	if st.StartTime == nil {
		st.StartTime = &mnow
	}

	// Failure first: a Job over its limits stops whatever else it could do.
	failReason, failMsg := "", ""
	if limit := job.Spec.BackoffLimit; limit != nil && st.Failed > *limit {
		failReason, failMsg = ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	} else if d := job.Spec.ActiveDeadlineSeconds; d != nil {
		at := st.StartTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(at) {
			failReason, failMsg = ReasonDeadlineExceeded, "Job was active longer than specified deadline"
		} else {
			res.RequeueAfter = at.Sub(now)
		}
	}
	if failReason != "" {
		setJobCondition(st, batchv1.JobFailed, corev1.ConditionTrue, failReason, failMsg, mnow)
		c.events.Event(job, corev1.EventTypeWarning, failReason, failMsg)
		c.log.Info("job failed", "job", key, "reason", failReason, "failed", st.Failed)
		errs = append(errs, c.deletePods(ctx, key, job, active))
		return Result{}, errors.Join(append(errs, c.requeueTTL(c.writeStatus(ctx, job, st), job, &res))...)
	}

	parallelism := int32(1)
	if job.Spec.Parallelism != nil {
		parallelism = *job.Spec.Parallelism
	}
	var want int32
	complete := false
	if comp := job.Spec.Completions; comp != nil {
		complete = st.Succeeded >= *comp
		want = min(parallelism, max(*comp-st.Succeeded, 0))
	} else {
		// A work queue: the first success means the work is done; the
		// pods still running finish it, and no new one starts.
		complete = st.Succeeded > 0 && len(active) == 0
		if st.Succeeded == 0 {
			want = parallelism
		}
	}
	if complete {
		setJobCondition(st, batchv1.JobComplete, corev1.ConditionTrue, ReasonCompletionsReached, "Reached expected number of succeeded pods", mnow)
		st.CompletionTime = &mnow
		c.events.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		c.log.Info("job complete", "job", key, "succeeded", st.Succeeded)
		return Result{}, errors.Join(append(errs, c.requeueTTL(c.writeStatus(ctx, job, st), job, &res))...)
	}

	if sat, wait := c.exp.Satisfied(key, c.pods); !sat {
		res.RequeueAfter = minPositive(res.RequeueAfter, wait)
	} else if n := int32(len(active)); n > want {
		victims := append([]*corev1.Pod(nil), active...)
		rankForDeletion(victims)
		errs = append(errs, c.deletePods(ctx, key, job, victims[:n-want]))
	} else if n < want {
		if wait := c.backoffLeft(st.Failed, failed, now); wait > 0 {
			res.RequeueAfter = minPositive(res.RequeueAfter, wait)
		} else {
			errs = append(errs, c.createPods(ctx, key, job, int(min(want-n, MaxBurst))))
		}
	}
	return res, errors.Join(append(errs, c.writeStatus(ctx, job, st))...)
}

// requeueTTL schedules the ttlSecondsAfterFinished deletion of a Job that
// just finished; it passes err through.
func (c *JobController) requeueTTL(err error, job *batchv1.Job, res *Result) error {
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl != nil && err == nil {
		res.RequeueAfter = max(time.Duration(*ttl)*time.Second, time.Millisecond)
	}
	return err
}

// backoffLeft is how long to wait before replacing failed pods: backoff
// doubled for each failure after the first, from the latest failure.
func (c *JobController) backoffLeft(failures int32, failed []*corev1.Pod, now time.Time) time.Duration {
	if failures == 0 || len(failed) == 0 {
		return 0
	}
	delay := c.backoff
	for i := int32(1); i < failures && delay < maxJobBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, maxJobBackoff)
	var last time.Time
	for _, p := range failed {
		if t := finishedAt(p); t.After(last) {
			last = t
		}
	}
	return last.Add(delay).Sub(now)
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	if b <= 0 {
		return a
	}
	return min(a, b)
}

func (c *JobController) createPods(ctx context.Context, key string, job *batchv1.Job, n int) error {
	var errs []error
	for i := 0; i < n; i++ {
		t := job.Spec.Template.DeepCopy()
		// Kubernetes' API server puts these on the template; Skiff's
		// may not have, so the pods get them here (skiff logs -l
		// batch.kubernetes.io/job-name=NAME finds them either way).
		lbl := t.Labels
		if lbl == nil {
			lbl = map[string]string{}
		}
		for k, v := range map[string]string{batchv1.JobNameLabel: job.Name, batchv1.ControllerUidLabel: string(job.UID)} {
			if _, ok := lbl[k]; !ok && len(v) <= 63 {
				lbl[k] = v
			}
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: job.Namespace, Name: podName(job.Name), GenerateName: job.Name + "-",
				Labels: lbl, Annotations: t.Annotations, Finalizers: t.Finalizers,
				OwnerReferences: []metav1.OwnerReference{controllerRef(job, kindJob)},
			},
			Spec: t.Spec,
		}
		podKey := pod.Namespace + "/" + pod.Name
		c.exp.ExpectCreate(key, podKey)
		if err := c.w.Create(ctx, pod); err != nil {
			c.exp.Cancel(key, podKey)
			if client.IsAlreadyExists(err) {
				continue
			}
			c.events.Event(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: "+err.Error())
			errs = append(errs, fmt.Errorf("creating pod for job %s: %w", key, err))
			if client.IsInvalid(err) || client.IsForbidden(err) {
				break
			}
			continue
		}
		c.log.Info("created pod", "job", key, "pod", podKey)
		c.events.Event(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: "+pod.Name)
	}
	return errors.Join(errs...)
}

func (c *JobController) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods {
		podKey := p.Namespace + "/" + p.Name
		c.exp.ExpectDelete(key, podKey, p.UID)
		if _, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(p.UID)}); err != nil {
			c.exp.Cancel(key, podKey)
			if !client.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting pod %s of job %s: %w", podKey, key, err))
			}
			continue
		}
		c.log.Info("deleted pod", "job", key, "pod", podKey)
		c.events.Event(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: "+p.Name)
	}
	return errors.Join(errs...)
}

// expire deletes a finished Job whose ttlSecondsAfterFinished has passed;
// the garbage collector then deletes its pods.
func (c *JobController) expire(ctx context.Context, job *batchv1.Job) error {
	_, err := c.w.Delete(ctx, job, &client.DeleteOptions{Propagation: "Background", PreconditionUID: string(job.UID)})
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("deleting finished job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.log.Info("deleted finished job (ttlSecondsAfterFinished)", "job", job.Namespace+"/"+job.Name)
	return nil
}

func (c *JobController) writeStatus(ctx context.Context, job *batchv1.Job, st *batchv1.JobStatus) error {
	if apiequality.Semantic.DeepEqual(*st, job.Status) {
		return nil
	}
	job.Status = *st
	if err := c.w.UpdateStatus(ctx, job); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("status of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

func (c *JobController) register(q *client.Queue[string], jobs, pods *client.Informer) {
	jobs.AddHandler(keyHandler(q, selfKey))
	pods.AddHandler(keyHandler(q, controllerKeyOf(kindJob.Kind)))
}

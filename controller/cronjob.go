package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// CronJobScheduledTimestampAnnotation is the scheduled time (RFC 3339) a
// CronJob puts on each Job it creates.
const CronJobScheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// maxMissedRuns bounds the search for the latest missed run of a CronJob
// that was not looked at for a long time (a controller down for a week
// under "* * * * *").
const maxMissedRuns = 100000

// CronJobController creates a CronJob's Jobs on its schedule. Only the
// latest run time that is due is started (missed earlier ones are skipped,
// as Kubernetes does), and only within startingDeadlineSeconds of it when
// that is set. concurrencyPolicy Allow runs Jobs side by side, Forbid skips
// a run while a Job is still running (it starts once that Job ends, if
// still within the deadline), Replace deletes the running Jobs first.
// Finished Jobs beyond successfulJobsHistoryLimit and failedJobsHistoryLimit
// are deleted, oldest first. suspend stops new runs only.
//
// A Job's name is the CronJob's name and the scheduled time in minutes
// since the epoch, so a run created twice (two controllers overlapping, a
// lost status write) is the same Job: the second create is AlreadyExists.
type CronJobController struct {
	cjs, jobs Cache
	w         Writer
	now       func() time.Time
	log       *slog.Logger
	events    EventRecorder
}

// NewCronJobController reconciles batch/v1 CronJobs.
func NewCronJobController(cjs, jobs Cache, w Writer, log *slog.Logger) *CronJobController {
	if log == nil {
		log = discardLogger()
	}
	return &CronJobController{cjs: cjs, jobs: jobs, w: w, now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name.
func (c *CronJobController) Name() string { return "cronjob" }

// Reconcile starts the CronJob's due run, trims its history and writes its
// status; it requeues itself for the next run time.
func (c *CronJobController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.cjs.Get(key)
	if !ok {
		return Result{}, nil
	}
	cj := cached.(*batchv1.CronJob).DeepCopy()
	if cj.DeletionTimestamp != nil {
		return Result{}, nil
	}
	loc := time.Local
	if cj.Spec.TimeZone != nil && *cj.Spec.TimeZone != "" {
		l, err := time.LoadLocation(*cj.Spec.TimeZone)
		if err != nil {
			c.events.Event(cj, corev1.EventTypeWarning, "UnknownTimeZone", fmt.Sprintf("invalid timeZone %q: %v", *cj.Spec.TimeZone, err))
			return Result{}, nil // only an edit of the spec helps
		}
		loc = l
	}
	sched, err := ParseSchedule(cj.Spec.Schedule)
	if err != nil {
		c.events.Event(cj, corev1.EventTypeWarning, "UnparseableSchedule", err.Error())
		return Result{}, nil
	}
	now := c.now().In(loc)
	st := cj.Status.DeepCopy()

	var active, succeeded, failed []*batchv1.Job
	for _, o := range inNamespace(c.jobs, cj.Namespace, nil) {
		j := o.(*batchv1.Job)
		if !isControlledBy(j, cj.UID) {
			continue
		}
		switch done := jobFinished(&j.Status); {
		case done == nil && j.DeletionTimestamp == nil:
			active = append(active, j)
		case done != nil && done.Type == batchv1.JobComplete:
			succeeded = append(succeeded, j)
			if t := j.Status.CompletionTime; t != nil && (st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Before(t)) {
				st.LastSuccessfulTime = t.DeepCopy()
			}
		case done != nil:
			failed = append(failed, j)
		}
	}
	var errs []error
	errs = append(errs, c.trim(ctx, cj, succeeded, cj.Spec.SuccessfulJobsHistoryLimit))
	errs = append(errs, c.trim(ctx, cj, failed, cj.Spec.FailedJobsHistoryLimit))

	// The run due now, if any: the latest scheduled time after the last
	// one started (or the CronJob's creation) and not after now.
	var due time.Time
	var res Result
	if cj.Spec.Suspend == nil || !*cj.Spec.Suspend {
		from := cj.CreationTimestamp.Time
		if st.LastScheduleTime != nil {
			from = st.LastScheduleTime.Time
		}
		var deadline time.Time
		if d := cj.Spec.StartingDeadlineSeconds; d != nil {
			deadline = now.Add(-time.Duration(*d) * time.Second)
			if from.Before(deadline) {
				from = deadline // runs older than the deadline are lost anyway
			}
		}
		t := from.In(loc)
		for i := 0; i < maxMissedRuns; i++ {
			n := sched.Next(t)
			if n.IsZero() || n.After(now) {
				break
			}
			due, t = n, n
		}
		if !due.IsZero() {
			started, err := c.startRun(ctx, cj, due, active)
			errs = append(errs, err)
			if started != nil {
				active = append(active, started)
				st.LastScheduleTime = &metav1.Time{Time: due}
			}
		}
		if next := sched.Next(now); !next.IsZero() {
			res.RequeueAfter = next.Sub(now) + 100*time.Millisecond // past the boundary, not at it
		}
	}

	st.Active = nil
	sort.Slice(active, func(i, j int) bool { return active[i].Name < active[j].Name })
	for _, j := range active {
		st.Active = append(st.Active, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace,
			Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion})
	}
	if !apiequality.Semantic.DeepEqual(*st, cj.Status) {
		cj.Status = *st
		if err := c.w.UpdateStatus(ctx, cj); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("status of cronjob %s: %w", key, err))
		}
	}
	return res, errors.Join(errs...)
}

// startRun creates the Job of the run scheduled at due, after applying
// the concurrency policy to the active Jobs. It returns the Job started,
// or nil when the run is skipped (Forbid) and should be retried later.
func (c *CronJobController) startRun(ctx context.Context, cj *batchv1.CronJob, due time.Time, active []*batchv1.Job) (*batchv1.Job, error) {
	name := cj.Name + "-" + strconv.FormatInt(due.Unix()/60, 10)
	for _, j := range active {
		if j.Name == name {
			return j, nil // started already; the status write was lost
		}
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(active) > 0 {
			c.log.Debug("run skipped: a job is still active", "cronjob", cj.Namespace+"/"+cj.Name, "scheduled", due)
			return nil, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, j := range active {
			_, err := c.w.Delete(ctx, j.DeepCopy(), &client.DeleteOptions{Propagation: "Background", PreconditionUID: string(j.UID)})
			if err != nil && !client.IsNotFound(err) {
				return nil, fmt.Errorf("replacing job %s/%s: %w", j.Namespace, j.Name, err)
			}
			c.events.Event(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job "+j.Name)
		}
	}
	t := cj.Spec.JobTemplate.DeepCopy()
	ann := t.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	ann[CronJobScheduledTimestampAnnotation] = due.Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cj.Namespace, Name: name, Labels: t.Labels, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{controllerRef(cj, kindCronJob)},
		},
		Spec: t.Spec,
	}
	if err := c.w.Create(ctx, job); err != nil {
		if client.IsAlreadyExists(err) {
			return job, nil
		}
		c.events.Event(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: "+err.Error())
		return nil, fmt.Errorf("creating job for cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	c.log.Info("created job", "cronjob", cj.Namespace+"/"+cj.Name, "job", name, "scheduled", due)
	c.events.Event(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job "+name)
	return job, nil
}

// trim deletes the oldest of finished beyond limit (nil: no limit).
func (c *CronJobController) trim(ctx context.Context, cj *batchv1.CronJob, finished []*batchv1.Job, limit *int32) error {
	if limit == nil || len(finished) <= int(*limit) {
		return nil
	}
	sort.Slice(finished, func(i, j int) bool {
		a, b := finished[i], finished[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	var errs []error
	for _, j := range finished[:len(finished)-int(*limit)] {
		_, err := c.w.Delete(ctx, j.DeepCopy(), &client.DeleteOptions{Propagation: "Background", PreconditionUID: string(j.UID)})
		if err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting old job %s/%s: %w", j.Namespace, j.Name, err))
			continue
		}
		c.events.Event(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job "+j.Name)
	}
	return errors.Join(errs...)
}

func (c *CronJobController) register(q *client.Queue[string], cjs, jobs *client.Informer) {
	cjs.AddHandler(keyHandler(q, selfKey))
	jobs.AddHandler(keyHandler(q, controllerKeyOf(kindCronJob.Kind)))
}

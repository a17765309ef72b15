package api

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGenerateJobSelector(t *testing.T) {
	src := "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n  template:\n    metadata: {labels: {app: pi}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: perl}]\n"
	tests := []struct {
		name       string
		mutate     func(j *batchv1.Job)
		wantSel    map[string]string
		wantLabels map[string]string
		wantErrs   string
	}{
		{
			name:       "generated",
			wantSel:    map[string]string{"batch.kubernetes.io/controller-uid": "u-1"},
			wantLabels: map[string]string{"app": "pi", "batch.kubernetes.io/controller-uid": "u-1", "controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi", "job-name": "pi"},
		},
		{
			name: "manual selector is left alone",
			mutate: func(j *batchv1.Job) {
				j.Spec.ManualSelector = ptr(true)
				j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			},
			wantSel:    map[string]string{"app": "pi"},
			wantLabels: map[string]string{"app": "pi"},
		},
		{
			name: "a selector the pods do not match fails validation",
			mutate: func(j *batchv1.Job) {
				j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
			},
			wantSel:  map[string]string{"app": "other"},
			wantErrs: "spec.template.metadata.labels: FieldValueInvalid",
		},
		{
			name:    "no uid, no change",
			mutate:  func(j *batchv1.Job) { j.UID = "" },
			wantSel: nil, wantLabels: map[string]string{"app": "pi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := loadDefaulted(t, src).(*batchv1.Job)
			j.UID = "u-1"
			if tt.mutate != nil {
				tt.mutate(j)
			}
			GenerateJobSelector(j)
			var sel map[string]string
			if j.Spec.Selector != nil {
				sel = j.Spec.Selector.MatchLabels
			}
			eq(t, "selector", sel, tt.wantSel)
			if tt.wantLabels != nil {
				eq(t, "template labels", j.Spec.Template.Labels, tt.wantLabels)
			}
			if got := summary(Validate(j)); got != tt.wantErrs {
				t.Errorf("validation = %q, want %q", got, tt.wantErrs)
			}
		})
	}
	long := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 64), UID: "u"}}
	GenerateJobSelector(long)
	if _, ok := long.Spec.Template.Labels[JobNameLabel]; ok {
		t.Errorf("a 64-character name was put in a label value")
	}
}

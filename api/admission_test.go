package api

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestAdmit(t *testing.T) {
	tests := []struct {
		name        string
		spec        string
		opts        AdmissionOptions
		wantSA      string
		wantTols    int
		wantSeconds int64 // of the not-ready toleration, when added
		wantPrio    bool
	}{
		{name: "plain pod", spec: "  containers: [{name: c, image: b}]\n", opts: DefaultAdmissionOptions(),
			wantSA: "default", wantTols: 2, wantSeconds: 300, wantPrio: true},
		{name: "faster eviction", spec: "  containers: [{name: c, image: b}]\n", opts: AdmissionOptions{NotReadyTolerationSeconds: 30, UnreachableTolerationSeconds: 30},
			wantSA: "default", wantTols: 2, wantSeconds: 30, wantPrio: true},
		{name: "own service account and tolerations", opts: DefaultAdmissionOptions(),
			spec:   "  serviceAccountName: robot\n  priorityClassName: high\n  tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}]\n  containers: [{name: c, image: b}]\n",
			wantSA: "robot", wantTols: 2, wantSeconds: 5},
		{name: "tolerates everything", opts: DefaultAdmissionOptions(),
			spec:   "  tolerations: [{operator: Exists}]\n  containers: [{name: c, image: b}]\n",
			wantSA: "default", wantTols: 1, wantPrio: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); err != nil {
				t.Fatal(err)
			}
			p := loadDefaulted(t, podHead+tt.spec).(*corev1.Pod)
			tt.opts.Admit(p)
			tt.opts.Admit(p) // idempotent
			eq(t, "serviceAccountName", p.Spec.ServiceAccountName, tt.wantSA)
			eq(t, "tolerations", len(p.Spec.Tolerations), tt.wantTols)
			for _, tol := range p.Spec.Tolerations {
				if tol.Key == TaintNodeNotReady {
					eq(t, "not-ready seconds", *tol.TolerationSeconds, tt.wantSeconds)
				}
			}
			eq(t, "priority set", p.Spec.Priority != nil, tt.wantPrio)
			if errs := Validate(p); len(errs) > 0 {
				t.Errorf("admitted pod invalid: %v", errs.ToAggregate())
			}
		})
	}
	if err := (AdmissionOptions{NotReadyTolerationSeconds: -1}).Validate(); err == nil {
		t.Errorf("negative seconds accepted")
	}
}

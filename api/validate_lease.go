package api

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateLease checks a coordination.k8s.io/v1 Lease as Kubernetes does:
// a duration, when given, is positive; transitions are not negative; a
// preferred holder needs a strategy that picks it.
func validateLease(l *coordinationv1.Lease) field.ErrorList {
	spec := field.NewPath("spec")
	errs := positivePtr(l.Spec.LeaseDurationSeconds, spec.Child("leaseDurationSeconds"))
	errs = append(errs, nonNegativePtr(l.Spec.LeaseTransitions, spec.Child("leaseTransitions"))...)
	if l.Spec.Strategy != nil {
		errs = append(errs, supported(*l.Spec.Strategy, spec.Child("strategy"), coordinationv1.OldestEmulationVersion)...)
	}
	if l.Spec.PreferredHolder != nil && *l.Spec.PreferredHolder != "" && l.Spec.Strategy == nil {
		errs = append(errs, field.Forbidden(spec.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

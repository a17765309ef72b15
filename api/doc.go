// Package api is Skiff's cluster object model: which Kubernetes kinds Skiff
// serves, how manifests become typed objects, and what the API server fills
// in and refuses. It is pure: no I/O beyond the bytes it is given, no
// clocks, no global state beyond an immutable registry built on first use.
//
// # Why Kubernetes' own types
//
// Objects are the Go types of k8s.io/api (corev1.Pod, appsv1.Deployment,
// ...), registered in a runtime.Scheme (see Scheme). Users bring manifests
// written for Kubernetes; with the same types they decode unchanged, print
// the same with -o yaml, and every controller written against client-go's
// types reads them. Skiff adds no schema of its own.
//
// # Vocabulary
//
//   - Kind: a served type (KindInfo): its group/version/kind, its resource
//     names (plural, singular, short names like "deploy"), whether it is
//     namespaced, and its store key. Kinds lists them; ResolveResource finds
//     one by any name kubectl accepts, in any case, optionally qualified by
//     group ("deployments.apps") or version and group.
//   - Storage key: /registry/<resource>/<namespace>/<name> for the core group,
//     as Kubernetes lays out etcd (/registry/pods/default/web), and
//     /registry/<group>/<resource>/<namespace>/<name> for named groups
//     (/registry/apps/deployments/default/web); cluster-scoped kinds have no
//     namespace segment. See KindInfo.StorageKey and StoragePrefix.
//   - Object: one decoded document (or List item) with its file, document
//     number and lines, so that errors found later — by validation here or
//     by admission in the API server — can still say "file:line: path".
//
// # Decoding is strict and says where
//
// Decode parses YAML (multi-document) and JSON (one or more values) with a
// YAML node parser that keeps line numbers, then walks each node tree
// against the Go type it will fill, using the types' JSON tags. The walk
// finds every unknown or duplicated field and every value of the wrong JSON
// type, with its field path and line, and a hint where one is obvious: a
// field that differs only in case or by a typo ("did you mean nodePort?"), a
// field one level too deep or too high ("did you mean
// spec.template.spec.containers?"), quotes to add or remove. It collects all
// problems of a file before failing, and a file with any problem yields no
// object: apply is all or nothing per file. Only once the walk is clean is
// the value handed to encoding/json, so the typed object is exactly what
// Kubernetes would decode, including the conversions kubectl's YAML step
// makes (YAML 1.1 booleans such as yes/on, octal 0644, integer map keys).
//
// # Defaults and validation follow Kubernetes
//
// Default applies the versioned API's defaults for every served kind
// (restartPolicy Always, protocol TCP, targetPort = port, Deployment
// replicas 1 and 25%/25% rolling updates, ...) and the namespace "default".
// It does not do what admission plugins and allocators do (service
// accounts, cluster IPs, node ports, priority): those belong to the API
// server. Validate and ValidateUpdate then check an object as Kubernetes'
// API server does on create and update, returning field.ErrorList with
// Kubernetes' paths and wording; Object.Errors places such a list on lines.
// On update an API server runs both: Validate reports what is wrong with
// the new object, ValidateUpdate what is wrong with the change (identity,
// immutable fields); the two lists never repeat each other. Like
// Kubernetes, ValidateUpdate expects the new object to carry the stored
// resourceVersion. A Validator carries the cluster settings that change
// what is valid (the NodePort range). Load chains the three for
// `skiff apply -f`.
//
// PrepareForCreate holds the rest of what Kubernetes' create path does to
// an object (status cleared, a Pod Pending with its QoS class, a Job's
// generated selector); the API server calls it, then Default, then
// Validate; AdmissionOptions.Admit adds, to new pods, what Kubernetes'
// default admission plugins add (service account, tolerations of
// not-ready and unreachable nodes for a configurable 300s, priority).
// Status written by Skiff's components is validated too (counters, IPs),
// so their bugs show where they happen.
//
// Manifests for autoscaling/v1 HorizontalPodAutoscaler, which Kubernetes
// still serves, decode strictly against that version and are converted to
// autoscaling/v2, the served version, as Kubernetes stores them.
//
// # Also here
//
// Label and field selectors (ParseLabelSelector, ParseFieldSelector with
// each kind's selectable fields, Matches), kubectl explain from the types'
// own field documentation (Explain), and Encode/EncodeList for -o yaml and
// -o json.
//
// The rules are written here from the types' documented semantics and
// Kubernetes' behaviour, using apimachinery's validation helpers (names,
// labels, selectors, object metadata); they cover what users of these
// kinds meet, not every feature-gated field of every kind.
package api

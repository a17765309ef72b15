// Package ingress is Skiff's built-in Ingress controller: an HTTP(S)
// reverse proxy, run on each node, that routes requests by host and path
// to the ready pods of the Services that Ingress objects name.
//
// # Shape
//
// A Router watches Ingresses, Services, Endpoints and (for TLS) Secrets
// through caches. Any change rebuilds the whole routing table from the
// caches (a pure function, table) and swaps it in atomically, so a request
// always sees one consistent table and a reload never drops a request.
// Requests go straight to pod IPs (not through the service's cluster IP),
// balanced round-robin over ready endpoints; a connection refused by one
// endpoint is retried on the next, for requests without a body, so a pod
// that just went away costs no error.
//
// # Matching, as the Ingress API defines it
//
//   - Hosts: an exact host beats a wildcard ("*.example.com" matches one
//     label: a.example.com, not a.b.example.com), which beats rules without
//     a host. Once a host matched, only its paths count.
//   - Paths: Exact (the whole path, byte for byte) beats Prefix; among
//     prefixes the longest wins; a prefix matches by path elements
//     ("/foo" matches /foo, /foo/ and /foo/bar, not /foobar).
//     ImplementationSpecific is treated as Prefix.
//   - When nothing matches, the default backend (spec.defaultBackend of the
//     oldest Ingress that has one) answers, else 404.
//   - Several Ingresses may share a host: their paths are merged; on a
//     conflict the oldest Ingress wins.
//   - An Ingress is ours when its ingressClassName is the configured class
//     (default "skiff"), or when it names none (Config.ClaimUnclassed).
package ingress

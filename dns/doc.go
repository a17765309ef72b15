// Package dns is Skiff's cluster DNS: a small authoritative server for the
// cluster domain (cluster.local by default) answering from informer caches
// of Services, Endpoints and (optionally) Pods, and the resolv.conf a pod
// gets so that `curl http://backend` finds the Service backend of its own
// namespace.
//
// # Names
//
//	<svc>.<ns>.svc.<domain>              A: the cluster IP; for a headless
//	                                     service, the ready endpoint IPs;
//	                                     ExternalName: CNAME to the external name
//	<host>.<svc>.<ns>.svc.<domain>       A: the endpoint whose hostname is <host>
//	                                     (StatefulSet pods through their headless
//	                                     service) or whose dashed IP is <host>
//	_<port>._<proto>.<svc>.<ns>.svc.<domain>
//	                                     SRV: one per named port (per ready
//	                                     endpoint for a headless service), with
//	                                     the targets' A records as additionals
//	<a-b-c-d>.<ns>.pod.<domain>          A: a.b.c.d (checked against the pods of
//	                                     <ns> when a Pods cache is given)
//	<d.c.b.a>.in-addr.arpa               PTR: the service of a cluster IP, or the
//	                                     name of a headless service's endpoint;
//	                                     other addresses go upstream
//
// Anything else in the domain is NXDOMAIN (with the zone's SOA, so
// resolvers cache the answer negatively); an existing name with no record
// of the asked type is an empty NOERROR. Names outside the domain are
// forwarded only when upstream servers are configured, else NXDOMAIN: the
// machines Skiff is tested on have no outside DNS, and a fast negative
// answer keeps search-list walks short.
//
// Answers are computed per query from the caches (a map lookup by
// namespace/name), so there is nothing to keep in sync: a change is
// visible as soon as the informer has it. TTLs are short (5s by default)
// for the same reason.
package dns

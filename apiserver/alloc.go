package apiserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// allocator hands out Service ClusterIPs and NodePorts. Each allocated
// value is a key in the store (/registry/ranges/serviceips/<ip>,
// /registry/ranges/servicenodeports/<port>) created with a
// create_revision == 0 compare in the same transaction as the Service
// write, and deleted in the same transaction as the Service delete. So an
// allocation is unique, survives restarts, and is never leaked nor
// double-booked by a crash between two writes. A lost race on an
// automatically chosen value just makes the caller retry with fresh state.
type allocator struct {
	base       uint32 // network address of the service range
	size       uint32 // number of addresses in the range
	portMin    int
	portMax    int
	ipPrefix   string
	portPrefix string
}

func newAllocator(cfg Config) (*allocator, error) {
	_, n, err := net.ParseCIDR(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ones, bits := n.Mask.Size()
	return &allocator{
		base:       binary.BigEndian.Uint32(n.IP.To4()),
		size:       1 << uint(bits-ones),
		portMin:    cfg.NodePortMin,
		portMax:    cfg.NodePortMax,
		ipPrefix:   cfg.StorePrefix + "/ranges/serviceips/",
		portPrefix: cfg.StorePrefix + "/ranges/servicenodeports/",
	}, nil
}

func (a *allocator) ipKey(ip string) string { return a.ipPrefix + ip }
func (a *allocator) portKey(p int32) string { return a.portPrefix + strconv.Itoa(int(p)) }
func (a *allocator) ipAt(off uint32) string {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, a.base+off)
	return net.IP(b).String()
}

// inRange reports whether ip is an assignable address of the range: not
// the network address, not .1 (the kubernetes service), not broadcast.
func (a *allocator) inRange(ip string) bool {
	p := net.ParseIP(ip).To4()
	if p == nil {
		return false
	}
	v := binary.BigEndian.Uint32(p)
	return v >= a.base+1 && v < a.base+a.size-1
}

// allocation is the part of a Service write that claims and releases
// values: compares and ops to add to the Service's transaction.
type allocation struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	// explicit are the keys the user asked for by value; if one is taken
	// the write is Invalid rather than retried.
	explicit map[string]string // key -> field path
}

func (al *allocation) claim(key, owner string) {
	al.cmps = append(al.cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	al.ops = append(al.ops, clientv3.OpPut(key, owner))
}

func (al *allocation) release(key string) { al.ops = append(al.ops, clientv3.OpDelete(key)) }

func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// taken lists the allocated values under a prefix.
func (s *Server) taken(ctx context.Context, prefix string) (map[string]bool, error) {
	resp, err := s.etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, storeError(err)
	}
	m := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m[string(kv.Key)[len(prefix):]] = true
	}
	return m, nil
}

// allocateService fills in svc's ClusterIP and NodePorts (keeping those of
// old, the stored Service, on update) and returns the claims and releases to
// commit with the write. The first attempt picks the lowest free values
// (predictable addresses on a quiet cluster); a retry after a lost race
// scans from a random point, so concurrent writers spread out.
func (s *Server) allocateService(ctx context.Context, svc, old *corev1.Service, attempt int) (*allocation, field.ErrorList, error) {
	a := s.alloc
	al := &allocation{explicit: map[string]string{}}
	owner := svc.Namespace + "/" + svc.Name
	var errs field.ErrorList

	// ClusterIP.
	oldIP := ""
	if old != nil && needsClusterIP(old) {
		oldIP = old.Spec.ClusterIP
	}
	if needsClusterIP(svc) {
		switch {
		case svc.Spec.ClusterIP == "" && oldIP != "":
			svc.Spec.ClusterIP = oldIP
		case svc.Spec.ClusterIP == "":
			taken, err := s.taken(ctx, a.ipPrefix)
			if err != nil {
				return nil, nil, err
			}
			span := a.size - 3 // offsets 2 .. size-2
			start := uint32(0)
			if attempt > 0 {
				start = rand.Uint32N(span)
			}
			for i := uint32(0); i < span; i++ {
				if ip := a.ipAt(2 + (start+i)%span); !taken[ip] {
					svc.Spec.ClusterIP = ip
					break
				}
			}
			if svc.Spec.ClusterIP == "" {
				errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIP"), "", "range is full"))
			} else {
				al.claim(a.ipKey(svc.Spec.ClusterIP), owner)
			}
		case oldIP != "" && svc.Spec.ClusterIP != oldIP:
			errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIP"), svc.Spec.ClusterIP, "field is immutable"))
		case oldIP == "":
			if !a.inRange(svc.Spec.ClusterIP) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIP"), svc.Spec.ClusterIP,
					fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s",
						svc.Spec.ClusterIP, svc.Spec.ClusterIP, s.cfg.ServiceCIDR)))
			} else {
				al.claim(a.ipKey(svc.Spec.ClusterIP), owner)
				al.explicit[a.ipKey(svc.Spec.ClusterIP)] = "spec.clusterIP"
			}
		}
		if svc.Spec.ClusterIP != "" {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
	} else if svc.Spec.Type == corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	}
	if oldIP != "" && svc.Spec.ClusterIP != oldIP {
		al.release(a.ipKey(oldIP))
	}

	// NodePorts: keep the old port's nodePort for the same port and
	// protocol, claim new ones, release the ones no longer used.
	oldPorts := map[int32]bool{}
	oldByPort := map[string]int32{}
	if old != nil && needsNodePorts(old) {
		for _, p := range old.Spec.Ports {
			if p.NodePort != 0 {
				oldPorts[p.NodePort] = true
				oldByPort[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = p.NodePort
			}
		}
	}
	newPorts := map[int32]bool{}
	if needsNodePorts(svc) {
		var taken map[string]bool
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			if p.NodePort == 0 {
				p.NodePort = oldByPort[fmt.Sprintf("%d/%s", p.Port, p.Protocol)]
			}
			if p.NodePort == 0 {
				if taken == nil {
					var err error
					if taken, err = s.taken(ctx, a.portPrefix); err != nil {
						return nil, nil, err
					}
				}
				span := a.portMax - a.portMin + 1
				start := 0
				if attempt > 0 {
					start = rand.IntN(span)
				}
				for i := 0; i < span; i++ {
					n := a.portMin + (start+i)%span
					if !taken[strconv.Itoa(n)] && !newPorts[int32(n)] {
						p.NodePort = int32(n)
						break
					}
				}
				if p.NodePort == 0 {
					errs = append(errs, field.Invalid(path, 0, "no node ports left in the range"))
					continue
				}
				newPorts[p.NodePort] = true
				al.claim(a.portKey(p.NodePort), owner)
				continue
			}
			if int(p.NodePort) < a.portMin || int(p.NodePort) > a.portMax {
				errs = append(errs, field.Invalid(path, p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
				continue
			}
			if newPorts[p.NodePort] {
				errs = append(errs, field.Duplicate(path, p.NodePort))
				continue
			}
			newPorts[p.NodePort] = true
			if !oldPorts[p.NodePort] {
				al.claim(a.portKey(p.NodePort), owner)
				al.explicit[a.portKey(p.NodePort)] = path.String()
			}
		}
	} else {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	for p := range oldPorts {
		if !newPorts[p] {
			al.release(a.portKey(p))
		}
	}
	return al, errs, nil
}

// releaseService is the allocation of deleting svc.
func (s *Server) releaseService(svc *corev1.Service) *allocation {
	al := &allocation{}
	if needsClusterIP(svc) && svc.Spec.ClusterIP != "" {
		al.release(s.alloc.ipKey(svc.Spec.ClusterIP))
	}
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				al.release(s.alloc.portKey(p.NodePort))
			}
		}
	}
	return al
}

// explicitTaken finds which explicitly requested value made a
// transaction fail, if any.
func (s *Server) explicitTaken(ctx context.Context, al *allocation) (field.ErrorList, error) {
	var errs field.ErrorList
	for key, path := range al.explicit {
		resp, err := s.etcd.Get(ctx, key, clientv3.WithKeysOnly())
		if err != nil {
			return nil, storeError(err)
		}
		if len(resp.Kvs) > 0 {
			what := "port"
			if path == "spec.clusterIP" {
				what = "IP"
			}
			val := key[len(s.alloc.ipPrefix):]
			if what == "port" {
				val = key[len(s.alloc.portPrefix):]
			}
			errs = append(errs, &field.Error{Type: field.ErrorTypeInvalid, Field: path, BadValue: val,
				Detail: fmt.Sprintf("provided %s is already allocated", what)})
		}
	}
	return errs, nil
}

package netproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conntrack deletes connection-tracking entries. The Proxier calls it from
// its sync goroutine after rules changed. Why: a UDP "connection" is
// tracked like a TCP one, and a client that keeps sending from one source
// port (a DNS resolver, a game, a metrics agent) keeps following the entry
// made when it first talked to the service, to an endpoint that may be
// gone, for as long as it keeps talking. TCP needs nothing: a dead
// endpoint resets or times out and the client reconnects.
type Conntrack interface {
	// Delete removes the entries any filter matches and says how many.
	Delete(ctx context.Context, filters []ConntrackFilter) (int, error)
}

// ConntrackFilter matches IPv4 entries of one protocol; unset fields match
// anything. Orig is the tuple as the client sent it (the service's
// address), Reply the tuple as it came back (from the endpoint, after
// DNAT).
type ConntrackFilter struct {
	Proto        uint8 // unix.IPPROTO_UDP
	OrigDst      net.IP
	OrigDstPort  uint16
	ReplySrc     net.IP
	ReplySrcPort uint16
}

type ctTuple struct {
	src, dst         net.IP
	sport, dport     uint16
	proto            uint8
	hasPorts, hasIPs bool
}

func (f ConntrackFilter) matches(orig, reply ctTuple) bool {
	if f.Proto != 0 && orig.proto != f.Proto {
		return false
	}
	if f.OrigDst != nil && !f.OrigDst.Equal(orig.dst) {
		return false
	}
	if f.OrigDstPort != 0 && f.OrigDstPort != orig.dport {
		return false
	}
	if f.ReplySrc != nil && !f.ReplySrc.Equal(reply.src) {
		return false
	}
	if f.ReplySrcPort != 0 && f.ReplySrcPort != reply.sport {
		return false
	}
	return true
}

// NetlinkConntrack talks ctnetlink (the kernel's conntrack netlink
// interface, as the conntrack tool does) without the tool, which is not
// installed everywhere.
type NetlinkConntrack struct {
	// Netns, if set, is a network namespace path (/run/netns/x) whose
	// table to change instead of this process's (for tests).
	Netns string
}

var _ Conntrack = (*NetlinkConntrack)(nil)

// Netlink constants of ctnetlink (linux/netfilter/nfnetlink_conntrack.h).
const (
	nfnlSubsysCTNetlink = 1
	ipctnlMsgCtGet      = 1
	ipctnlMsgCtDelete   = 2
	ctaTupleOrig        = 1
	ctaTupleReply       = 2
	ctaTupleIP          = 1
	ctaTupleProto       = 2
	ctaIPv4Src          = 1
	ctaIPv4Dst          = 2
	ctaProtoNum         = 1
	ctaProtoSrcPort     = 2
	ctaProtoDstPort     = 3
	nlaFNested          = 0x8000
	nlaTypeMask         = ^uint16(0xc000)
)

var ctSeq atomic.Uint32

// socket opens a netfilter netlink socket, in c.Netns if set.
func (c *NetlinkConntrack) socket() (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	}
	if c.Netns == "" {
		return open()
	}
	var fd int
	err := inNetns(c.Netns, func() (err error) { fd, err = open(); return err })
	return fd, err
}

// inNetns runs fn on a thread switched into the network namespace at path.
// Sockets fn opens stay in that namespace.
func inNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back: %w", err) // the thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// Delete implements Conntrack: it dumps the IPv4 table, then deletes each
// entry a filter matches by its original tuple. An entry that vanished in
// between is not an error.
func (c *NetlinkConntrack) Delete(ctx context.Context, filters []ConntrackFilter) (int, error) {
	if len(filters) == 0 {
		return 0, nil
	}
	fd, err := c.socket()
	if err != nil {
		return 0, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("conntrack netlink bind: %w", err)
	}
	tv := unix.NsecToTimeval(int64(2e9))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	seq := ctSeq.Add(1)
	if err := unix.Sendto(fd, ctMessage(ipctnlMsgCtGet, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, nil), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("conntrack dump: %w", err)
	}
	var victims []ctTuple
	buf := make([]byte, 1<<16)
dump:
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("conntrack dump: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("conntrack dump: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				break dump
			case unix.NLMSG_ERROR:
				if e := nlError(m.Data); e != nil {
					return 0, fmt.Errorf("conntrack dump: %w", e)
				}
				break dump
			}
			if len(m.Data) < 4 {
				continue
			}
			orig, reply := parseEntry(m.Data[4:])
			for _, f := range filters {
				if f.matches(orig, reply) {
					victims = append(victims, orig)
					break
				}
			}
		}
	}
	deleted := 0
	var errs []error
	for _, t := range victims {
		seq := ctSeq.Add(1)
		msg := ctMessage(ipctnlMsgCtDelete, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq, encodeTuple(ctaTupleOrig, t))
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			errs = append(errs, err)
			continue
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msgs, _ := syscall.ParseNetlinkMessage(buf[:n])
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			switch e := nlError(m.Data); {
			case e == nil:
				deleted++
			case errors.Is(e, unix.ENOENT):
			default:
				errs = append(errs, e)
			}
		}
	}
	return deleted, errors.Join(errs...)
}

// ctMessage is a ctnetlink request: header, nfgenmsg (AF_INET, v0), attrs.
func ctMessage(msgType uint16, flags uint16, seq uint32, attrs []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4, unix.NLMSG_HDRLEN+4+len(attrs))
	b = append(b, attrs...)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], nfnlSubsysCTNetlink<<8|msgType)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	b[unix.NLMSG_HDRLEN] = unix.AF_INET // nfgen_family; version and res_id stay 0
	return b
}

func nlError(data []byte) error {
	if len(data) < 4 {
		return errors.New("short netlink error")
	}
	if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

func attr(typ uint16, payload []byte) []byte {
	l := 4 + len(payload)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], payload)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func encodeTuple(which uint16, t ctTuple) []byte {
	ip := append(attr(ctaIPv4Src, t.src.To4()), attr(ctaIPv4Dst, t.dst.To4())...)
	proto := attr(ctaProtoNum, []byte{t.proto})
	if t.hasPorts {
		proto = append(proto, attr(ctaProtoSrcPort, be16(t.sport))...)
		proto = append(proto, attr(ctaProtoDstPort, be16(t.dport))...)
	}
	inner := append(attr(ctaTupleIP|nlaFNested, ip), attr(ctaTupleProto|nlaFNested, proto)...)
	return attr(which|nlaFNested, inner)
}

// attrs splits a run of netlink attributes into type -> payload.
func attrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			break
		}
		out[typ] = b[4:l]
		adv := (l + 3) &^ 3
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return out
}

func parseTuple(b []byte) ctTuple {
	var t ctTuple
	a := attrs(b)
	if ip, ok := a[ctaTupleIP]; ok {
		ia := attrs(ip)
		if s, ok := ia[ctaIPv4Src]; ok && len(s) == 4 {
			t.src = net.IP(append([]byte(nil), s...))
		}
		if d, ok := ia[ctaIPv4Dst]; ok && len(d) == 4 {
			t.dst = net.IP(append([]byte(nil), d...))
			t.hasIPs = t.src != nil
		}
	}
	if p, ok := a[ctaTupleProto]; ok {
		pa := attrs(p)
		if n, ok := pa[ctaProtoNum]; ok && len(n) == 1 {
			t.proto = n[0]
		}
		sp, ok1 := pa[ctaProtoSrcPort]
		dp, ok2 := pa[ctaProtoDstPort]
		if ok1 && ok2 && len(sp) == 2 && len(dp) == 2 {
			t.sport, t.dport, t.hasPorts = binary.BigEndian.Uint16(sp), binary.BigEndian.Uint16(dp), true
		}
	}
	return t
}

func parseEntry(b []byte) (orig, reply ctTuple) {
	a := attrs(b)
	return parseTuple(a[ctaTupleOrig]), parseTuple(a[ctaTupleReply])
}

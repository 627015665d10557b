package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
)

// ErrNotSteered means the kernel holds no record for a client address: the
// connection did not come through the steering programs (or its record was
// already consumed), so it cannot be attributed.
var ErrNotSteered = errors.New("no steering record for this connection")

// Origin is what the kernel recorded when an agent called connect().
type Origin struct {
	// Dst is the destination the agent dialed, before the rewrite. IPv4
	// destinations (also those dialed as IPv4-mapped IPv6) are plain IPv4.
	Dst netip.AddrPort
	// Mapped is set when a dual-stack IPv6 socket dialed an IPv4-mapped
	// address (::ffff:a.b.c.d).
	Mapped bool
	// Family is the socket's family as the kernel saw it: 4 or 6.
	Family int
	// PID is the process (thread group) id, TID the calling thread.
	PID, TID uint32
	UID, GID uint32
	// CgroupID is the cgroup v2 id of the calling task.
	CgroupID uint64
	// Cookie is the agent socket's cookie.
	Cookie uint64
	// Connected is the CLOCK_BOOTTIME time of the connect() call.
	Connected time.Duration
	// Comm is the kernel's name for the calling task.
	Comm string
}

// peerKey builds the map key for a client address as seen by the proxy.
func peerKey(client netip.AddrPort) steerPeerKey {
	return steerPeerKey{Addr: client.Addr().As16(), Port: client.Port()}
}

func originOf(info *steerConnInfo) Origin {
	addr := netip.AddrFrom16(info.DstAddr)
	o := Origin{
		Dst:       netip.AddrPortFrom(addr.Unmap(), info.DstPort),
		Mapped:    addr.Is4In6() && info.Family == afInet6,
		Family:    4,
		PID:       info.Tgid,
		TID:       info.Tid,
		UID:       info.Uid,
		GID:       info.Gid,
		CgroupID:  info.CgroupId,
		Cookie:    info.Cookie,
		Connected: time.Duration(info.ConnectNs),
		Comm:      commString(info.Comm),
	}
	if info.Family == afInet6 {
		o.Family = 6
	}
	return o
}

func commString(c [16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

const (
	afInet  = 2
	afInet6 = 10
)

// Lookup returns the record for the agent socket whose local address is
// client (the remote address of a connection accepted by the proxy) and
// removes it, so that a record is used for exactly one connection.
func (s *Steering) Lookup(client netip.AddrPort) (Origin, error) {
	key := peerKey(client)
	var info steerConnInfo
	err := s.objs.Peers.LookupAndDelete(&key, &info)
	if errors.Is(err, ebpf.ErrNotSupported) {
		if err = s.objs.Peers.Lookup(&key, &info); err == nil {
			_ = s.objs.Peers.Delete(&key)
		}
	}
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return Origin{}, ErrNotSteered
	}
	if err != nil {
		return Origin{}, fmt.Errorf("look up %s in peers map: %w", client, err)
	}
	return originOf(&info), nil
}

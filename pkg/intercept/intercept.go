package intercept

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/bpf"
)

// ErrUnattributed means the connection has no kernel record: it did not
// come from a steered socket.
var ErrUnattributed = errors.New("connection cannot be attributed to an agent socket")

// ErrStale means the kernel record is older than MaxAge: it belongs to a
// connect() that never reached this listener, not to this connection.
var ErrStale = errors.New("steering record is stale")

// Tracker finds and consumes the kernel's record for a client address.
// *bpf.Steering implements it.
type Tracker interface {
	Lookup(client netip.AddrPort) (bpf.Origin, error)
}

var _ Tracker = (*bpf.Steering)(nil)

// Conn is an attributed connection.
type Conn struct {
	// Client is the agent end as the proxy sees it (loopback).
	Client  netip.AddrPort
	Origin  bpf.Origin
	Process Process
}

// Attributor attributes accepted connections.
type Attributor struct {
	Tracker Tracker
	// Proc is the procfs mount ("" means /proc).
	Proc string
	// MaxAge bounds how old a kernel record may be (0 means 60s).
	MaxAge time.Duration
	// Root returns the job root for a cgroup id, so that the ancestors
	// above the job are taken from enrollment rather than read from /proc
	// for every connection. Nil, or ok false, means walk all the way up.
	Root func(cgroupID uint64) (root JobRoot, ok bool)
}

// Attribute identifies the agent behind c.
func (a *Attributor) Attribute(c net.Conn) (Conn, error) {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return Conn{}, fmt.Errorf("%w: remote address %v is not TCP", ErrUnattributed, c.RemoteAddr())
	}
	ap := ta.AddrPort()
	client := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	o, err := a.Tracker.Lookup(client)
	if errors.Is(err, bpf.ErrNotSteered) {
		return Conn{}, fmt.Errorf("%w: %s", ErrUnattributed, client)
	}
	if err != nil {
		return Conn{}, err
	}
	maxAge := a.MaxAge
	if maxAge == 0 {
		maxAge = 60 * time.Second
	}
	if now := bootTime(); now > 0 && now-o.Connected > maxAge {
		return Conn{}, fmt.Errorf("%w: connect() was %s ago", ErrStale, (now - o.Connected).Round(time.Millisecond))
	}
	proc := a.Proc
	if proc == "" {
		proc = "/proc"
	}
	var root *JobRoot
	if a.Root != nil {
		if r, ok := a.Root(o.CgroupID); ok {
			root = &r
		}
	}
	return Conn{Client: client, Origin: o, Process: inspect(proc, o, root)}, nil
}

// bootTime is CLOCK_BOOTTIME, the clock bpf_ktime_get_boot_ns reads.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

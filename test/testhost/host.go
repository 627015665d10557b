package testhost

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is a remote host in its own network namespace.
type Host struct {
	// Name is the network namespace name (ip netns list shows it).
	Name string
	// HostIf is the veth end on the host, PeerIf the one inside.
	HostIf, PeerIf string
	// Addr4/Addr6 are the host's addresses; Gateway4/Gateway6 the host-side
	// addresses it sees connections come from.
	Addr4, Gateway4 netip.Addr
	Addr6, Gateway6 netip.Addr

	ns netns.NsHandle
}

// New creates host number index (1..250); its addresses are
// 198.18.<index>.2 and 2001:2:0:<index>::2, with the host side on .1 and
// ::1. Prefix names the namespace and interfaces; keep it short (interface
// names have 15 characters).
func New(prefix string, index int) (*Host, error) {
	if index < 1 || index > 250 {
		return nil, fmt.Errorf("testhost: index %d out of range 1..250", index)
	}
	h := &Host{
		Name:     fmt.Sprintf("%s-%d", prefix, index),
		HostIf:   fmt.Sprintf("%sh%d", prefix, index),
		PeerIf:   fmt.Sprintf("%sp%d", prefix, index),
		Addr4:    netip.AddrFrom4([4]byte{198, 18, byte(index), 2}),
		Gateway4: netip.AddrFrom4([4]byte{198, 18, byte(index), 1}),
		Addr6:    netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::2", index)),
		Gateway6: netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::1", index)),
	}
	if len(h.HostIf) > 15 {
		return nil, fmt.Errorf("testhost: interface name %q too long", h.HostIf)
	}
	if err := h.create(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *Host) create() error {
	// Leftovers from a crashed run with the same name would make every
	// step below fail.
	_ = netns.DeleteNamed(h.Name)
	if l, err := netlink.LinkByName(h.HostIf); err == nil {
		_ = netlink.LinkDel(l)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(h.Name) // switches this thread into it
	if err != nil {
		return fmt.Errorf("create netns %s: %w", h.Name, err)
	}
	h.ns = ns
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return to host netns: %w", err)
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = h.HostIf
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: h.PeerIf, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", h.HostIf, err)
	}
	hostLink, err := netlink.LinkByName(h.HostIf)
	if err != nil {
		return err
	}
	if err := configure(nil, hostLink, h.Gateway4, h.Gateway6); err != nil {
		return fmt.Errorf("host side: %w", err)
	}

	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", h.Name, err)
	}
	defer nh.Close()
	peer, err := nh.LinkByName(h.PeerIf)
	if err != nil {
		return err
	}
	if err := configure(nh, peer, h.Addr4, h.Addr6); err != nil {
		return fmt.Errorf("peer side: %w", err)
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	return nh.LinkSetUp(lo)
}

// configure adds a /30 and a /64 (without duplicate address detection, so
// the address works at once) and brings the link up. nh nil means the host
// namespace.
func configure(nh *netlink.Handle, l netlink.Link, a4, a6 netip.Addr) error {
	if nh == nil {
		var err error
		if nh, err = netlink.NewHandle(); err != nil {
			return err
		}
		defer nh.Close()
	}
	for _, a := range []struct {
		ip   netip.Addr
		bits int
	}{{a4, 30}, {a6, 64}} {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip.AsSlice(), Mask: net.CIDRMask(a.bits, a.ip.BitLen())}}
		if a.ip.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := nh.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", a.ip, l.Attrs().Name, err)
		}
	}
	return nh.LinkSetUp(l)
}

// Do runs fn with the calling goroutine's thread inside the host's network
// namespace. Sockets created in fn belong to the host; processes started in
// fn run in it.
func (h *Host) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(h.ns); err != nil {
		return fmt.Errorf("enter %s: %w", h.Name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the wrong namespace; do not let the
		// runtime reuse it.
		runtime.LockOSThread()
		return errors.Join(ferr, fmt.Errorf("leave %s: %w", h.Name, err))
	}
	return ferr
}

// Start starts cmd inside the host.
func (h *Host) Start(cmd *exec.Cmd) error {
	return h.Do(cmd.Start)
}

// Close removes the namespace and the veth pair (deleting one end removes
// both). Processes started in the host should be stopped first.
func (h *Host) Close() error {
	var errs []error
	if l, err := netlink.LinkByName(h.HostIf); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, err)
		}
	}
	if h.ns.IsOpen() {
		h.ns.Close()
	}
	if err := netns.DeleteNamed(h.Name); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CleanupStale removes namespaces named "<prefix>-<n>" and their veths left
// behind by a run that did not finish.
func CleanupStale(prefix string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			_ = netns.DeleteNamed(e.Name())
		}
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix+"h") {
			_ = netlink.LinkDel(l)
		}
	}
}

// Command steercheck loads sluice's steering programs on the running kernel
// and proves they work: a child process in a fresh cgroup dials addresses
// that do not exist here (198.18.0.2:80, [2001:2::2]:80, and the IPv4-mapped
// form), the connects land on a local listener, the BPF record names the
// original destination and the child's pid, getpeername() shows the
// original peer, UDP to a non-resolver and raw sockets are refused.
//
// It runs in two places: directly on the host (go test ./test/kernels), and
// as /init of an initramfs booted under qemu with an older kernel (make
// test-kernels), where it mounts what it needs first and powers off at the
// end. It prints "STEERCHECK PASS" or "STEERCHECK FAIL: reason".
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/bpf"
	"github.com/sluice-gate/sluice/pkg/cgroup"
)

const proxyPort = 15999

func main() {
	if len(os.Args) > 2 && os.Args[1] == "child" {
		if err := child(os.Args[2]); err != nil {
			fmt.Println("child:", err)
			os.Exit(1)
		}
		return
	}
	init := os.Getpid() == 1
	if init && (len(os.Args) < 2 || os.Args[1] != "guest") {
		if err := setupInit(); err != nil {
			fmt.Println("STEERCHECK FAIL: setup:", err)
			poweroff()
		}
		// Start over as a fresh image: libraries cache what they read
		// from /proc before it was mounted.
		err := unix.Exec("/init", []string{"/init", "guest"}, os.Environ())
		fmt.Println("STEERCHECK FAIL: re-exec:", err)
		poweroff()
	}
	if init {
		printKernel()
	}
	if err := run(); err != nil {
		fmt.Println("STEERCHECK FAIL:", err)
	} else {
		fmt.Println("STEERCHECK PASS")
	}
	if init {
		poweroff()
	}
}

func printKernel() {
	var u unix.Utsname
	_ = unix.Uname(&u)
	fmt.Printf("steercheck: kernel %s\n", unix.ByteSliceToString(u.Release[:]))
}

func setupInit() error {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"sysfs", "/sys", "sysfs"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2"},
		{"bpf", "/sys/fs/bpf", "bpf"},
		{"tmpfs", "/tmp", "tmpfs"},
	}
	for _, m := range mounts {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	return netlink.LinkSetUp(lo)
}

func poweroff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func run() error {
	mount, err := cgroup.Mountpoint()
	if err != nil {
		return err
	}
	cg := filepath.Join(mount, fmt.Sprintf("steercheck-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return err
	}
	defer cgroup.Remove(cg)
	pinDir := filepath.Join(bpf.DefaultFS, filepath.Base(cg))
	if err := bpf.EnsureFS(bpf.DefaultFS); err != nil {
		return err
	}
	for _, f := range bpf.Features() {
		fmt.Printf("steercheck: feature %s available=%v %s\n", f.Name, f.Available, f.Detail)
	}
	resolver := netip.MustParseAddrPort("127.0.0.53:53")
	s, err := bpf.Load(bpf.Config{Cgroup: cg, PinDir: pinDir, ProxyPort: proxyPort, Resolvers: []netip.AddrPort{resolver}},
		slog.New(slog.NewTextHandler(os.Stdout, nil)))
	if err != nil {
		return err
	}
	defer bpf.Uninstall(pinDir)
	defer s.Close()
	cgid, err := cgroup.ID(cg)
	if err != nil {
		return err
	}

	ln4, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", proxyPort))
	if err != nil {
		return err
	}
	defer ln4.Close()
	ln6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", proxyPort))
	if err != nil {
		return err
	}
	defer ln6.Close()

	type result struct {
		origin bpf.Origin
		err    error
	}
	results := make(chan result, 8)
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			o, err := s.Lookup(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			if err == nil {
				_, err = fmt.Fprintf(c, "dst=%s\n", o.Dst)
			}
			results <- result{o, err}
			c.Close()
		}
	}
	go serve(ln4)
	go serve(ln6)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "child", cg)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	childPID := uint32(cmd.Process.Pid)
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()

	want := []string{"198.18.0.2:80", "[2001:2::2]:80", "198.18.0.3:443"}
	for i := range want {
		select {
		case r := <-results:
			if r.err != nil {
				return fmt.Errorf("connection %d: %w", i, r.err)
			}
			o := r.origin
			if o.PID != childPID || o.CgroupID != cgid {
				return fmt.Errorf("record %+v: want pid %d cgroup %d", o, childPID, cgid)
			}
			fmt.Printf("steercheck: redirected %s pid=%d comm=%q family=%d mapped=%v\n", o.Dst, o.PID, o.Comm, o.Family, o.Mapped)
		case err := <-werr:
			return fmt.Errorf("child exited early: %v", err)
		case <-time.After(30 * time.Second):
			return errors.New("timed out waiting for redirected connections")
		}
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("child: %w", err)
	}
	st, err := s.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("steercheck: stats %+v\n", st)
	if st.Redirected < 3 || st.UDPDenied < 1 || st.SockDenied < 1 {
		return fmt.Errorf("unexpected stats %+v", st)
	}
	return nil
}

// child moves itself into the cgroup, then behaves like an agent.
func child(cg string) error {
	if err := cgroup.Move(cg, os.Getpid()); err != nil {
		return err
	}
	for _, tc := range []struct{ network, addr, want string }{
		{"tcp4", "198.18.0.2:80", "198.18.0.2:80"},
		{"tcp6", "[2001:2::2]:80", "[2001:2::2]:80"},
	} {
		if err := dial(tc.network, tc.addr, tc.want); err != nil {
			return err
		}
	}
	if err := dialMapped(); err != nil {
		return err
	}
	// UDP to something that is not the resolver must be refused.
	u, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	_, err = u.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 53})
	u.Close()
	if !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("udp to non-resolver: got %v, want EPERM", err)
	}
	// Raw sockets must be refused even for root.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err == nil {
		unix.Close(fd)
		return errors.New("raw socket: created, want EPERM")
	}
	return nil
}

func dial(network, addr, want string) error {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != want {
		return fmt.Errorf("getpeername after dialing %s = %s, want %s", addr, got, want)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read from proxy: %w", err)
	}
	if strings.TrimSpace(line) != "dst="+want {
		return fmt.Errorf("proxy saw %q, want dst=%s", line, want)
	}
	return nil
}

// dialMapped connects a dual-stack IPv6 socket to ::ffff:198.18.0.3:443,
// which Go's dialer would turn into IPv4 on its own.
func dialMapped() error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dst := &unix.SockaddrInet6{Port: 443, Addr: netip.MustParseAddr("::ffff:198.18.0.3").As16()}
	if err := unix.Connect(fd, dst); err != nil {
		return fmt.Errorf("connect ::ffff:198.18.0.3: %w", err)
	}
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return err
	}
	peer, ok := sa.(*unix.SockaddrInet6)
	if !ok || netip.AddrFrom16(peer.Addr) != netip.MustParseAddr("::ffff:198.18.0.3") || peer.Port != 443 {
		return fmt.Errorf("getpeername after dialing ::ffff:198.18.0.3 = %+v", sa)
	}
	buf := make([]byte, 64)
	n, _ := unix.Read(fd, buf)
	if got := strings.TrimSpace(string(buf[:max(n, 0)])); got != "dst=198.18.0.3:443" {
		return fmt.Errorf("proxy saw %q for the mapped dial", got)
	}
	return nil
}

// Command agent is the workload sluice's end-to-end tests run inside a job:
// it performs one socket operation per command and prints the outcome as a
// JSON line, so tests can check exactly what the kernel and the proxy did
// (which errno, which peer address) where a client like curl would only
// print a message.
//
//	agent connect ADDR [http]    TCP connect, getpeername, optional HTTP GET
//	agent mapped IPV4 PORT       connect an IPv6 socket to ::ffff:IPV4
//	agent udp ADDR [reply]       send a datagram, optionally wait for a reply
//	agent socket raw|packet|icmp|sctp|tcp|udp
//	agent serve                  read such commands from stdin, one per line
//	agent pg DSN SQL [ARG...]    one statement through pgx (extended protocol)
//	agent pgpipe DSN SQL...      a pipeline of statements, one Sync
//	agent pgtraffic DSN FILE SQL record every byte the server sends
//	agent http METHOD URL [H: V]... one request with Go's default client
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Result is printed for every command.
type Result struct {
	OK       bool   `json:"ok"`
	Errno    string `json:"errno,omitempty"`
	Err      string `json:"err,omitempty"`
	Peer     string `json:"peer,omitempty"`
	Local    string `json:"local,omitempty"`
	Response string `json:"response,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: agent connect|mapped|udp|socket|serve ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pg", "pgpipe", "pgtraffic":
		var r pgResult
		switch {
		case os.Args[1] == "pg" && len(os.Args) >= 4:
			r = pgQuery(os.Args[2], os.Args[3], os.Args[4:])
		case os.Args[1] == "pgpipe" && len(os.Args) >= 4:
			r = pgPipeline(os.Args[2], os.Args[3:])
		case os.Args[1] == "pgtraffic" && len(os.Args) == 5:
			r = pgTraffic(os.Args[2], os.Args[3], os.Args[4])
		default:
			r = pgResult{Err: "usage: agent pg DSN SQL [ARG...] | pgpipe DSN SQL... | pgtraffic DSN FILE SQL"}
		}
		printPG(r)
		if !r.OK {
			os.Exit(1)
		}
		return
	}
	if os.Args[1] == "http" {
		web(os.Args[2:])
		return
	}
	if os.Args[1] == "serve" {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			print(run(strings.Fields(sc.Text())))
		}
		return
	}
	r := run(os.Args[1:])
	print(r)
	if !r.OK {
		os.Exit(1)
	}
}

func print(r Result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func fail(err error) Result {
	r := Result{Err: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r.Errno = unix.ErrnoName(errno)
	}
	return r
}

func run(args []string) Result {
	if len(args) == 0 {
		return Result{Err: "no command"}
	}
	switch args[0] {
	case "connect":
		if len(args) < 2 {
			return Result{Err: "connect ADDR [http]"}
		}
		return connect(args[1], len(args) > 2 && args[2] == "http")
	case "mapped":
		if len(args) < 3 {
			return Result{Err: "mapped IPV4 PORT"}
		}
		return mapped(args[1], args[2])
	case "udp":
		if len(args) < 2 {
			return Result{Err: "udp ADDR [reply]"}
		}
		return udp(args[1], len(args) > 2 && args[2] == "reply")
	case "socket":
		if len(args) < 2 {
			return Result{Err: "socket KIND"}
		}
		return socket(args[1])
	}
	return Result{Err: "unknown command " + args[0]}
}

func connect(addr string, http bool) Result {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	r := Result{OK: true, Peer: c.RemoteAddr().String(), Local: c.LocalAddr().String()}
	if http {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
			res := fail(err)
			res.Peer = r.Peer
			return res
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) || line == "" {
			if err == nil {
				err = io.EOF
			}
			res := fail(err)
			res.Peer = r.Peer
			return res
		}
		r.Response = strings.TrimSpace(line)
	}
	return r
}

func mapped(ip4, port string) Result {
	a, err := netip.ParseAddr("::ffff:" + ip4)
	if err != nil {
		return fail(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fail(err)
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet6{Addr: a.As16(), Port: p}); err != nil {
		return fail(err)
	}
	r := Result{OK: true}
	if sa, err := unix.Getpeername(fd); err == nil {
		if s6, ok := sa.(*unix.SockaddrInet6); ok {
			r.Peer = netip.AddrPortFrom(netip.AddrFrom16(s6.Addr), uint16(s6.Port)).String()
		}
	}
	return r
}

func udp(addr string, reply bool) Result {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fail(err)
	}
	c, err := net.ListenUDP("udp", nil)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP([]byte("ping"), ua); err != nil {
		return fail(err)
	}
	r := Result{OK: true}
	if reply {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return fail(err)
		}
		r.Response, r.Peer = string(buf[:n]), from.String()
	}
	return r
}

func socket(kind string) Result {
	var domain, typ, proto int
	switch kind {
	case "raw":
		domain, typ, proto = unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP
	case "raw6":
		domain, typ, proto = unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6
	case "packet":
		domain, typ, proto = unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))
	case "icmp":
		domain, typ, proto = unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP
	case "sctp":
		domain, typ, proto = unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP
	case "tcp":
		domain, typ, proto = unix.AF_INET, unix.SOCK_STREAM, 0
	case "udp":
		domain, typ, proto = unix.AF_INET, unix.SOCK_DGRAM, 0
	default:
		return Result{Err: "unknown socket kind " + kind}
	}
	fd, err := unix.Socket(domain, typ, proto)
	if err != nil {
		return fail(err)
	}
	unix.Close(fd)
	return Result{OK: true}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

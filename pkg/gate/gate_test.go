package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gate/sluice/pkg/bpf"
	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/tcp"
	"github.com/sluice-gate/sluice/pkg/target"
	"github.com/sluice-gate/sluice/policies"
)

// scripted attributes every connection to the next origin in its queue,
// standing in for the kernel, which the e2e tests exercise for real.
type scripted struct {
	mu   sync.Mutex
	next []intercept.Conn
	err  error
}

func (s *scripted) Attribute(net.Conn) (intercept.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return intercept.Conn{}, s.err
	}
	c := s.next[0]
	s.next = s.next[1:]
	return c, nil
}

type jobs map[uint64]job.Binding

func (j jobs) Lookup(id uint64) (job.Binding, bool) { b, ok := j[id]; return b, ok }

func echoServer(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func TestGateDecisions(t *testing.T) {
	up := echoServer(t)
	now := time.Now()
	bound := job.Binding{ID: "job-a", CgroupID: 7, Identity: identity.Identity{Subject: "build-1", Expiry: now.Add(time.Hour), Claims: map[string]any{"groups": []any{"ci"}}}}
	expired := job.Binding{ID: "job-b", CgroupID: 8, Identity: identity.Identity{Subject: "old", Expiry: now.Add(-time.Second)}}

	attr := &scripted{}
	reg := prometheus.NewRegistry()
	g, err := New(Config{
		Port:       uint16(freePort(t)),
		Attributor: attr,
		Jobs:       jobs{7: bound, 8: expired},
		Handlers:   map[string]protocol.Handler{"tcp": tcp.Handler{}},
		Log:        slog.New(slog.DiscardHandler),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := target.NewSet(context.Background(), []config.Target{
		{Name: "echo", Address: up.String(), Protocol: "tcp"},
		{Name: "ops-only", Address: "127.0.0.1:1", Protocol: "tcp", Labels: map[string]string{"allowed_groups": "ops"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.LoadFS(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	g.SetState(State{Targets: targets, Policy: pol})
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	origin := func(cg uint64, dst string) intercept.Conn {
		return intercept.Conn{Origin: bpf.Origin{Dst: netip.MustParseAddrPort(dst), CgroupID: cg, PID: 42, Comm: "curl"}}
	}
	tests := []struct {
		name    string
		conn    intercept.Conn
		attrErr error
		outcome string
		target  string
		ok      bool
	}{
		{"allowed", origin(7, up.String()), nil, OutcomeAllowed, "echo", true},
		{"unattributed", intercept.Conn{}, intercept.ErrUnattributed, OutcomeUnattributed, "-", false},
		{"unbound cgroup", origin(99, up.String()), nil, OutcomeUnbound, "-", false},
		{"expired token", origin(8, up.String()), nil, OutcomeExpired, "-", false},
		{"unknown target", origin(7, "127.0.0.1:2"), nil, OutcomeUnknownTarget, "-", false},
		{"denied by policy", origin(7, "127.0.0.1:1"), nil, OutcomeDenied, "ops-only", false},
		{"loop", origin(7, "127.0.0.1:"+strconv.Itoa(int(g.cfg.Port))), nil, OutcomeLoop, "-", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attr.mu.Lock()
			attr.next, attr.err = []intercept.Conn{tt.conn}, tt.attrErr
			attr.mu.Unlock()
			counter := g.metrics.connections.WithLabelValues(tt.target, tt.outcome)
			before := testutil.ToFloat64(counter)

			c, err := net.Dial("tcp", g.Addrs()[0])
			if err != nil {
				// The gate can refuse before the dialer has even seen
				// its connect complete; that is a reset too.
				if tt.ok || !isReset(err) {
					t.Fatal(err)
				}
				waitCount(t, counter, before+1)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := c.Write([]byte("ping"))
			buf := make([]byte, 4)
			_, rerr := io.ReadFull(c, buf)
			if tt.ok {
				if werr != nil || rerr != nil || string(buf) != "ping" {
					t.Fatalf("echo through the gate: %v %v %q", werr, rerr, buf)
				}
			} else if rerr == nil {
				t.Fatalf("refused connection answered %q", buf)
			} else if !isReset(rerr) {
				t.Fatalf("refused connection: %v, want reset", rerr)
			}
			c.Close()
			waitCount(t, counter, before+1)
		})
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && errors.Is(op.Err, syscall.ECONNRESET)
}

func waitCount(t *testing.T, c prometheus.Counter, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("counter = %v, want %v", testutil.ToFloat64(c), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkConnect measures the gate's work for one allowed connection:
// accept, decision (real OPA policy), upstream dial, one byte each way.
// Attribution is scripted (no kernel); /proc inspection is in
// BenchmarkAttribute (pkg/intercept).
func BenchmarkConnect(b *testing.B) {
	up := echoServer(b)
	bound := job.Binding{ID: "job-a", CgroupID: 7, Identity: identity.Identity{Subject: "build-1", Expiry: time.Now().Add(time.Hour)}}
	attr := &repeat{c: intercept.Conn{Origin: bpf.Origin{Dst: up, CgroupID: 7, PID: 42, Comm: "bench"}}}
	g, err := New(Config{
		Port: 1, Attributor: attr, Jobs: jobs{7: bound},
		Handlers: map[string]protocol.Handler{"tcp": tcp.Handler{}},
		Log:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	targets, _ := target.NewSet(context.Background(), []config.Target{{Name: "echo", Address: up.String(), Protocol: "tcp"}}, nil)
	pol, _ := policy.LoadFS(context.Background(), policies.FS)
	g.SetState(State{Targets: targets, Policy: pol})
	gl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g.listeners = []net.Listener{gl}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	buf := []byte{1}
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp4", gl.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

type repeat struct{ c intercept.Conn }

func (r *repeat) Attribute(net.Conn) (intercept.Conn, error) { return r.c, nil }

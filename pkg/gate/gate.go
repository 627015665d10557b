package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/recorder"
	"github.com/sluice-gate/sluice/pkg/target"
)

// Log keys.
const (
	keyConn     = "conn"
	keyClient   = "client"
	keyDst      = "dst"
	keyTarget   = "target"
	keyJob      = "job"
	keySubject  = "subject"
	keyPID      = "pid"
	keyComm     = "comm"
	keyExe      = "exe"
	keyOutcome  = "outcome"
	keyReason   = "reason"
	keyBytesUp  = "bytes_up"
	keyBytesDn  = "bytes_down"
	keyDuration = "duration"
	keyErr      = "err"
	keySession  = "session"
)

// Outcomes, as logged and as the "outcome" metric label.
const (
	OutcomeAllowed       = "allowed"
	OutcomeDenied        = "denied"
	OutcomeUnattributed  = "unattributed"
	OutcomeUnbound       = "unbound"
	OutcomeExpired       = "expired"
	OutcomeUnknownTarget = "unknown_target"
	OutcomeLoop          = "loop"
	OutcomePolicyError   = "policy_error"
	OutcomeNoHandler     = "no_handler"
	OutcomeUpstreamError = "upstream_error"
	OutcomeRecordError   = "record_error"
)

// Attributor identifies the agent behind an accepted connection.
// *intercept.Attributor implements it.
type Attributor interface {
	Attribute(c net.Conn) (intercept.Conn, error)
}

// Approver holds an operation of a session until a reviewer decides.
// *approval.Service implements it.
type Approver interface {
	Hold(ctx context.Context, s *protocol.Session, op policy.Operation, d policy.Decision) (protocol.Verdict, error)
}

// Jobs finds the binding for a cgroup id. *job.Registry implements it.
type Jobs interface {
	Lookup(cgroupID uint64) (job.Binding, bool)
}

var (
	_ Attributor = (*intercept.Attributor)(nil)
	_ Jobs       = (*job.Registry)(nil)
)

// State is what a configuration reload replaces.
type State struct {
	Targets *target.Set
	Policy  *policy.Engine
}

// Config configures a Gate.
type Config struct {
	// Port is the proxy port; the gate listens on 127.0.0.1 and ::1.
	Port       uint16
	Attributor Attributor
	Jobs       Jobs
	// Handlers by target protocol name.
	Handlers map[string]protocol.Handler
	// DialTimeout bounds upstream connects (0: 10s).
	DialTimeout time.Duration
	Log         *slog.Logger
	// Registerer receives the gate's metrics; nil means none.
	Registerer prometheus.Registerer
	// Approver holds operations that need a reviewer (it becomes each
	// session's protocol.Session.Approve); nil refuses them.
	Approver Approver
	// Recorder records every connection, refused ones too; nil records
	// nothing.
	Recorder *recorder.Recorder
	// Reserved are the host's own service ports (API, metrics) besides
	// the proxy port: a destination on a local address with one of them is
	// refused like a loop, whatever the targets say.
	Reserved []uint16
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case c.Port == 0:
		return errors.New("gate: port is 0")
	case c.Attributor == nil:
		return errors.New("gate: no attributor")
	case c.Jobs == nil:
		return errors.New("gate: no job registry")
	case len(c.Handlers) == 0:
		return errors.New("gate: no protocol handlers")
	case c.Log == nil:
		return errors.New("gate: no logger")
	}
	return nil
}

// Gate is the proxy.
type Gate struct {
	cfg     Config
	state   atomic.Pointer[State]
	metrics *metrics
	local   localAddrs

	// mu guards listeners.
	mu        sync.Mutex
	listeners []net.Listener
}

// New builds a gate. It refuses everything until SetState is called.
func New(cfg Config) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Gate{cfg: cfg, metrics: m}, nil
}

// SetState installs targets and policy; connections accepted afterwards
// use them.
func (g *Gate) SetState(s State) {
	g.state.Store(&s)
	g.local.invalidate()
}

// Listen binds 127.0.0.1 and ::1. It fails if either cannot be bound: a
// missing listener would turn that family's connects into refusals that
// look like bugs. Hosts without IPv6 on loopback are the exception.
func (g *Gate) Listen() error {
	port := strconv.Itoa(int(g.cfg.Port))
	// Agent connections are loopback and short-lived in the kernel's eyes;
	// TCP keepalive on them costs three setsockopts per accept for nothing.
	lc := net.ListenConfig{KeepAlive: -1}
	ln4, err := lc.Listen(context.Background(), "tcp4", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%s: %w", port, err)
	}
	lns := []net.Listener{ln4}
	if ln6, err := lc.Listen(context.Background(), "tcp6", net.JoinHostPort("::1", port)); err == nil {
		lns = append(lns, ln6)
	} else if ipv6Loopback() {
		ln4.Close()
		return fmt.Errorf("listen on [::1]:%s: %w", port, err)
	} else {
		g.cfg.Log.Warn("no IPv6 on loopback; IPv6 agent connections will fail", keyErr, err)
	}
	g.mu.Lock()
	g.listeners = lns
	g.mu.Unlock()
	return nil
}

// Addrs returns the bound listener addresses.
func (g *Gate) Addrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, l := range g.listeners {
		out = append(out, l.Addr().String())
	}
	return out
}

func ipv6Loopback() bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(net.IPv6loopback) {
			return true
		}
	}
	return false
}

// Serve accepts until ctx ends, then closes the listeners, ends active
// connections and waits for their handlers.
func (g *Gate) Serve(ctx context.Context) error {
	g.mu.Lock()
	lns := g.listeners
	g.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("gate: Serve before Listen")
	}
	var conns sync.WaitGroup
	var loops sync.WaitGroup
	for _, ln := range lns {
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
						return
					}
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					// EMFILE and friends: back off instead of spinning.
					g.cfg.Log.Error("accept", keyErr, err)
					select {
					case <-time.After(100 * time.Millisecond):
						continue
					case <-ctx.Done():
						return
					}
				}
				conns.Add(1)
				go func() {
					defer conns.Done()
					g.handle(ctx, c)
				}()
			}
		}()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	loops.Wait()
	conns.Wait()
	return nil
}

func newConnID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// handle runs one connection from accept to close.
func (g *Gate) handle(ctx context.Context, c net.Conn) {
	start := time.Now()
	id := newConnID()
	log := g.cfg.Log.With(keyConn, id)
	g.metrics.active.Inc()
	defer g.metrics.active.Dec()

	var partial *protocol.Session
	hdr := record.Header{Connection: record.Connection{Client: c.RemoteAddr().String()}}
	refuse := func(outcome, targetName, reason string, h protocol.Handler, attrs ...any) {
		g.metrics.connections.WithLabelValues(label(targetName), outcome).Inc()
		log.Warn("connection refused", append(attrs, keyOutcome, outcome, keyReason, reason)...)
		if g.cfg.Recorder != nil {
			stage := record.StageGate
			if outcome == OutcomeDenied {
				stage = record.StageConnect
			}
			if err := g.cfg.Recorder.Refused(ctx, hdr, record.Refusal{Stage: stage, Outcome: outcome, Reason: reason}); err != nil {
				log.Error("record refused connection", keyErr, err)
			}
		}
		if r, ok := h.(protocol.Refuser); ok && partial != nil {
			if err := r.Refuse(ctx, partial, c, reason); err != nil {
				log.Debug("protocol refusal", keyErr, err)
			}
		}
		protocol.Reset(c)
	}

	ac, err := g.cfg.Attributor.Attribute(c)
	if err != nil {
		refuse(OutcomeUnattributed, "", err.Error(), nil, keyClient, c.RemoteAddr().String())
		return
	}
	o := ac.Origin
	attrs := []any{keyDst, o.Dst.String(), keyPID, o.PID, keyComm, o.Comm, keyExe, ac.Process.Exe}
	hdr.Process = recordProcess(ac.Process)
	hdr.Connection.Upstream = o.Dst.String()
	hdr.Target.Address = o.Dst.String()

	b, ok := g.cfg.Jobs.Lookup(o.CgroupID)
	if !ok {
		refuse(OutcomeUnbound, "", fmt.Sprintf("cgroup %d has no job binding", o.CgroupID), nil, attrs...)
		return
	}
	attrs = append(attrs, keyJob, b.ID, keySubject, b.Identity.Subject)
	hdr.Identity = record.Identity{Subject: b.Identity.Subject, Issuer: b.Identity.Issuer, Claims: b.Identity.Claims, Job: b.ID, Cgroup: b.Cgroup}
	now := g.cfg.Now()
	if b.Expired(now) {
		refuse(OutcomeExpired, "", "job token expired at "+b.Identity.Expiry.UTC().Format(time.RFC3339), nil, attrs...)
		return
	}

	st := g.state.Load()
	if st == nil {
		refuse(OutcomePolicyError, "", "no configuration loaded", nil, attrs...)
		return
	}
	if g.isLoop(o.Dst) {
		refuse(OutcomeLoop, "", "destination is the proxy itself", nil, attrs...)
		return
	}
	t := st.Targets.Match(o.Dst)
	if t == nil {
		refuse(OutcomeUnknownTarget, "", "destination "+o.Dst.String()+" is not a configured target", nil, attrs...)
		return
	}
	attrs = append(attrs, keyTarget, t.Name)
	hdr.Protocol, hdr.Target.Name, hdr.Target.Labels = t.Protocol, t.Name, t.Labels
	h := g.cfg.Handlers[t.Protocol]
	if h == nil {
		refuse(OutcomeNoHandler, t.Name, "no handler for protocol "+t.Protocol, nil, attrs...)
		return
	}

	s := &protocol.Session{
		ID:     id,
		Conn:   ac,
		Job:    b,
		Target: t,
		Log:    log.With(keyTarget, t.Name, keyJob, b.ID),
	}
	partial = s
	az := &authorizer{g: g, s: s}
	s.Authorize = az.authorize
	s.UsesParams = az.usesParams
	if g.cfg.Approver != nil {
		s.Approve = func(ctx context.Context, op policy.Operation, d policy.Decision) (protocol.Verdict, error) {
			return g.cfg.Approver.Hold(ctx, s, op, d)
		}
	}
	s.Dial = func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{Timeout: g.cfg.DialTimeout}
		return d.DialContext(ctx, "tcp", o.Dst.String())
	}

	d, err := s.Authorize(ctx, policy.Operation{Protocol: "tcp", Action: "connect", Resource: o.Dst.String()})
	g.metrics.decision.Observe(time.Since(start).Seconds())
	if err != nil {
		refuse(OutcomePolicyError, t.Name, err.Error(), h, attrs...)
		return
	}
	if !d.Allowed() {
		refuse(OutcomeDenied, t.Name, d.Reason(), h, attrs...)
		return
	}

	if g.cfg.Recorder != nil {
		rec, err := g.cfg.Recorder.Start(ctx, hdr)
		if err != nil {
			// Fail closed: a connection that cannot be recorded does not
			// happen.
			refuse(OutcomeRecordError, t.Name, "the session cannot be recorded: "+err.Error(), h, attrs...)
			return
		}
		s.Rec = rec
		attrs = append(attrs, keySession, rec.ID())
		defer func() {
			_ = rec.Note(fmt.Sprintf("connection closed: %d bytes up, %d bytes down", s.BytesUp.Load(), s.BytesDown.Load()))
			_ = rec.Close()
		}()
	} else {
		s.Rec = recorder.Discard{}
	}
	g.metrics.connections.WithLabelValues(t.Name, OutcomeAllowed).Inc()
	log.Info("connection allowed", attrs...)
	err = h.Serve(ctx, s, c)
	up, down := s.BytesUp.Load(), s.BytesDown.Load()
	g.metrics.bytes.WithLabelValues(t.Name, "up").Add(float64(up))
	g.metrics.bytes.WithLabelValues(t.Name, "down").Add(float64(down))
	done := append(attrs, keyBytesUp, up, keyBytesDn, down, keyDuration, time.Since(start).Round(time.Microsecond).String())
	if err != nil {
		g.metrics.upstreamErrors.WithLabelValues(t.Name).Inc()
		log.Warn("connection failed", append(done, keyOutcome, OutcomeUpstreamError, keyErr, err)...)
		protocol.Reset(c)
		return
	}
	log.Info("connection closed", done...)
}

// authorizer evaluates a session's operations against the policy in force
// at the time of each operation, so a reload reaches open connections.
type authorizer struct {
	g *Gate
	s *protocol.Session

	// mu guards ps.
	mu sync.Mutex
	ps *policy.Session
}

func (a *authorizer) session() (*policy.Session, error) {
	st := a.g.state.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ps == nil || a.ps.Engine() != st.Policy {
		ps, err := st.Policy.NewSession(a.g.input(a.s, policy.Operation{}))
		if err != nil {
			return nil, err
		}
		a.ps = ps
	}
	return a.ps, nil
}

func (a *authorizer) authorize(ctx context.Context, op policy.Operation) (policy.Decision, error) {
	ps, err := a.session()
	if err != nil {
		return policy.Decision{}, err
	}
	return ps.Evaluate(ctx, op, a.g.cfg.Now())
}

func (a *authorizer) usesParams() bool {
	ps, err := a.session()
	return err != nil || ps.UsesParams()
}

// input builds the policy input for an operation in a session.
func (g *Gate) input(s *protocol.Session, op policy.Operation) *policy.Input {
	o, p := s.Conn.Origin, s.Conn.Process
	parents := make([]policy.Parent, 0, len(p.Parents))
	for _, pp := range p.Parents {
		parents = append(parents, policy.Parent{PID: pp.PID, Comm: pp.Comm, Exe: pp.Exe})
	}
	return &policy.Input{
		Identity: policy.Identity{
			Issuer:  s.Job.Identity.Issuer,
			Subject: s.Job.Identity.Subject,
			Claims:  s.Job.Identity.Claims,
			Job:     s.Job.ID,
			Cgroup:  s.Job.Cgroup,
			Expiry:  s.Job.Identity.Expiry,
		},
		Process: policy.Process{
			PID: p.PID, TID: p.TID, UID: p.UID, GID: p.GID,
			Comm: p.Comm, Exe: p.Exe, Cmdline: p.Cmdline,
			Verified: p.Verified, Parents: parents,
		},
		Target: policy.Target{
			Name: s.Target.Name, Protocol: s.Target.Protocol,
			Address: s.Target.Address, Labels: s.Target.Labels,
		},
		Connection: policy.Connection{
			ID: s.ID, Destination: o.Dst.String(), Family: o.Family, Mapped: o.Mapped,
		},
		Operation: op,
		Time:      g.cfg.Now(),
	}
}

func recordProcess(p intercept.Process) record.Process {
	out := record.Process{PID: p.PID, UID: p.UID, Exe: p.Exe, Cmdline: p.Cmdline, Comm: p.Comm}
	for _, pp := range p.Parents {
		out.Parents = append(out.Parents, record.Parent{PID: pp.PID, Comm: pp.Comm, Exe: pp.Exe})
	}
	return out
}

func label(target string) string {
	if target == "" {
		return "-"
	}
	return target
}

// isLoop reports whether dst is this daemon: the proxy port (a connection
// that would come straight back here) or one of its service ports (the API
// reviewers use, metrics), on a loopback or local address.
func (g *Gate) isLoop(dst netip.AddrPort) bool {
	if dst.Port() != g.cfg.Port && !slices.Contains(g.cfg.Reserved, dst.Port()) {
		return false
	}
	a := dst.Addr().Unmap()
	return a.IsLoopback() || a.IsUnspecified() || g.local.has(a)
}

// localAddrs caches the host's own addresses (from netlink).
type localAddrs struct {
	// mu guards addrs and at.
	mu    sync.Mutex
	addrs map[netip.Addr]bool
	at    time.Time
}

func (l *localAddrs) invalidate() {
	l.mu.Lock()
	l.at = time.Time{}
	l.mu.Unlock()
}

func (l *localAddrs) has(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) > 10*time.Second {
		l.addrs = map[netip.Addr]bool{}
		if list, err := netlink.AddrList(nil, netlink.FAMILY_ALL); err == nil {
			for _, na := range list {
				if ip, ok := netip.AddrFromSlice(na.IP); ok {
					l.addrs[ip.Unmap()] = true
				}
			}
		}
		l.at = time.Now()
	}
	return l.addrs[a]
}

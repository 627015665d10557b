package approval

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
)

// Status of a request.
type Status string

const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Denied    Status = "denied"
	Expired   Status = "expired"   // nobody decided before the deadline
	Cancelled Status = "cancelled" // the agent gave up (cancel, disconnect)
	Abandoned Status = "abandoned" // the daemon holding it restarted
)

// Errors reviewers get.
var (
	ErrNotFound     = errors.New("no such approval request")
	ErrNotPending   = errors.New("approval request is no longer pending")
	ErrSelfApproval = errors.New("an identity cannot decide its own request")
	ErrNotReviewer  = errors.New("not a reviewer for this request")
	ErrReason       = errors.New("a denial needs a reason")
)

// Request is a held request and, once decided, its outcome.
type Request struct {
	ID          string    `json:"id"`
	Status      Status    `json:"status"`
	Created     time.Time `json:"created"`
	Deadline    time.Time `json:"deadline"`
	Target      string    `json:"target"`
	Protocol    string    `json:"protocol"`
	Action      string    `json:"action"`
	Operation   string    `json:"operation"`
	Fingerprint string    `json:"fingerprint"`
	Reason      string    `json:"reason"`
	Reviewers   []string  `json:"reviewers"`
	Requester   string    `json:"requester"`
	Issuer      string    `json:"requester_issuer"`
	Job         string    `json:"job"`
	Conn        string    `json:"conn"`
	// Detail is what a reviewer needs to judge: the identity's claims,
	// the process (pid, exe, cmdline, parents), host, operation fields.
	Detail map[string]any `json:"detail"`

	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedIssuer string     `json:"decided_issuer,omitempty"`
	OutcomeReason string     `json:"outcome_reason,omitempty"`
	WindowUntil   *time.Time `json:"window_until,omitempty"`
}

// Store keeps requests durably. *SQL implements it.
type Store interface {
	Insert(ctx context.Context, r *Request, instance string) error
	Get(ctx context.Context, id string) (*Request, error)
	List(ctx context.Context, status Status, limit int) ([]*Request, error)
	// Decide records an outcome if the request is still pending; it
	// reports whether it was.
	Decide(ctx context.Context, id string, r *Request) (bool, error)
	// Window finds an unexpired window covering a request.
	Window(ctx context.Context, target, fingerprint, sub, iss string, now time.Time) (*Request, error)
	// Abandon marks pending requests of other instances abandoned.
	Abandon(ctx context.Context, instance string, now time.Time) ([]*Request, error)
	Event(ctx context.Context, id, event, actor string, detail map[string]any) error
}

// Notifier is told about new requests and decisions (webhooks). It must
// not block the caller.
type Notifier interface {
	Notify(r *Request)
}

// Config configures a Service.
type Config struct {
	Store Store
	// Instance names this daemon run (requests it held die with it).
	Instance string
	// DefaultTTL is the deadline when policy gives none (0: 15m); MaxTTL
	// caps any (0: 24h). MaxWindow caps a granted window (0: 24h).
	DefaultTTL, MaxTTL, MaxWindow time.Duration
	Host                          string
	Notifier                      Notifier // nil: none
	Log                           *slog.Logger
	Registerer                    prometheus.Registerer // nil: none
	Now                           func() time.Time      // nil: time.Now
}

// Service is the approval mechanism.
type Service struct {
	cfg     Config
	metrics *metrics

	// mu guards waiters and subs.
	mu      sync.Mutex
	waiters map[string]chan *Request
	subs    map[chan *Request]struct{}
}

// New starts the service and marks requests held by earlier daemon runs as
// abandoned (their connections are gone).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Instance == "" || cfg.Log == nil {
		return nil, errors.New("approval: store, instance and logger are required")
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = 15 * time.Minute
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.MaxWindow == 0 {
		cfg.MaxWindow = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, metrics: m, waiters: map[string]chan *Request{}, subs: map[chan *Request]struct{}{}}
	gone, err := cfg.Store.Abandon(ctx, cfg.Instance, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("abandon requests of earlier runs: %w", err)
	}
	for _, r := range gone {
		s.metrics.decisions.WithLabelValues(string(Abandoned)).Inc()
		cfg.Log.Info("approval request abandoned: its connection ended with the previous daemon", "approval", r.ID)
		s.announce(r)
	}
	return s, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "apr-" + idEncoding.EncodeToString(b)
}

// Hold is protocol.Session.Approve for session s: it records the request,
// announces it and waits for a verdict, the deadline or ctx.
func (s *Service) Hold(ctx context.Context, ps *protocol.Session, op policy.Operation, d policy.Decision) (protocol.Verdict, error) {
	now := s.cfg.Now()
	ttl := d.Approval.TTL
	if ttl <= 0 {
		ttl = s.cfg.DefaultTTL
	}
	ttl = min(ttl, s.cfg.MaxTTL)
	if len(d.Approval.Reviewers) == 0 {
		return protocol.Verdict{Reviewer: "sluice", Reason: "policy requires approval but names no reviewer group"}, nil
	}
	r := &Request{
		ID: newID(), Status: Pending, Created: now.UTC(), Deadline: now.Add(ttl).UTC(),
		Target: ps.Target.Name, Protocol: op.Protocol, Action: op.Action,
		Operation: operationText(op), Fingerprint: fingerprint(op),
		Reason: d.Approval.Reason, Reviewers: slices.Clone(d.Approval.Reviewers),
		Requester: ps.Job.Identity.Subject, Issuer: ps.Job.Identity.Issuer,
		Job: ps.Job.ID, Conn: ps.ID,
		Detail: detail(ps, op, s.cfg.Host),
	}
	sort.Strings(r.Reviewers)
	if r.Reason == "" {
		r.Reason = d.Reason()
	}
	// A window granted earlier covers this request without asking again.
	if w, err := s.cfg.Store.Window(ctx, r.Target, r.Fingerprint, r.Requester, r.Issuer, now); err != nil {
		return protocol.Verdict{}, fmt.Errorf("look up approval windows: %w", err)
	} else if w != nil {
		_ = s.cfg.Store.Event(ctx, w.ID, "window-used", "sluice", map[string]any{"conn": r.Conn, "operation": r.Operation})
		s.metrics.decisions.WithLabelValues("window").Inc()
		s.cfg.Log.Info("request approved by a standing window", "approval", w.ID, "by", w.DecidedBy, "until", w.WindowUntil)
		return protocol.Verdict{Approved: true, Reviewer: w.DecidedBy, Reason: "window granted in " + w.ID, ApprovalID: w.ID}, nil
	}

	wait := make(chan *Request, 1)
	s.mu.Lock()
	s.waiters[r.ID] = wait
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, r.ID)
		s.mu.Unlock()
	}()
	if err := s.cfg.Store.Insert(ctx, r, s.cfg.Instance); err != nil {
		return protocol.Verdict{}, fmt.Errorf("record approval request: %w", err)
	}
	_ = s.cfg.Store.Event(ctx, r.ID, "requested", r.Requester, map[string]any{"operation": r.Operation, "reason": r.Reason})
	s.metrics.pending.Inc()
	defer s.metrics.pending.Dec()
	s.cfg.Log.Info("request held for approval", "approval", r.ID, "target", r.Target, "requester", r.Requester, "reviewers", r.Reviewers)
	s.announce(r)

	timer := time.NewTimer(r.Deadline.Sub(now))
	defer timer.Stop()
	var end *Request
	select {
	case end = <-wait:
	case <-timer.C:
		end = s.finish(r, Expired, "no reviewer decided before the deadline")
	case <-ctx.Done():
		end = s.finish(r, Cancelled, "the agent cancelled the request or went away")
	}
	if end == nil {
		// A decision won the race with the deadline or the cancel.
		end = <-wait
	}
	s.metrics.wait.Observe(s.cfg.Now().Sub(now).Seconds())
	v := protocol.Verdict{Approved: end.Status == Approved, Reviewer: end.DecidedBy, Reason: end.OutcomeReason, ApprovalID: r.ID}
	switch end.Status {
	case Expired:
		v.Reason = "approval timed out"
	case Cancelled:
		return v, ctx.Err()
	}
	return v, nil
}

// finish ends a request without a reviewer; nil means it was no longer
// pending (a reviewer decided at the same moment).
func (s *Service) finish(r *Request, st Status, why string) *Request {
	now := s.cfg.Now().UTC()
	out := *r
	out.Status, out.DecidedAt, out.DecidedBy, out.OutcomeReason = st, &now, "sluice", why
	ok, err := s.cfg.Store.Decide(context.Background(), r.ID, &out)
	if err != nil {
		s.cfg.Log.Error("record approval outcome", "approval", r.ID, "err", err)
		// Fail closed: the request is not approved, whatever the store
		// now says.
		return &out
	}
	if !ok {
		return nil
	}
	_ = s.cfg.Store.Event(context.Background(), r.ID, string(st), "sluice", map[string]any{"reason": why})
	s.metrics.decisions.WithLabelValues(string(st)).Inc()
	s.cfg.Log.Info("approval request "+string(st), "approval", r.ID, "reason", why)
	s.announce(&out)
	return &out
}

// Decision is a reviewer's answer.
type Decision struct {
	Approve bool
	Reason  string
	// Window, when approving, also approves the same statement by the
	// same identity on the same target until now+Window.
	Window time.Duration
}

// Decide records a reviewer's decision on a pending request and releases
// its connection.
func (s *Service) Decide(ctx context.Context, id string, reviewer identity.Identity, dec Decision) (*Request, error) {
	r, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != Pending {
		return r, fmt.Errorf("%w (%s)", ErrNotPending, r.Status)
	}
	if reviewer.Subject == r.Requester && reviewer.Issuer == r.Issuer {
		s.metrics.refusals.WithLabelValues("self").Inc()
		return nil, ErrSelfApproval
	}
	if !slices.ContainsFunc(reviewer.Groups(), func(g string) bool { return slices.Contains(r.Reviewers, g) }) {
		s.metrics.refusals.WithLabelValues("group").Inc()
		return nil, fmt.Errorf("%w: it needs a member of %s", ErrNotReviewer, strings.Join(r.Reviewers, " or "))
	}
	if !dec.Approve && strings.TrimSpace(dec.Reason) == "" {
		return nil, ErrReason
	}
	now := s.cfg.Now().UTC()
	out := *r
	out.Status = Denied
	if dec.Approve {
		out.Status = Approved
	}
	out.DecidedAt, out.DecidedBy, out.DecidedIssuer, out.OutcomeReason = &now, reviewer.Subject, reviewer.Issuer, dec.Reason
	if dec.Approve && dec.Window > 0 {
		until := now.Add(min(dec.Window, s.cfg.MaxWindow))
		out.WindowUntil = &until
	}
	ok, err := s.cfg.Store.Decide(ctx, id, &out)
	if err != nil {
		return nil, err
	}
	if !ok {
		cur, _ := s.cfg.Store.Get(ctx, id)
		return cur, ErrNotPending
	}
	_ = s.cfg.Store.Event(ctx, id, string(out.Status), reviewer.Subject, map[string]any{
		"reason": dec.Reason, "issuer": reviewer.Issuer, "window_until": out.WindowUntil,
	})
	s.metrics.decisions.WithLabelValues(string(out.Status)).Inc()
	s.cfg.Log.Info("approval request "+string(out.Status), "approval", id, "reviewer", reviewer.Subject, "reason", dec.Reason)
	s.mu.Lock()
	w := s.waiters[id]
	s.mu.Unlock()
	if w != nil {
		select {
		case w <- &out:
		default:
		}
	}
	s.announce(&out)
	return &out, nil
}

// Get returns one request.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	return s.cfg.Store.Get(ctx, id)
}

// List returns requests with the given status ("" for all), newest first.
func (s *Service) List(ctx context.Context, st Status, limit int) ([]*Request, error) {
	return s.cfg.Store.List(ctx, st, limit)
}

// Subscribe returns a channel of request changes (new, decided) and a
// function to stop. Slow subscribers miss events rather than slow the
// service; the event stream tells pages to refresh.
func (s *Service) Subscribe() (<-chan *Request, func()) {
	ch := make(chan *Request, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Service) announce(r *Request) {
	s.mu.Lock()
	for ch := range s.subs {
		select {
		case ch <- r:
		default:
		}
	}
	s.mu.Unlock()
	if s.cfg.Notifier != nil {
		s.cfg.Notifier.Notify(r)
	}
}

// operationText is the text a reviewer reads: the statement as the agent
// sent it when the handler has it, else the normalized form.
func operationText(op policy.Operation) string {
	for _, k := range []string{"text", "statement", "resource"} {
		if v, ok := op.Fields[k].(string); ok && v != "" {
			return v
		}
	}
	return op.Action + " " + op.Resource
}

func fingerprint(op policy.Operation) string {
	if v, ok := op.Fields["fingerprint"].(string); ok && v != "" {
		return v
	}
	return op.Key
}

func detail(ps *protocol.Session, op policy.Operation, host string) map[string]any {
	p := ps.Conn.Process
	parents := make([]any, 0, len(p.Parents))
	for _, pp := range p.Parents {
		parents = append(parents, map[string]any{"pid": pp.PID, "comm": pp.Comm, "exe": pp.Exe})
	}
	fields := map[string]any{}
	for k, v := range op.Fields {
		if k != "params" {
			fields[k] = v
		}
	}
	return map[string]any{
		"host": host,
		"identity": map[string]any{
			"subject": ps.Job.Identity.Subject, "issuer": ps.Job.Identity.Issuer,
			"claims": ps.Job.Identity.Claims, "job": ps.Job.ID,
		},
		"process": map[string]any{
			"pid": p.PID, "uid": p.UID, "comm": p.Comm, "exe": p.Exe, "cmdline": p.Cmdline,
			"verified": p.Verified, "parents": parents,
		},
		"destination": ps.Conn.Origin.Dst.String(),
		"operation":   fields,
	}
}

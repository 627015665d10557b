package approval

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/store"
	"github.com/sluice-gate/sluice/pkg/target"
)

func openStore(t *testing.T) (*store.Store, string) { return openStoreTB(t) }

func openStoreTB(t testing.TB) (*store.Store, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sluice.db")
	st, err := store.OpenSQLite(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, file
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newService(t *testing.T, st *store.Store, instance string) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{Store: &SQL{DB: st.DB}, Instance: instance, Log: slog.New(slog.DiscardHandler), Host: "runner-1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func session(sub string) *protocol.Session {
	set, _ := target.NewSet(context.Background(), []config.Target{{Name: "orders", Address: "198.18.0.2:5432", Protocol: "postgres"}}, nil)
	s := &protocol.Session{ID: "conn-1", Target: set.All()[0],
		Job: job.Binding{ID: "job-a", Identity: identity.Identity{Subject: sub, Issuer: "http://iss", Expiry: time.Now().Add(time.Hour)}}}
	s.Conn.Process.PID = 42
	s.Conn.Process.Exe = "/usr/bin/psql"
	return s
}

func ddl(text string) (policy.Operation, policy.Decision) {
	op := policy.Operation{Protocol: "postgres", Action: "query", Fields: map[string]any{"text": text, "fingerprint": "fp-" + text}}
	d := policy.Decision{Allow: true, Approval: policy.Approval{Required: true, Reviewers: []string{"reviewers"}, TTL: time.Minute, Reason: "DDL on production"}}
	return op, d
}

func reviewer(sub string, groups ...string) identity.Identity {
	g := make([]any, len(groups))
	for i, x := range groups {
		g[i] = x
	}
	return identity.Identity{Subject: sub, Issuer: "http://iss", Claims: map[string]any{"groups": g}, Expiry: time.Now().Add(time.Hour)}
}

// hold starts Hold in the background and waits until the request is in the
// store.
func hold(t *testing.T, s *Service, ctx context.Context, sess *protocol.Session, text string) (string, chan error, chan protocol.Verdict) {
	t.Helper()
	ch, stop := s.Subscribe()
	defer stop()
	errc := make(chan error, 1)
	vc := make(chan protocol.Verdict, 1)
	op, d := ddl(text)
	go func() {
		v, err := s.Hold(ctx, sess, op, d)
		vc <- v
		errc <- err
	}()
	select {
	case r := <-ch:
		return r.ID, errc, vc
	case <-time.After(5 * time.Second):
		t.Fatal("request never announced")
		return "", nil, nil
	}
}

func TestApproveAndDeny(t *testing.T) {
	st, _ := openStore(t)
	s := newService(t, st, "one")
	ctx := context.Background()

	id, errc, vc := hold(t, s, ctx, session("build-1"), "CREATE TABLE a (i int)")
	r, err := s.Get(ctx, id)
	if err != nil || r.Status != Pending || r.Operation != "CREATE TABLE a (i int)" || r.Requester != "build-1" {
		t.Fatalf("pending request = %+v, %v", r, err)
	}
	if p, _ := r.Detail["process"].(map[string]any); p["exe"] != "/usr/bin/psql" {
		t.Errorf("request detail lacks the process: %+v", r.Detail)
	}
	if _, err := s.Decide(ctx, id, reviewer("build-1", "reviewers"), Decision{Approve: true}); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("self-approval: %v", err)
	}
	if _, err := s.Decide(ctx, id, reviewer("mallory", "ci"), Decision{Approve: true}); !errors.Is(err, ErrNotReviewer) {
		t.Errorf("approval by a non-reviewer: %v", err)
	}
	if _, err := s.Decide(ctx, id, reviewer("alice", "reviewers"), Decision{Approve: false}); !errors.Is(err, ErrReason) {
		t.Errorf("denial without a reason: %v", err)
	}
	start := time.Now()
	if _, err := s.Decide(ctx, id, reviewer("alice", "reviewers"), Decision{Approve: true, Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	v := <-vc
	if err := <-errc; err != nil || !v.Approved || v.Reviewer != "alice" {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("decision took %s to reach the held request", d)
	}
	if _, err := s.Decide(ctx, id, reviewer("bob", "reviewers"), Decision{Approve: false, Reason: "late"}); !errors.Is(err, ErrNotPending) {
		t.Errorf("second decision: %v", err)
	}

	id, errc, vc = hold(t, s, ctx, session("build-1"), "DROP INDEX x")
	if _, err := s.Decide(ctx, id, reviewer("bob", "reviewers"), Decision{Approve: false, Reason: "not now"}); err != nil {
		t.Fatal(err)
	}
	v = <-vc
	if err := <-errc; err != nil || v.Approved || v.Reviewer != "bob" || v.Reason != "not now" {
		t.Fatalf("denied verdict %+v, %v", v, err)
	}
	events, _ := (&SQL{DB: st.DB}).Events(ctx, id)
	if strings.Join(events, ",") != "requested:build-1,denied:bob" {
		t.Errorf("events %v", events)
	}
}

func TestExpiryAndCancel(t *testing.T) {
	st, _ := openStore(t)
	s := newService(t, st, "one")
	op, d := ddl("CREATE TABLE slow (i int)")
	d.Approval.TTL = 200 * time.Millisecond
	v, err := s.Hold(context.Background(), session("build-1"), op, d)
	if err != nil || v.Approved || v.Reason != "approval timed out" {
		t.Fatalf("expired: %+v, %v", v, err)
	}
	rs, _ := s.List(context.Background(), Expired, 10)
	if len(rs) != 1 {
		t.Fatalf("expired requests: %d", len(rs))
	}

	ctx, cancel := context.WithCancel(context.Background())
	id, errc, _ := hold(t, s, ctx, session("build-1"), "CREATE TABLE gone (i int)")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled hold: %v", err)
	}
	if r, _ := s.Get(context.Background(), id); r.Status != Cancelled {
		t.Errorf("status after cancel: %s", r.Status)
	}
}

func TestWindow(t *testing.T) {
	st, _ := openStore(t)
	s := newService(t, st, "one")
	ctx := context.Background()
	id, _, vc := hold(t, s, ctx, session("build-1"), "ALTER TABLE t ADD c int")
	if _, err := s.Decide(ctx, id, reviewer("alice", "reviewers"), Decision{Approve: true, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	<-vc
	// The same statement by the same identity passes without asking.
	op, d := ddl("ALTER TABLE t ADD c int")
	v, err := s.Hold(ctx, session("build-1"), op, d)
	if err != nil || !v.Approved || v.Reviewer != "alice" {
		t.Fatalf("within the window: %+v, %v", v, err)
	}
	// Another identity, or another statement, asks again.
	d.Approval.TTL = 100 * time.Millisecond
	if v, _ := s.Hold(ctx, session("build-2"), op, d); v.Approved {
		t.Error("window covered another identity")
	}
	op2, d2 := ddl("DROP TABLE t")
	d2.Approval.TTL = 100 * time.Millisecond
	if v, _ := s.Hold(ctx, session("build-1"), op2, d2); v.Approved {
		t.Error("window covered another statement")
	}
}

// TestAbandonedAfterRestart: a request held by a daemon that is gone is
// shown as abandoned by the next one, and kept.
func TestAbandonedAfterRestart(t *testing.T) {
	st, file := openStore(t)
	s := newService(t, st, "first")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, _, _ := hold(t, s, ctx, session("build-1"), "CREATE TABLE held (i int)")
	// A second daemon opens the same store.
	st2, err := store.OpenSQLite(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	s2 := newService(t, st2, "second")
	r, err := s2.Get(context.Background(), id)
	if err != nil || r.Status != Abandoned || r.Operation != "CREATE TABLE held (i int)" {
		t.Fatalf("after restart: %+v, %v", r, err)
	}
}

func TestWebhookRetries(t *testing.T) {
	var calls atomic.Int32
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got <- string(b)
	}))
	defer srv.Close()
	sent, _ := NotificationCounter(nil)
	wh := &Webhook{URL: srv.URL, PageURL: "http://127.0.0.1:15002/approvals/", Log: slog.New(slog.DiscardHandler), Backoff: 10 * time.Millisecond, Sent: sent}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wh.Run(ctx)
	wh.Notify(&Request{ID: "apr-x", Status: Pending, Target: "orders", Requester: "build-1", Operation: "DROP TABLE t", Reviewers: []string{"reviewers"}})
	select {
	case body := <-got:
		if !strings.Contains(body, `"text":"sluice: build-1 wants to run on orders`) || !strings.Contains(body, "approvals/#apr-x") {
			t.Errorf("webhook body %s", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("webhook not retried")
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2 (one failure, one retry)", calls.Load())
	}
}

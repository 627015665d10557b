package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/target"
	"github.com/sluice-gate/sluice/policies"
	"github.com/sluice-gate/sluice/test/testenv"
	"github.com/sluice-gate/sluice/test/testhost"
)

// reviewer is an in-test approval service: every held statement is sent
// to requests, and waits for a verdict.
type reviewer struct {
	requests chan policy.Operation
	verdicts chan protocol.Verdict
}

func (r *reviewer) approve(ctx context.Context, op policy.Operation, _ policy.Decision) (protocol.Verdict, error) {
	select {
	case r.requests <- op:
	case <-ctx.Done():
		return protocol.Verdict{}, ctx.Err()
	}
	select {
	case v := <-r.verdicts:
		return v, nil
	case <-ctx.Done():
		return protocol.Verdict{}, ctx.Err()
	}
}

// TestApprovalHold drives the handler directly (no kernel steering) against
// a real PostgreSQL server, with the shipped policy on a production
// target: DDL is held until the in-test reviewer decides, and runs exactly
// once when approved.
func TestApprovalHold(t *testing.T) {
	testenv.Netns(t)
	if _, err := testhost.PostgresBin(); err != nil {
		t.Skip(err)
	}
	testhost.CleanupStale("slh")
	host, err := testhost.New("slh", 41)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pg, err := testhost.StartPostgres(host, filepath.Join(dir, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	for _, sql := range []string{"CREATE ROLE app LOGIN PASSWORD 'app-secret'", "CREATE DATABASE app OWNER app"} {
		if _, err := pg.Psql("postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("app-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := host.Addr4.String() + ":5432"
	set, err := target.NewSet(context.Background(), []config.Target{{
		Name: "db", Address: addr, Protocol: "postgres", Labels: map[string]string{"env": "production"},
		Credentials: config.Credentials{Username: "app", PasswordFile: pwFile},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.LoadFS(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	rv := &reviewer{requests: make(chan policy.Operation), verdicts: make(chan protocol.Verdict)}
	h := newTestHandler(t)
	session := func() *protocol.Session {
		s := &protocol.Session{
			ID: "t", Log: slog.New(slog.DiscardHandler), Target: set.All()[0],
			Job: job.Binding{ID: "job-test", Identity: identity.Identity{Subject: "agent", Expiry: time.Now().Add(time.Hour)}},
		}
		s.Conn.Origin.Dst = mustAddrPort(addr)
		ps, err := engine.NewSession(&policy.Input{
			Identity: policy.Identity{Subject: "agent", Claims: map[string]any{"groups": []any{"ci"}}},
			Target:   policy.Target{Name: "db", Protocol: "postgres", Address: addr, Labels: map[string]string{"env": "production"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Authorize = func(ctx context.Context, op policy.Operation) (policy.Decision, error) {
			return ps.Evaluate(ctx, op, time.Now())
		}
		s.Approve = rv.approve
		s.Dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
		return s
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h.Serve(ctx, session(), c)
		}
	}()
	connect := func() *pgx.Conn {
		cfg, err := pgx.ParseConfig("postgres://agent@" + ln.Addr().String() + "/app?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	exec := func(c *pgx.Conn, qctx context.Context, sql string) chan error {
		done := make(chan error, 1)
		go func() { _, err := c.Exec(qctx, sql); done <- err }()
		return done
	}

	t.Run("approved runs once", func(t *testing.T) {
		c := connect()
		defer c.Close(ctx)
		done := exec(c, ctx, "CREATE TABLE approved (i int)")
		op := <-rv.requests
		if op.Fields["command"] != "CREATE TABLE" {
			t.Errorf("held operation %+v", op.Fields)
		}
		select {
		case err := <-done:
			t.Fatalf("statement finished before a verdict: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		rv.verdicts <- protocol.Verdict{Approved: true, Reviewer: "alice"}
		if err := <-done; err != nil {
			t.Fatalf("approved statement: %v", err)
		}
		if n, _ := pg.Psql("app", "SELECT count(*) FROM pg_class WHERE relname = 'approved'"); n != "1" {
			t.Errorf("approved table exists %s times", n)
		}
		// The next DDL needs its own approval.
		done = exec(c, ctx, "CREATE TABLE second (i int)")
		<-rv.requests
		rv.verdicts <- protocol.Verdict{Approved: false, Reviewer: "bob", Reason: "not today"}
		var pe *pgconn.PgError
		if err := <-done; !errors.As(err, &pe) || pe.Code != "42501" || pe.Message != "sluice: denied by bob: not today" {
			t.Fatalf("denied statement: %v", err)
		}
	})

	t.Run("cancel while held", func(t *testing.T) {
		c := connect()
		defer c.Close(ctx)
		qctx, qcancel := context.WithCancel(ctx)
		done := exec(c, qctx, "CREATE INDEX ON approved (i)")
		<-rv.requests
		qcancel() // pgx sends a CancelRequest on a new connection
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "cancel") {
			t.Fatalf("cancelled hold: %v", err)
		}
		if n, _ := pg.Psql("app", "SELECT count(*) FROM pg_indexes WHERE tablename = 'approved'"); n != "0" {
			t.Errorf("index created after cancel: %s", n)
		}
	})
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

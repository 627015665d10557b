package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
	"github.com/sluice-gate/sluice/pkg/record"
)

// conn is one agent session relayed to the target.
type conn struct {
	h   *Handler
	s   *protocol.Session
	log *slog.Logger

	client net.Conn
	be     *pgproto3.Backend
	up     net.Conn
	fe     *pgproto3.Frontend

	database string
	key      cancelKey
	// poison is a statement that fails at parse analysis (a relation that
	// cannot exist). A refused request is replaced by it, so the target
	// fails the request at the same point in the stream and leaves its
	// transaction state exactly as a refusal should.
	poison string

	q queue

	// Owned by the client→target direction.
	stmts     map[string]*prepared
	portals   map[string]*portal
	sqlNamed  map[string]*pgsql.Statement // SQL-level PREPARE name → statement
	copyBytes int
	maskers   *mask.Cache

	// scs and encoding are the server's standard_conforming_strings and
	// client_encoding, as its ParameterStatus messages report them.
	// Statements are classified by a parser that reads them as
	// PostgreSQL does with "on" and UTF8; with other settings the server
	// could read a statement differently (a backslash ending a string), so
	// sluice refuses to judge statements until they are back.
	scs, encoding atomic.Value
	// barrier: the last statement may have changed how the server parses
	// (it was opaque, or set one of the settings above); wait for its
	// results, and the ParameterStatus they bring, before reading on.
	barrier bool

	// recent is the masker of the latest decision, for messages that
	// answer no particular request (notifications, notices).
	recent atomic.Pointer[mask.Masker]

	// holdMu guards holdCancel: the cancel of an approval in progress.
	holdMu     sync.Mutex
	holdCancel context.CancelFunc

	// Owned by the target→client direction.
	skipping bool
	copyOut  *copyPlan
	// masked totals what masking did in the session, for metrics.
	masked map[string]uint64
}

// prepared is a named (or the unnamed) prepared statement.
type prepared struct {
	name       string
	text       string
	statements []pgsql.Statement
	// refused: the Parse was refused (the target holds the poison).
	refused   *refusal
	described bool // the agent asked for Describe(S)
	// desc is the statement's row description (text formats); written
	// and read by the target→client direction only.
	desc []pgproto3.FieldDescription
}

// portal is a bound statement.
type portal struct {
	name      string
	stmt      *prepared
	formats   []int16
	params    []any
	described bool
	desc      []pgproto3.FieldDescription // target→client direction only
}

// open completes the start-up: policy on the connection itself, the
// upstream login, and the agent's AuthenticationOk. It returns a refusal
// for anything the agent should be told.
func (h *Handler) open(ctx context.Context, s *protocol.Session, st *startup) (*conn, error) {
	p := st.msg.Parameters
	if v, ok := p["replication"]; ok && v != "false" && v != "off" && v != "0" && v != "no" {
		return nil, fatalf(codeFeatureNotSupported, "replication connections are not allowed through sluice")
	}
	user := p["user"]
	if user == "" {
		return nil, fatalf(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	database := p["database"]
	if database == "" {
		database = user
	}
	op := policy.Operation{
		Protocol: "postgres", Action: "connect", Resource: database,
		Fields: map[string]any{"database": database, "user": user, "application_name": p["application_name"], "tls": st.tls},
		Key:    "connect\x00" + database + "\x00" + user,
	}
	d, err := s.Authorize(ctx, op)
	var r *refusal
	switch {
	case err != nil:
		r = fatalf(codeInsufficientPrivilege, "policy error: %v", err)
	case !d.Allowed():
		r = &refusal{code: codeInsufficientPrivilege, message: "sluice: " + d.Reason(), fatal: true}
	}
	dec := record.Decision{Allowed: r == nil, Reasons: d.Deny}
	if r != nil && len(dec.Reasons) == 0 {
		dec.Reasons = []string{r.message}
	}
	req, rerr := s.Rec.Request(record.Request{Action: "connect", Operation: op.Fields, Decision: dec})
	if r != nil {
		_ = s.Rec.Refusal(record.Refusal{Stage: record.StageConnect, Outcome: "denied", Reason: r.message, Request: req})
		return nil, r
	}
	if rerr != nil {
		return nil, fatalf(codeInsufficientPrivilege, "the session cannot be recorded; refused")
	}
	hj, err := connectUpstream(ctx, s, database, p, h.cfg.MaxServerMessage)
	if err != nil {
		s.Log.Warn("postgres upstream login failed", "database", database, "err", err)
		return nil, upstreamFailure(s.Target.Name, err)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	c := &conn{
		h: h, s: s, log: s.Log.With("database", database),
		client: st.conn, be: st.backend,
		up: hj.Conn, fe: hj.Frontend,
		database: database,
		poison:   fmt.Sprintf(`SELECT 1 FROM "sluice"."refused_%s"`, hex.EncodeToString(rnd[:])),
		stmts:    map[string]*prepared{},
		portals:  map[string]*portal{},
		sqlNamed: map[string]*pgsql.Statement{},
		maskers:  mask.NewCache(h.cfg.MaskKey),
		masked:   map[string]uint64{},
	}
	c.fe.SetMaxBodyLen(h.cfg.MaxServerMessage)
	c.scs.Store(hj.ParameterStatuses["standard_conforming_strings"])
	c.encoding.Store(hj.ParameterStatuses["client_encoding"])
	if !c.parsingSafe() {
		hj.Conn.Close()
		return nil, fatalf(codeFeatureNotSupported, "sluice requires standard_conforming_strings=on and client_encoding=UTF8 (the session has %v and %v)", c.scs.Load(), c.encoding.Load())
	}
	c.key = h.cancels.add(hj.PID, &cancelTarget{
		job: s.Job.ID, pid: hj.PID, secret: hj.SecretKey,
		send: func(pid uint32, secret []byte) error { return sendCancel(context.Background(), s, pid, secret) },
		hold: c.cancelHold,
	})

	if st.msg.ProtocolVersion != pgproto3.ProtocolVersion30 || len(st.unsupported) > 0 {
		c.be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: st.unsupported})
	}
	c.be.Send(&pgproto3.AuthenticationOk{})
	names := make([]string, 0, len(hj.ParameterStatuses))
	for k := range hj.ParameterStatuses {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c.be.Send(&pgproto3.ParameterStatus{Name: k, Value: hj.ParameterStatuses[k]})
	}
	c.be.Send(&pgproto3.BackendKeyData{ProcessID: c.key.pid, SecretKey: c.key.secret[:]})
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: hj.TxStatus})
	if err := c.be.Flush(); err != nil {
		c.close()
		return nil, err
	}
	c.log.Info("postgres session started", "tls", st.tls, "agent_user", user)
	_ = s.Rec.Note(fmt.Sprintf("postgres session: database %s, agent user %s, agent TLS %v, upstream TLS %v, server %s",
		database, user, st.tls, hj.TLSConfig != nil, hj.ParameterStatuses["server_version"]))
	return c, nil
}

func (c *conn) close() {
	for rule, n := range c.masked {
		c.h.metrics.masked.WithLabelValues("postgres", c.s.Target.Name, rule).Add(float64(n))
	}
	c.h.cancels.remove(c.key)
	c.up.Close()
	c.client.Close()
}

func (c *conn) lastMasker() *mask.Masker { return c.recent.Load() }

// parsingSafe reports whether the server reads statements the way sluice's
// parser does.
func (c *conn) parsingSafe() bool {
	scs, _ := c.scs.Load().(string)
	enc, _ := c.encoding.Load().(string)
	return scs == "on" && (enc == "UTF8" || enc == "UNICODE")
}

// cancelHold ends an approval wait, if one is in progress (the agent sent
// a cancel request while its statement was held).
func (c *conn) cancelHold() {
	c.holdMu.Lock()
	if c.holdCancel != nil {
		c.holdCancel()
	}
	c.holdMu.Unlock()
}

// run relays until either side ends.
func (c *conn) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.up.Close(); c.client.Close() })
	defer stop()
	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		serverErr = c.fromServer()
		// The target is gone: so is the agent's session.
		c.client.Close()
	}()
	clientErr := c.fromClient(ctx)
	c.up.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	var r *refusal
	if errors.As(clientErr, &r) {
		// Already sent to the agent.
		return nil
	}
	return errors.Join(ignoreEOF(clientErr), ignoreEOF(serverErr))
}

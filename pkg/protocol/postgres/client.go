package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
)

// fromClient reads the agent's messages, decides on every statement and
// forwards (or replaces) them, in order.
func (c *conn) fromClient(ctx context.Context) error {
	for {
		if c.barrier {
			if err := c.waitDrained(ctx); err != nil {
				return err
			}
		}
		msg, err := c.be.Receive()
		if err != nil {
			var big *pgproto3.ExceededMaxBodyLenErr
			if errors.As(err, &big) {
				r := fatalf(codeProgramLimitExceeded, "message of %d bytes exceeds the limit of %d", big.ActualBodyLen, big.MaxExpectedBodyLen)
				c.sendClient(r.response())
				return r
			}
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			err = c.query(ctx, m)
		case *pgproto3.Parse:
			err = c.parse(ctx, m)
		case *pgproto3.Bind:
			c.bind(m)
		case *pgproto3.Describe:
			c.describe(m)
		case *pgproto3.Execute:
			err = c.execute(ctx, m)
		case *pgproto3.Close:
			c.closeObject(m)
		case *pgproto3.Sync:
			c.q.push(&pending{kind: kSync})
			c.fe.Send(m)
			err = c.fe.Flush()
		case *pgproto3.Flush:
			c.fe.Send(m)
			err = c.fe.Flush()
		case *pgproto3.CopyData:
			// COPY FROM STDIN data goes to the target unchanged (the
			// COPY statement itself was judged); it is sent in chunks.
			c.fe.Send(m)
			if c.copyBytes += len(m.Data); c.copyBytes >= copyFlushSize {
				c.copyBytes = 0
				err = c.fe.Flush()
			}
		case *pgproto3.CopyDone, *pgproto3.CopyFail:
			c.copyBytes = 0
			c.fe.Send(m)
			err = c.fe.Flush()
		case *pgproto3.FunctionCall:
			// The fast-path function call interface runs a function by
			// OID, beyond any statement policy could see: refuse it the
			// way a refused simple query is refused.
			err = c.refuseQuery(denied("the function call protocol is not allowed; use SELECT"))
		case *pgproto3.Terminate:
			c.fe.Send(m)
			_ = c.fe.Flush()
			return nil
		default:
			r := fatalf(codeProtocolViolation, "unexpected message %T", msg)
			c.sendClient(r.response())
			return r
		}
		if err != nil {
			return err
		}
	}
}

// sendClient writes a message to the agent from the client direction
// (only for fatal errors: all other traffic to the agent flows from the
// server direction, which owns the agent's write side).
func (c *conn) sendClient(m pgproto3.BackendMessage) {
	buf, err := m.Encode(nil)
	if err == nil {
		_, _ = c.client.Write(buf)
	}
}

// copyFlushSize is how much COPY data is buffered before it is sent.
const copyFlushSize = 256 << 10

// waitDrained waits until the target has answered everything pending
// (a Flush makes it send what it has), so that settings a statement
// changed are known before the next statement is read.
func (c *conn) waitDrained(ctx context.Context) error {
	c.barrier = false
	c.fe.Send(&pgproto3.Flush{})
	if err := c.fe.Flush(); err != nil {
		return err
	}
	select {
	case <-c.q.drained():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errUnsafeParsing refuses statements while the server would read them
// differently from sluice.
var errUnsafeParsing = &refusal{code: codeFeatureNotSupported,
	message: "sluice: statements are refused while standard_conforming_strings is not on or client_encoding is not UTF8"}

// classify parses sql, through the cache.
func (c *conn) classify(sql string) ([]pgsql.Statement, error) {
	if !c.parsingSafe() {
		return nil, errUnsafeParsing
	}
	return c.h.classes.parse(sql)
}

// parsingSettings are the settings whose change would make the server
// read statements differently from sluice's parser.
var parsingSettings = map[string]bool{"standard_conforming_strings": true, "client_encoding": true, "all": true, "": true}

// mayChangeParsing reports whether running st may change how the server
// parses what follows.
func mayChangeParsing(st *pgsql.Statement) bool {
	return st.Opaque || (st.Kind == pgsql.KindSet && parsingSettings[strings.ToLower(st.Setting)])
}

// decide asks policy about one statement. SQL-level EXECUTE is judged by
// the statement it runs.
func (c *conn) decide(ctx context.Context, action string, st *pgsql.Statement, params []any) (policy.Decision, policy.Operation, error) {
	target := st
	if st.Kind == "execute" && st.Prepared != "" {
		if inner, ok := c.sqlNamed[st.Prepared]; ok {
			target = inner
		}
	}
	op := operation(action, c.database, target)
	if target != st {
		op.Fields["via_execute"] = st.Prepared
		op.Key += "\x00via:" + st.Prepared
	}
	if st.Kind == "execute" && target == st {
		// EXECUTE of a name this session never prepared (through
		// sluice): nobody can say what it runs.
		op.Fields["opaque"] = true
		op.Key += "\x00unknown"
	}
	if params != nil {
		op.Fields["params"] = params
	}
	d, err := c.s.Authorize(ctx, op)
	return d, op, err
}

// judge decides every statement and returns the first refusal, the
// approvals needed, and the maskers per statement.
func (c *conn) judge(ctx context.Context, action string, stmts []pgsql.Statement, params []any) (*refusal, []heldOp, []*mask.Masker) {
	start := time.Now()
	defer func() { c.h.metrics.decide.Observe(time.Since(start).Seconds()) }()
	var holds []heldOp
	maskers := make([]*mask.Masker, len(stmts))
	for i := range stmts {
		if st := &stmts[i]; st.Kind == pgsql.KindSet && st.Opaque && (st.Setting == "standard_conforming_strings" || st.Setting == "client_encoding") {
			// Whatever policy says: sluice could no longer read the
			// session's statements as the server does.
			return denied("changing " + st.Setting + " away from on/UTF8 is not allowed through sluice"), nil, nil
		}
		d, op, err := c.decide(ctx, action, &stmts[i], params)
		if err != nil {
			c.log.Error("policy error", "err", err)
			return denied("policy error; refused"), nil, nil
		}
		if len(d.Deny) > 0 || !d.Allow {
			c.count("denied")
			c.logDecision("refused", &stmts[i], d.Reason())
			return denied(d.Reason()), nil, nil
		}
		m, err := c.masker(d)
		if err != nil {
			c.log.Error("policy mask rules", "err", err)
			return denied("policy returned invalid mask rules; refused"), nil, nil
		}
		maskers[i] = m
		if m != nil {
			c.recent.Store(m)
		}
		if d.Approval.Required {
			holds = append(holds, heldOp{op: op, d: d, st: &stmts[i], index: i})
		} else if action != "parse" {
			c.count("allowed")
		}
	}
	return nil, holds, maskers
}

type heldOp struct {
	op    policy.Operation
	d     policy.Decision
	st    *pgsql.Statement
	index int // of the statement in its request
}

// withText gives each held operation the statement as the agent wrote it
// (with its values) for the reviewer; classification works on normalized
// text, so the original is parsed once more, only on this rare path.
func withText(holds []heldOp, sql string, single bool) {
	if single {
		for i := range holds {
			holds[i].op.Fields["text"] = sql
		}
		return
	}
	orig, err := pgsql.Parse(sql)
	for i := range holds {
		if err == nil && holds[i].index < len(orig) {
			holds[i].op.Fields["text"] = orig[holds[i].index].Text
		} else {
			holds[i].op.Fields["text"] = sql
		}
	}
}

// approve holds the request until a reviewer decides on every statement
// that needs approval. The agent's request simply waits.
func (c *conn) approve(ctx context.Context, holds []heldOp) *refusal {
	for _, h := range holds {
		if c.s.Approve == nil {
			return denied("approval required (" + h.d.Reason() + ") but no approval service is available")
		}
		hctx, cancel := context.WithCancel(ctx)
		c.holdMu.Lock()
		c.holdCancel = cancel
		c.holdMu.Unlock()
		c.count("held")
		c.logDecision("held for approval", h.st, h.d.Approval.Reason)
		v, err := c.s.Approve(hctx, h.op, h.d)
		c.holdMu.Lock()
		c.holdCancel = nil
		c.holdMu.Unlock()
		cancel()
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() == nil:
			return &refusal{code: codeQueryCanceled, message: "canceling statement due to user request"}
		case err != nil:
			return denied("approval failed: " + err.Error())
		case !v.Approved:
			c.count("rejected")
			msg := "denied by " + v.Reviewer
			if v.Reason != "" {
				msg += ": " + v.Reason
			}
			return denied(msg)
		}
		c.count("approved")
		c.logDecision("approved", h.st, "by "+v.Reviewer)
	}
	return nil
}

func (c *conn) count(outcome string) {
	c.h.metrics.statements.WithLabelValues("postgres", c.s.Target.Name, outcome).Inc()
}

func (c *conn) logDecision(what string, st *pgsql.Statement, reason string) {
	c.log.Info("statement "+what, "kind", st.Kind, "command", st.Command, "fingerprint", st.Fingerprint, "reason", reason)
}

// query handles a simple Query: every statement in the string is judged;
// a refusal of any refuses the whole string, before any of it runs.
func (c *conn) query(ctx context.Context, m *pgproto3.Query) error {
	stmts, err := c.classify(m.String)
	if err != nil {
		return c.refuseQuery(syntaxRefusal(err))
	}
	for i := range stmts {
		if mayChangeParsing(&stmts[i]) {
			c.barrier = true
		}
	}
	r, holds, maskers := c.judge(ctx, "query", stmts, nil)
	if r == nil && len(holds) > 0 {
		withText(holds, m.String, len(stmts) == 1)
		r = c.approve(ctx, holds)
	}
	if r != nil {
		return c.refuseQuery(r)
	}
	p := &pending{kind: kQuery}
	for i := range stmts {
		qs := &queryStmt{masker: maskers[i], reads: stmts[i].Reads}
		if stmts[i].Kind == "copy" && stmts[i].Copy != nil {
			plan, r := c.planCopy(ctx, &stmts[i], maskers[i])
			if r != nil {
				return c.refuseQuery(r)
			}
			qs.copy = plan
		}
		p.query = append(p.query, qs)
		c.trackSQLPrepare(&stmts[i])
	}
	c.q.push(p)
	c.fe.Send(m)
	return c.fe.Flush()
}

// refuseQuery replaces a simple Query (or a function call) with the
// poison, whose failure the server direction turns into r.
func (c *conn) refuseQuery(r *refusal) error {
	c.q.push(&pending{kind: kQuery, refused: r})
	c.fe.Send(&pgproto3.Query{String: c.poison})
	return c.fe.Flush()
}

// trackSQLPrepare remembers SQL-level PREPARE / DEALLOCATE, so a later
// EXECUTE is judged by what it runs.
func (c *conn) trackSQLPrepare(st *pgsql.Statement) {
	switch st.Kind {
	case "prepare":
		if st.Inner != nil {
			c.sqlNamed[st.Prepared] = st.Inner
		}
	case "deallocate":
		if st.Prepared == "" {
			clear(c.sqlNamed)
		} else {
			delete(c.sqlNamed, st.Prepared)
		}
	}
}

// parse handles Parse: the statement is judged when it is prepared, and
// again (from the decision cache, normally) at every Execute.
func (c *conn) parse(ctx context.Context, m *pgproto3.Parse) error {
	ps := &prepared{name: m.Name, text: m.Query}
	c.stmts[m.Name] = ps
	stmts, err := c.classify(m.Query)
	if err != nil {
		ps.refused = syntaxRefusal(err)
	} else {
		ps.statements = stmts
		// Approval is asked for at Execute, when the statement runs.
		ps.refused, _, _ = c.judge(ctx, "parse", stmts, nil)
	}
	fwd := *m
	if ps.refused != nil {
		fwd.Query = c.poison
	}
	c.q.push(&pending{kind: kParse, stmt: ps, refused: ps.refused})
	c.fe.Send(&fwd)
	return nil
}

func (c *conn) bind(m *pgproto3.Bind) {
	ps := c.stmts[m.PreparedStatement]
	pt := &portal{name: m.DestinationPortal, stmt: ps, formats: append([]int16(nil), m.ResultFormatCodes...)}
	if c.s.UsesParams != nil && c.s.UsesParams() {
		pt.params = params(m)
	}
	c.portals[m.DestinationPortal] = pt
	var r *refusal
	if ps != nil {
		r = ps.refused
	}
	c.q.push(&pending{kind: kBind, portal: pt, refused: r})
	c.fe.Send(m)
}

func (c *conn) describe(m *pgproto3.Describe) {
	p := &pending{}
	if m.ObjectType == 'S' {
		p.kind = kDescribeStmt
		p.stmt = c.stmts[m.Name]
		if p.stmt != nil {
			p.stmt.described = true
			p.refused = p.stmt.refused
		}
	} else {
		p.kind = kDescribePortal
		p.portal = c.portals[m.Name]
		if p.portal != nil {
			p.portal.described = true
			if p.portal.stmt != nil {
				p.refused = p.portal.stmt.refused
			}
		}
	}
	c.q.push(p)
	c.fe.Send(m)
}

// execute judges the portal's statement again (policy may have changed,
// may read parameters, may want approval for this run) and forwards the
// Execute, or replaces it with the poison.
func (c *conn) execute(ctx context.Context, m *pgproto3.Execute) error {
	pt := c.portals[m.Portal]
	if pt == nil || pt.stmt == nil {
		// Let the target report the missing portal.
		c.q.push(&pending{kind: kExecute})
		c.fe.Send(m)
		return nil
	}
	if r := pt.stmt.refused; r != nil {
		c.q.push(&pending{kind: kExecute, refused: r})
		c.fe.Send(m)
		return nil
	}
	r, holds, maskers := c.judge(ctx, "execute", pt.stmt.statements, pt.params)
	if r == nil && len(holds) > 0 {
		// The agent is waiting for this statement's results: everything
		// it sent before must reach the target first.
		if err := c.fe.Flush(); err != nil {
			return err
		}
		withText(holds, pt.stmt.text, true)
		r = c.approve(ctx, holds)
	}
	if r != nil {
		// In place of the Execute, a Parse of the poison: the target
		// fails at this point and skips to Sync, as it would have.
		c.q.push(&pending{kind: kExecute, refused: r})
		c.fe.Send(&pgproto3.Parse{Query: c.poison})
		return nil
	}
	for i := range pt.stmt.statements {
		if mayChangeParsing(&pt.stmt.statements[i]) {
			c.barrier = true
		}
	}
	var mk *mask.Masker
	if len(maskers) > 0 {
		mk = maskers[0]
	}
	if mk != nil && !mk.Empty() && !pt.described && !pt.stmt.described {
		// Masking needs the column types and origins; ask for them
		// without the agent seeing the answer.
		c.q.push(&pending{kind: kDescribePortal, portal: pt, hidden: true})
		c.fe.Send(&pgproto3.Describe{ObjectType: 'P', Name: pt.name})
		pt.described = true
	}
	c.q.push(&pending{kind: kExecute, portal: pt, masker: mk})
	c.fe.Send(m)
	return nil
}

func (c *conn) closeObject(m *pgproto3.Close) {
	if m.ObjectType == 'S' {
		delete(c.stmts, m.Name)
	} else {
		delete(c.portals, m.Name)
	}
	c.q.push(&pending{kind: kClose})
	c.fe.Send(m)
}

// params copies text-format parameter values for policies that read them.
func params(m *pgproto3.Bind) []any {
	out := make([]any, len(m.Parameters))
	for i, p := range m.Parameters {
		format := int16(0)
		switch {
		case len(m.ParameterFormatCodes) == 1:
			format = m.ParameterFormatCodes[0]
		case i < len(m.ParameterFormatCodes):
			format = m.ParameterFormatCodes[i]
		}
		switch {
		case p == nil:
			out[i] = nil
		case format == 0:
			out[i] = string(p)
		default:
			out[i] = fmt.Sprintf("(binary, %d bytes)", len(p))
		}
	}
	return out
}

// masker compiles a decision's mask rules. A decision served from the
// policy session's cache carries the same rules slice every time, so the
// slice's address finds the compiled masker without looking at the rules;
// otherwise they are compared by their text.
func (c *conn) masker(d policy.Decision) (*mask.Masker, error) {
	if len(d.Mask) == 0 {
		return nil, nil
	}
	if m, ok := c.maskerByRules[&d.Mask[0]]; ok {
		return m, nil
	}
	key := fmt.Sprint(d.Mask)
	if m, ok := c.maskers[key]; ok {
		c.rememberMasker(d, m)
		return m, nil
	}
	rules, err := mask.ParseRules(d.Mask)
	if err != nil {
		return nil, err
	}
	m, err := mask.New(rules, c.h.cfg.MaskKey)
	if err != nil {
		return nil, err
	}
	if len(c.maskers) > 256 {
		clear(c.maskers)
	}
	c.maskers[key] = m
	c.rememberMasker(d, m)
	return m, nil
}

func (c *conn) rememberMasker(d policy.Decision, m *mask.Masker) {
	if len(c.maskerByRules) > 256 {
		clear(c.maskerByRules)
	}
	c.maskerByRules[&d.Mask[0]] = m
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
	"github.com/sluice-gate/sluice/pkg/record"
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
			r := denied("the function call protocol is not allowed; use SELECT")
			_ = c.s.Rec.Refusal(record.Refusal{Stage: record.StageStatement, Outcome: "denied", Reason: r.message, Text: fmt.Sprintf("function call (oid %d)", m.Function)})
			err = c.refuseQuery(r)
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

// judged is one statement with its decision.
type judged struct {
	st *pgsql.Statement
	op policy.Operation
	d  policy.Decision
	m  *mask.Masker
	// refused is set on the statement that was refused (the last one).
	refused *refusal
	// req is the statement's request id in the recording.
	req string
}

// judge decides every statement in order, stopping at the first refusal,
// which it also returns.
func (c *conn) judge(ctx context.Context, action string, stmts []pgsql.Statement, params []any) ([]judged, *refusal) {
	start := time.Now()
	defer func() { c.h.metrics.decide.Observe(time.Since(start).Seconds()) }()
	js := make([]judged, 0, len(stmts))
	for i := range stmts {
		st := &stmts[i]
		if st.Kind == pgsql.KindSet && st.Opaque && (st.Setting == "standard_conforming_strings" || st.Setting == "client_encoding") {
			// Whatever policy says: sluice could no longer read the
			// session's statements as the server does.
			r := denied("changing " + st.Setting + " away from on/UTF8 is not allowed through sluice")
			js = append(js, judged{st: st, op: operation(action, c.database, st), refused: r})
			return js, r
		}
		d, op, err := c.decide(ctx, action, st, params)
		j := judged{st: st, op: op, d: d}
		switch {
		case err != nil:
			c.log.Error("policy error", "err", err)
			j.refused = denied("policy error; refused")
		case len(d.Deny) > 0 || !d.Allow:
			c.count("denied")
			c.logDecision("refused", st, d.Reason())
			j.refused = denied(d.Reason())
		}
		if j.refused == nil {
			if j.m, err = c.maskers.Masker(d.Mask); err != nil {
				c.log.Error("policy mask rules", "err", err)
				j.refused = denied("policy returned invalid mask rules; refused")
			}
		}
		js = append(js, j)
		if j.refused != nil {
			return js, j.refused
		}
		if j.m != nil {
			c.recent.Store(j.m)
		}
		if !d.Approval.Required && action != "parse" {
			c.count("allowed")
		}
	}
	return js, nil
}

// maxRecordedText bounds a statement's text in the recording.
const maxRecordedText = 64 << 10

// texts returns each statement's text as the agent sent it: the whole
// string for one statement; split by PostgreSQL's scanner (cheap, no
// parse) for several.
func texts(sql string, n int) []string {
	out := make([]string, n)
	if n == 1 {
		out[0] = sql
		return out
	}
	parts, err := pg_query.SplitWithScanner(sql, true)
	for i := range out {
		if err == nil && len(parts) == n {
			out[i] = strings.TrimSpace(parts[i])
		} else {
			out[i] = sql
		}
	}
	return out
}

func clip(s string) string {
	if len(s) <= maxRecordedText {
		return s
	}
	return s[:maxRecordedText] + fmt.Sprintf("… (%d bytes in all)", len(s))
}

// record writes a request record for each judged statement, before any of
// them goes on: durably for audit-critical ones. A recording that cannot
// be written refuses the request.
func (c *conn) record(js []judged, texts []string) *refusal {
	for i := range js {
		j := &js[i]
		fields := make(map[string]any, len(j.op.Fields))
		for k, v := range j.op.Fields {
			if k != "params" {
				fields[k] = v
			}
		}
		dec := record.Decision{
			Allowed: j.refused == nil, ApprovalRequired: j.d.Approval.Required,
			Reviewers: j.d.Approval.Reviewers, Mask: j.d.Mask,
		}
		if j.refused != nil {
			dec.Reasons = []string{strings.TrimPrefix(j.refused.message, "sluice: ")}
		} else if len(j.d.Deny) > 0 {
			dec.Reasons = j.d.Deny
		}
		id, err := c.s.Rec.Request(record.Request{
			Action: j.op.Action, Operation: fields, Text: clip(texts[i]), Decision: dec,
			Critical: j.d.Critical || j.d.Approval.Required,
		})
		if err != nil {
			c.log.Error("record request", "err", err)
			return denied("the request cannot be recorded; refused")
		}
		j.req = id
		if j.refused != nil {
			_ = c.s.Rec.Refusal(record.Refusal{Stage: record.StageStatement, Outcome: "denied", Reason: j.refused.message, Request: id})
		}
	}
	return nil
}

// approve holds the request until a reviewer decides on every statement
// that needs approval, recording each outcome. The agent's request simply
// waits.
func (c *conn) approve(ctx context.Context, js []judged, texts []string) *refusal {
	for i := range js {
		j := &js[i]
		if !j.d.Approval.Required || j.refused != nil {
			continue
		}
		if c.s.Approve == nil {
			return denied("approval required (" + j.d.Reason() + ") but no approval service is available")
		}
		j.op.Fields["text"] = texts[i]
		hctx, cancel := context.WithCancel(ctx)
		c.holdMu.Lock()
		c.holdCancel = cancel
		c.holdMu.Unlock()
		c.count("held")
		c.logDecision("held for approval", j.st, j.d.Approval.Reason)
		v, err := c.s.Approve(hctx, j.op, j.d)
		c.holdMu.Lock()
		c.holdCancel = nil
		c.holdMu.Unlock()
		cancel()
		rec := record.Approval{Request: j.req, ID: v.ApprovalID, Reviewer: v.Reviewer, Reason: v.Reason, Decided: time.Now().UTC()}
		var r *refusal
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() == nil:
			rec.Status = "cancelled"
			r = &refusal{code: codeQueryCanceled, message: "canceling statement due to user request"}
		case err != nil:
			rec.Status = "failed"
			r = denied("approval failed: " + err.Error())
		case !v.Approved:
			c.count("rejected")
			rec.Status = "rejected"
			msg := "denied by " + v.Reviewer
			if v.Reason == "approval timed out" {
				rec.Status = "expired"
			}
			if v.Reason != "" {
				msg += ": " + v.Reason
			}
			r = denied(msg)
		default:
			rec.Status = "approved"
			c.count("approved")
			c.logDecision("approved", j.st, "by "+v.Reviewer)
		}
		if rerr := c.s.Rec.Approval(rec); rerr != nil && r == nil {
			r = denied("the approval cannot be recorded; refused")
		}
		if r != nil {
			return r
		}
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
		r := syntaxRefusal(err)
		_ = c.s.Rec.Refusal(record.Refusal{Stage: record.StageStatement, Outcome: "unparsed", Reason: r.message, Text: clip(m.String)})
		return c.refuseQuery(r)
	}
	for i := range stmts {
		if mayChangeParsing(&stmts[i]) {
			c.barrier = true
		}
	}
	js, r := c.judge(ctx, "query", stmts, nil)
	txt := texts(m.String, len(stmts))
	if rr := c.record(js, txt); rr != nil {
		r = rr
	}
	if r == nil {
		r = c.approve(ctx, js, txt)
	}
	if r != nil {
		return c.refuseQuery(r)
	}
	p := &pending{kind: kQuery, started: time.Now()}
	for i := range stmts {
		qs := &queryStmt{masker: js[i].m, reads: stmts[i].Reads, req: js[i].req}
		if stmts[i].Kind == "copy" && stmts[i].Copy != nil {
			plan, r := c.planCopy(ctx, &stmts[i], js[i].m)
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
		_ = c.s.Rec.Refusal(record.Refusal{Stage: record.StageStatement, Outcome: "unparsed", Reason: ps.refused.message, Text: clip(m.Query)})
	} else {
		ps.statements = stmts
		// Approval is asked for at Execute, when the statement runs;
		// only a refusal is recorded now.
		var js []judged
		js, ps.refused = c.judge(ctx, "parse", stmts, nil)
		if ps.refused != nil {
			if r := c.record(js, texts(m.Query, len(stmts))); r != nil {
				ps.refused = r
			}
		}
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
	js, r := c.judge(ctx, "execute", pt.stmt.statements, pt.params)
	txt := texts(pt.stmt.text, len(js))
	if rr := c.record(js, txt); rr != nil {
		r = rr
	}
	if r == nil && slices.ContainsFunc(js, func(j judged) bool { return j.d.Approval.Required }) {
		// The agent is waiting for this statement's results: everything
		// it sent before must reach the target first.
		if err := c.fe.Flush(); err != nil {
			return err
		}
		r = c.approve(ctx, js, txt)
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
	var req string
	if len(js) > 0 {
		mk, req = js[0].m, js[0].req
	}
	if mk != nil && !mk.Empty() && !pt.described && !pt.stmt.described {
		// Masking needs the column types and origins; ask for them
		// without the agent seeing the answer.
		c.q.push(&pending{kind: kDescribePortal, portal: pt, hidden: true})
		c.fe.Send(&pgproto3.Describe{ObjectType: 'P', Name: pt.name})
		pt.described = true
	}
	c.q.push(&pending{kind: kExecute, portal: pt, masker: mk, req: req, started: time.Now()})
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

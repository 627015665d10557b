package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fromServer relays the target's messages to the agent in order, matching
// each to the request it answers: refused requests get their refusal,
// hidden requests are swallowed, rows and COPY data are masked.
func (c *conn) fromServer() error {
	var cur *pending // the request whose rows are flowing
	var qi int       // statement index within a simple Query
	var plan *rowPlan
	var acc *result // what the recording will say about the current result
	for {
		if c.fe.ReadBufferLen() == 0 {
			// Nothing more already received: let the agent have what
			// is buffered before blocking.
			if err := c.be.Flush(); err != nil {
				return err
			}
		}
		msg, err := c.fe.Receive()
		if err != nil {
			var big *pgproto3.ExceededMaxBodyLenErr
			if errors.As(err, &big) {
				r := fatalf(codeProgramLimitExceeded, "a message from the target of %d bytes exceeds the limit of %d", big.ActualBodyLen, big.MaxExpectedBodyLen)
				c.be.Send(r.response())
				_ = c.be.Flush()
			}
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ParseComplete:
			err = c.complete(kParse, m)
		case *pgproto3.BindComplete:
			err = c.complete(kBind, m)
		case *pgproto3.CloseComplete:
			err = c.complete(kClose, m)
		case *pgproto3.ParameterDescription:
			p := c.q.head()
			if p == nil || p.kind != kDescribeStmt {
				return c.desync(m)
			}
			c.forward(p, m)
		case *pgproto3.RowDescription:
			p := c.q.head()
			switch {
			case p == nil:
				return c.desync(m)
			case p.kind == kQuery:
				cur, plan = p, nil
				if qi < len(p.query) {
					plan = c.newRowPlan(p.query[qi].masker, m.Fields, p.query[qi].reads)
				}
				acc = c.resultFor(acc, p, qi)
				acc.describe(m.Fields)
				c.forward(p, m)
			case p.kind == kDescribeStmt || p.kind == kDescribePortal:
				if _, err = c.q.pop(p.kind); err != nil {
					return err
				}
				fields := cloneFields(m.Fields)
				if p.stmt != nil {
					p.stmt.desc = fields
				}
				if p.portal != nil {
					p.portal.desc = fields
				}
				c.forward(p, m)
			default:
				return c.desync(m)
			}
		case *pgproto3.NoData:
			p := c.q.head()
			if p == nil || (p.kind != kDescribeStmt && p.kind != kDescribePortal) {
				return c.desync(m)
			}
			_, _ = c.q.pop(p.kind)
			c.forward(p, m)
		case *pgproto3.DataRow:
			p := c.q.head()
			if p == nil || (p.kind != kExecute && p.kind != kQuery) {
				return c.desync(m)
			}
			if p.kind == kExecute && cur != p {
				cur, plan = p, c.executePlan(p)
				acc = c.resultFor(acc, p, 0)
				acc.describe(executeFields(p))
			}
			if p.refused != nil || p.hidden || c.skipping {
				continue
			}
			if acc == nil {
				acc = c.resultFor(acc, p, qi)
			}
			if plan != nil {
				plan.maskRow(m, &acc.stats)
			}
			acc.row(m)
			c.be.Send(m)
		case *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse:
			p := c.q.head()
			if p == nil {
				return c.desync(m)
			}
			switch p.kind {
			case kExecute:
				_, _ = c.q.pop(kExecute)
				c.finishRefused(p)
				c.forward(p, m)
			case kQuery:
				c.copyOut = nil
				c.forward(p, m)
			default:
				return c.desync(m)
			}
			if !c.suppressed(p) {
				c.finishResult(c.resultFor(acc, p, qi), tag(m), nil)
			}
			acc = nil
			if p.kind == kQuery {
				qi++
			}
			cur, plan = nil, nil
		case *pgproto3.PortalSuspended:
			p := c.q.head()
			if err = c.complete(kExecute, m); err != nil {
				return err
			}
			if p != nil && !c.suppressed(p) {
				c.finishResult(c.resultFor(acc, p, 0), "(portal suspended)", nil)
			}
			acc = nil
			cur, plan = nil, nil
		case *pgproto3.CopyOutResponse:
			p := c.q.head()
			if p == nil {
				return c.desync(m)
			}
			c.copyOut = nil
			if p.kind == kQuery && qi < len(p.query) {
				c.copyOut = p.query[qi].copy
			} else if p.kind == kExecute && p.masker != nil && !p.masker.Empty() {
				c.copyOut = &copyPlan{m: p.masker}
			}
			c.forward(p, m)
		case *pgproto3.CopyData:
			p := c.q.head()
			if p == nil {
				return c.desync(m)
			}
			if !c.suppressed(p) {
				acc = c.resultFor(acc, p, qi)
				if c.copyOut != nil {
					c.copyOut.maskRow(m, &acc.stats)
				}
				acc.copyRow(m.Data)
			}
			c.forward(p, m)
		case *pgproto3.CopyDone, *pgproto3.CopyInResponse:
			c.forward(c.q.head(), m)
		case *pgproto3.ErrorResponse:
			if p := c.q.head(); p != nil && p.refused == nil && !p.hidden && !c.skipping && (p.kind == kQuery || p.kind == kExecute) {
				c.finishResult(c.resultFor(acc, p, qi), "", m)
			}
			acc = nil
			err = c.serverError(m)
			cur, plan = nil, nil
		case *pgproto3.ReadyForQuery:
			p := c.q.head()
			if p == nil || (p.kind != kSync && p.kind != kQuery) {
				return c.desync(m)
			}
			_, _ = c.q.pop(p.kind)
			if p.kind == kQuery && p.refused != nil && !p.answered {
				// The poison did not fail (someone created the relation
				// it names): the refusal still stands.
				c.be.Send(p.refused.response())
			}
			c.skipping = false
			qi, cur, plan, c.copyOut, acc = 0, nil, nil, nil, nil
			if !p.hidden {
				c.be.Send(m)
			}
		case *pgproto3.NoticeResponse:
			c.maskNotice((*pgproto3.ErrorResponse)(m))
			c.be.Send(m)
		case *pgproto3.NotificationResponse:
			c.maskNotification(m)
			c.be.Send(m)
		case *pgproto3.ParameterStatus:
			switch m.Name {
			case "standard_conforming_strings":
				c.scs.Store(m.Value)
			case "client_encoding":
				c.encoding.Store(m.Value)
			}
			c.be.Send(m)
		default:
			return c.desync(m)
		}
		if err != nil {
			return err
		}
	}
}

// suppressed reports whether responses to p must not reach the agent.
func (c *conn) suppressed(p *pending) bool {
	return p == nil || p.hidden || p.refused != nil || c.skipping
}

// forward sends m to the agent unless its request is suppressed.
func (c *conn) forward(p *pending, m pgproto3.BackendMessage) {
	if !c.suppressed(p) {
		c.be.Send(m)
	}
}

// complete handles a one-message response to a request of kind k.
func (c *conn) complete(k kind, m pgproto3.BackendMessage) error {
	p, err := c.q.pop(k)
	if err != nil {
		return c.desync(m)
	}
	if c.finishRefused(p) {
		return nil
	}
	c.forward(p, m)
	return nil
}

// finishRefused answers a refused extended-protocol request whose poison
// the target did not fail (it cannot normally happen: the poison names a
// relation that does not exist). The agent gets the refusal, and from
// then on everything up to Sync is swallowed, as after any error.
func (c *conn) finishRefused(p *pending) bool {
	if p.refused == nil || p.answered || c.skipping {
		return p.refused != nil
	}
	p.answered = true
	c.be.Send(p.refused.response())
	c.skipping = true
	return true
}

// serverError handles an ErrorResponse: a refused request's failure
// becomes its refusal; in the extended protocol the target now skips to
// Sync, and so do the pending requests.
func (c *conn) serverError(m *pgproto3.ErrorResponse) error {
	p := c.q.head()
	if p == nil {
		// An error outside any request (the server is shutting down):
		// pass it on; the connection will end.
		c.maskNotice(m)
		c.be.Send(m)
		return nil
	}
	out := m
	if p.refused != nil && !p.answered && m.Code != codeInFailedTransaction {
		// 25P02 passes through: in a failed transaction PostgreSQL
		// refuses every statement with it, the refused one included.
		out = p.refused.response()
		p.answered = true
	} else {
		c.maskNotice(m)
	}
	if p.kind != kQuery && p.kind != kSync {
		c.q.skipToSync()
		if !c.skipping && !p.hidden {
			c.be.Send(out)
		}
		c.skipping = true
		return nil
	}
	if !p.hidden {
		c.be.Send(out)
	}
	return nil
}

// desync ends the session: the target said something that answers no
// pending request, so no masking decision could be trusted from here on.
func (c *conn) desync(m pgproto3.BackendMessage) error {
	r := fatalf(codeProtocolViolation, "protocol out of step with the target (%T)", m)
	c.log.Error("postgres relay out of step", "message", fmt.Sprintf("%T", m))
	c.be.Send(r.response())
	_ = c.be.Flush()
	return r
}

func cloneFields(fs []pgproto3.FieldDescription) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(fs))
	for i, f := range fs {
		out[i] = f
		out[i].Name = append([]byte(nil), f.Name...)
	}
	return out
}

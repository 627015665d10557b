package protocol

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/target"
)

// Handler serves one client connection that the gate has attributed and
// allowed to connect. It owns client until it returns and must close it.
type Handler interface {
	Serve(ctx context.Context, s *Session, client net.Conn) error
}

// Refuser is implemented by handlers that can turn a refusal into the
// protocol's own error (a PostgreSQL ErrorResponse, an HTTP 403, ...).
// Handlers without it get a TCP reset. s describes the connection as far
// as the gate got (attribution, job, target); the handler must not dial.
type Refuser interface {
	Refuse(ctx context.Context, s *Session, client net.Conn, reason string) error
}

// Session is everything a handler knows about the connection.
type Session struct {
	// ID names the connection in logs and records.
	ID     string
	Conn   intercept.Conn
	Job    job.Binding
	Target *target.Target
	Log    *slog.Logger
	// Authorize asks policy about one operation; a nil Authorize refuses
	// everything. Handlers must refuse the request on error.
	Authorize func(ctx context.Context, op policy.Operation) (policy.Decision, error)
	// UsesParams reports whether policy reads operation parameter values,
	// so handlers collect them only then. Nil means it does not.
	UsesParams func() bool
	// Approve holds an operation that policy says needs a human's approval
	// until a reviewer decides or the deadline passes; it returns the
	// verdict. Nil means no approval service: such operations are refused.
	Approve func(ctx context.Context, op policy.Operation, d policy.Decision) (Verdict, error)
	// Dial opens the upstream connection to the target (from the
	// daemon, so it is never steered back into the proxy).
	Dial func(ctx context.Context) (net.Conn, error)
	// Rec is the session's recording. Handlers record every request
	// before it goes on and its result after; a recording error refuses
	// the request, so nothing unrecorded reaches a target.
	Rec Recording

	// BytesUp counts client→target bytes, BytesDown target→client.
	BytesUp, BytesDown atomic.Int64
}

// Recording is where a handler records its session (*recorder.Session).
type Recording interface {
	Request(r record.Request) (id string, err error)
	Result(r record.Result) error
	Refusal(r record.Refusal) error
	Approval(a record.Approval) error
	Stream(dir string, data []byte) error
	Note(text string) error
	// Sample starts a bounded sample of a result's rows.
	Sample() *record.Sample
}

// Verdict is a reviewer's answer to a held operation.
type Verdict struct {
	Approved bool
	Reviewer string
	Reason   string
	// ApprovalID names the approval request (for the recording).
	ApprovalID string
}

// Reset closes c with an RST, so the agent sees "connection reset" rather
// than a clean end of stream that could pass for an empty answer.
func Reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

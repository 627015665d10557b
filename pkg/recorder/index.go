package recorder

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/store"
)

// ErrNotFound means no session has the id.
var ErrNotFound = errors.New("no such session")

// Index is the session index in the store.
type Index struct {
	Store *store.Store
}

// Entry is one session as the index knows it.
type Entry struct {
	ID       string     `json:"id"`
	Host     string     `json:"host"`
	Target   string     `json:"target"`
	Protocol string     `json:"protocol"`
	Subject  string     `json:"subject"`
	Issuer   string     `json:"issuer"`
	Job      string     `json:"job"`
	PID      int        `json:"pid"`
	Exe      string     `json:"exe"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	State    string     `json:"state"`
	File     string     `json:"file"`
	Records  int        `json:"records"`
	LastHash string     `json:"last_hash"`
	Bytes    int64      `json:"bytes"`
	Requests int        `json:"requests"`
	Refusals int        `json:"refusals"`
}

// Seal is what the index remembers of the file, for record.Verify: for a
// closed session, its full length and last hash; for an open or
// interrupted one, a prefix it must at least contain.
func (e *Entry) Seal() *record.Seal {
	return &record.Seal{Records: e.Records, LastHash: e.LastHash}
}

func (x *Index) q(s string) string { return x.Store.Rebind(s) }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// row is the changing part of a session's index row.
type row struct {
	state      string
	end        *time.Time
	records    int
	hash       string
	size       int64
	reqs, refs int
}

func (r row) endTime() any {
	if r.end == nil {
		return nil
	}
	return ts(*r.end)
}

// insertOp and updateOp are the index writes of a session's life, applied
// through the queue.
func insertOp(id, instance, file string, h record.Header, r row) op {
	return op{`INSERT INTO sessions (id, instance, host, target, protocol, subject, issuer, job,
		pid, exe, start, end_time, state, file, records, last_hash, bytes, requests, refusals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, []any{
		id, instance, h.Host, h.Target.Name, h.Protocol, h.Identity.Subject, h.Identity.Issuer, h.Identity.Job,
		h.Process.PID, h.Process.Exe, ts(h.Start), r.endTime(), r.state, file, r.records, r.hash, r.size, r.reqs, r.refs}}
}

func updateOp(id string, r row) op {
	return op{`UPDATE sessions SET state = ?, end_time = ?, records = ?, last_hash = ?, bytes = ?,
		requests = ?, refusals = ? WHERE id = ? AND state = 'open'`, []any{r.state, r.endTime(), r.records, r.hash, r.size, r.reqs, r.refs, id}}
}

// interruptOthers marks sessions still open from other daemon runs.
func (x *Index) interruptOthers(ctx context.Context, instance string, now time.Time) (int64, error) {
	res, err := x.Store.DB.ExecContext(ctx, x.q(`UPDATE sessions SET state = 'interrupted', end_time = ?
		WHERE state = 'open' AND instance <> ?`), ts(now), instance)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const entryColumns = `id, host, target, protocol, subject, issuer, job, pid, exe, start, end_time, state, file, records,
	last_hash, bytes, requests, refusals`

func scanEntry(sc interface{ Scan(...any) error }) (*Entry, error) {
	var (
		e          Entry
		start      string
		end        sql.NullString
		pid        int64
		records    int64
		reqs, refs int64
	)
	if err := sc.Scan(&e.ID, &e.Host, &e.Target, &e.Protocol, &e.Subject, &e.Issuer, &e.Job, &pid, &e.Exe, &start, &end,
		&e.State, &e.File, &records, &e.LastHash, &e.Bytes, &reqs, &refs); err != nil {
		return nil, err
	}
	e.PID, e.Records, e.Requests, e.Refusals = int(pid), int(records), int(reqs), int(refs)
	e.Start, _ = time.Parse(time.RFC3339Nano, start)
	if end.Valid {
		t, _ := time.Parse(time.RFC3339Nano, end.String)
		e.End = &t
	}
	return &e, nil
}

// Get returns one session.
func (x *Index) Get(ctx context.Context, id string) (*Entry, error) {
	e, err := scanEntry(x.Store.DB.QueryRowContext(ctx, x.q(`SELECT `+entryColumns+` FROM sessions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return e, err
}

// Filter selects sessions.
type Filter struct {
	Target, Subject string
	Since           time.Time
	Limit           int
}

// List returns sessions, newest first.
func (x *Index) List(ctx context.Context, f Filter) ([]*Entry, error) {
	q := `SELECT ` + entryColumns + ` FROM sessions WHERE 1 = 1`
	var args []any
	if f.Target != "" {
		q += ` AND target = ?`
		args = append(args, f.Target)
	}
	if f.Subject != "" {
		q += ` AND subject = ?`
		args = append(args, f.Subject)
	}
	if !f.Since.IsZero() {
		q += ` AND start >= ?`
		args = append(args, ts(f.Since))
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += ` ORDER BY start DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := x.Store.DB.QueryContext(ctx, x.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Deletion is one recording retention removed.
type Deletion struct {
	At       time.Time `json:"at"`
	Session  string    `json:"session"`
	File     string    `json:"file"`
	Bytes    int64     `json:"bytes"`
	LastHash string    `json:"last_hash"`
	Reason   string    `json:"reason"`
}

// Deletions lists what retention deleted, oldest first.
func (x *Index) Deletions(ctx context.Context) ([]Deletion, error) {
	rows, err := x.Store.DB.QueryContext(ctx, `SELECT at, session_id, file, bytes, last_hash, reason FROM session_deletions ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Deletion
	for rows.Next() {
		var d Deletion
		var at string
		if err := rows.Scan(&at, &d.Session, &d.File, &d.Bytes, &d.LastHash, &d.Reason); err != nil {
			return nil, err
		}
		d.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// retain deletes recordings older than maxAge, then the oldest while the
// total exceeds maxBytes. Open sessions are never deleted. Each deletion
// is logged in session_deletions before the file goes.
func (x *Index) retain(ctx context.Context, now time.Time, maxAge time.Duration, maxBytes int64, log *slog.Logger) (int, error) {
	rows, err := x.Store.DB.QueryContext(ctx, `SELECT `+entryColumns+` FROM sessions WHERE state <> 'open' ORDER BY start`)
	if err != nil {
		return 0, err
	}
	var all []*Entry
	var total int64
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, e)
		total += e.Bytes
	}
	rows.Close()
	deleted := 0
	for _, e := range all {
		var reason string
		switch {
		case maxAge > 0 && now.Sub(e.Start) > maxAge:
			reason = fmt.Sprintf("older than %s", maxAge)
		case maxBytes > 0 && total > maxBytes:
			reason = fmt.Sprintf("recordings exceed %d bytes", maxBytes)
		default:
			continue
		}
		if err := x.delete(ctx, e, now, reason); err != nil {
			return deleted, err
		}
		log.Info("recording deleted by retention", "session", e.ID, "reason", reason, "bytes", e.Bytes)
		total -= e.Bytes
		deleted++
	}
	return deleted, nil
}

func (x *Index) delete(ctx context.Context, e *Entry, now time.Time, reason string) error {
	tx, err := x.Store.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, x.q(`INSERT INTO session_deletions (at, session_id, file, bytes, last_hash, reason)
		VALUES (?, ?, ?, ?, ?, ?)`), ts(now), e.ID, e.File, e.Bytes, e.LastHash, reason); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, x.q(`DELETE FROM sessions WHERE id = ?`), e.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := os.Remove(e.File); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete recording %s: %w", e.File, err)
	}
	return nil
}

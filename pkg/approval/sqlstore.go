package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SQL is a Store over a database/sql database with the schema of
// pkg/store (migration 001), SQLite or PostgreSQL.
type SQL struct {
	DB *sql.DB
	// Rebind adapts ?-placeholder queries to the driver (store.Rebind);
	// nil leaves them as they are (SQLite).
	Rebind func(string) string
}

func (s *SQL) q(query string) string {
	if s.Rebind == nil {
		return query
	}
	return s.Rebind(query)
}

var _ Store = (*SQL)(nil)

const columns = `id, status, created, deadline, target, protocol, action, operation, fingerprint, reason,
	reviewers, requester_sub, requester_iss, job, conn, detail, decided_at, decided_by, decided_iss,
	outcome_reason, window_until`

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// Insert writes a new request.
func (s *SQL) Insert(ctx context.Context, r *Request, instance string) error {
	reviewers, _ := json.Marshal(r.Reviewers)
	detail, err := json.Marshal(r.Detail)
	if err != nil {
		return fmt.Errorf("encode request detail: %w", err)
	}
	_, err = s.DB.ExecContext(ctx, s.q(`INSERT INTO approvals (id, instance, status, created, deadline, target, protocol, action,
		operation, fingerprint, reason, reviewers, requester_sub, requester_iss, job, conn, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, instance, string(r.Status), ts(r.Created), ts(r.Deadline), r.Target, r.Protocol, r.Action,
		r.Operation, r.Fingerprint, r.Reason, string(reviewers), r.Requester, r.Issuer, r.Job, r.Conn, string(detail))
	return err
}

type scanner interface{ Scan(dest ...any) error }

func scan(sc scanner) (*Request, error) {
	var (
		r                                            Request
		status, created, deadline, reviewers, detail string
		decidedAt, decidedBy, decidedIss, outcome    sql.NullString
		window                                       sql.NullString
	)
	if err := sc.Scan(&r.ID, &status, &created, &deadline, &r.Target, &r.Protocol, &r.Action, &r.Operation,
		&r.Fingerprint, &r.Reason, &reviewers, &r.Requester, &r.Issuer, &r.Job, &r.Conn, &detail,
		&decidedAt, &decidedBy, &decidedIss, &outcome, &window); err != nil {
		return nil, err
	}
	r.Status = Status(status)
	r.Created, _ = time.Parse(time.RFC3339Nano, created)
	r.Deadline, _ = time.Parse(time.RFC3339Nano, deadline)
	_ = json.Unmarshal([]byte(reviewers), &r.Reviewers)
	_ = json.Unmarshal([]byte(detail), &r.Detail)
	if decidedAt.Valid {
		t, _ := time.Parse(time.RFC3339Nano, decidedAt.String)
		r.DecidedAt = &t
	}
	r.DecidedBy, r.DecidedIssuer, r.OutcomeReason = decidedBy.String, decidedIss.String, outcome.String
	if window.Valid {
		t, _ := time.Parse(time.RFC3339Nano, window.String)
		r.WindowUntil = &t
	}
	return &r, nil
}

// Get reads one request.
func (s *SQL) Get(ctx context.Context, id string) (*Request, error) {
	r, err := scan(s.DB.QueryRowContext(ctx, s.q(`SELECT `+columns+` FROM approvals WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// List reads requests, newest first.
func (s *SQL) List(ctx context.Context, st Status, limit int) ([]*Request, error) {
	if limit <= 0 {
		limit = 500
	}
	q := `SELECT ` + columns + ` FROM approvals`
	args := []any{}
	if st != "" {
		q += ` WHERE status = ?`
		args = append(args, string(st))
	}
	q += ` ORDER BY created DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.DB.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Request
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Decide records the outcome of a pending request, and the window it
// grants, in one transaction.
func (s *SQL) Decide(ctx context.Context, id string, r *Request) (bool, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, decided_iss = ?,
		outcome_reason = ?, window_until = ? WHERE id = ? AND status = 'pending'`),
		string(r.Status), tsPtr(r.DecidedAt), r.DecidedBy, r.DecidedIssuer, r.OutcomeReason, tsPtr(r.WindowUntil), id)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	if r.WindowUntil != nil && r.Status == Approved {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO approval_windows (approval_id, target, fingerprint, requester_sub, requester_iss, until)
			VALUES (?, ?, ?, ?, ?, ?)`), id, r.Target, r.Fingerprint, r.Requester, r.Issuer, ts(*r.WindowUntil)); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// Window finds the approval that granted an unexpired window.
func (s *SQL) Window(ctx context.Context, target, fingerprint, sub, iss string, now time.Time) (*Request, error) {
	var id string
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT approval_id FROM approval_windows
		WHERE target = ? AND fingerprint = ? AND requester_sub = ? AND requester_iss = ? AND until > ?
		ORDER BY until DESC LIMIT 1`), target, fingerprint, sub, iss, ts(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Abandon marks pending requests of other instances abandoned.
func (s *SQL) Abandon(ctx context.Context, instance string, now time.Time) ([]*Request, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+columns+` FROM approvals WHERE status = 'pending' AND instance <> ?`), instance)
	if err != nil {
		return nil, err
	}
	var gone []*Request
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		gone = append(gone, r)
	}
	rows.Close()
	for _, r := range gone {
		t := now.UTC()
		r.Status, r.DecidedAt, r.DecidedBy = Abandoned, &t, "sluice"
		r.OutcomeReason = "sluiced restarted; the connection holding this request is gone"
		if _, err := s.Decide(ctx, r.ID, r); err != nil {
			return nil, err
		}
		if err := s.Event(ctx, r.ID, string(Abandoned), "sluice", map[string]any{"reason": r.OutcomeReason}); err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// Event appends to the approval event log.
func (s *SQL) Event(ctx context.Context, id, event, actor string, detail map[string]any) error {
	b, _ := json.Marshal(detail)
	_, err := s.DB.ExecContext(ctx, s.q(`INSERT INTO approval_events (at, approval_id, event, actor, detail) VALUES (?, ?, ?, ?, ?)`),
		ts(time.Now()), id, event, actor, string(b))
	return err
}

// Events lists a request's events in order.
func (s *SQL) Events(ctx context.Context, id string) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT event, actor FROM approval_events WHERE approval_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e, a string
		if err := rows.Scan(&e, &a); err != nil {
			return nil, err
		}
		out = append(out, e+":"+a)
	}
	return out, rows.Err()
}

package recorder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/pkg/record"
)

// recoverFiles indexes recordings the index does not know: sessions whose
// index row was still queued when an earlier daemon run died. The queue
// holds milliseconds of writes, so only the newest recordings can be
// missing: recoverFiles looks in the dated directories of today and
// yesterday. It returns how many it indexed.
func (r *Recorder) recoverFiles(ctx context.Context) (int, error) {
	now := r.cfg.Now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).Add(-24 * time.Hour)
	rows, err := r.idx.Store.DB.QueryContext(ctx, r.idx.q(`SELECT id FROM sessions WHERE start >= ?`), ts(since.Add(-time.Hour)))
	if err != nil {
		return 0, err
	}
	known := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		known[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, day := range []time.Time{since, now} {
		dir := filepath.Join(r.cfg.Dir, day.Format("2006/01/02"))
		ents, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return n, err
		}
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), ".jsonl")
			if !ok || !strings.HasPrefix(id, "s-") || known[id] {
				continue
			}
			file := filepath.Join(dir, e.Name())
			if err := r.indexFile(ctx, id, file); err != nil {
				r.cfg.Log.Warn("unindexed recording left as is", "file", file, "err", err)
				continue
			}
			r.cfg.Log.Info("unindexed recording indexed", "session", id, "file", file)
			n++
		}
	}
	return n, nil
}

// indexFile adds the index row of a recording from its content.
func (r *Recorder) indexFile(ctx context.Context, id, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	rep := record.Verify(f, nil)
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	var (
		h          record.Header
		end        = st.ModTime()
		reqs, refs int
	)
	err = record.Read(f, nil, func(rec record.Record) error {
		switch rec.Kind {
		case record.KindHeader:
			return rec.Decode(&h)
		case record.KindRequest:
			reqs++
			var q record.Request
			if !rec.Encrypted && rec.Decode(&q) == nil && !q.Decision.Allowed {
				refs++
			}
		case record.KindEnd:
			var e record.End
			if rec.Decode(&e) == nil {
				end = e.Time
			}
		}
		return nil
	})
	if err != nil && h.Session == "" {
		return err
	}
	if h.Session != id {
		return fmt.Errorf("header names session %q", h.Session)
	}
	state := StateInterrupted
	if rep.Sealed && rep.OK() {
		state = StateClosed
	}
	_, err = r.idx.Store.DB.ExecContext(ctx, r.idx.q(`INSERT INTO sessions (id, instance, host, target, protocol, subject, issuer, job,
		pid, exe, start, end_time, state, file, records, last_hash, bytes, requests, refusals)
		VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		id, h.Host, h.Target.Name, h.Protocol, h.Identity.Subject, h.Identity.Issuer, h.Identity.Job,
		h.Process.PID, h.Process.Exe, ts(h.Start), ts(end), state, file, rep.Records, rep.LastHash, st.Size(), reqs, refs)
	return err
}

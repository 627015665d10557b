package recorder

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/store"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	dir   string
	store *store.Store
	clock *clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{dir: dir, store: st, clock: &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}}
}

func (f *fixture) recorder(t testing.TB, instance string, maxAge time.Duration, maxBytes int64) *Recorder {
	t.Helper()
	r, err := New(context.Background(), Config{
		Dir: filepath.Join(f.dir, "rec"), Store: f.store, Instance: instance, Host: "runner-1",
		ResultCap: 1024, MaxAge: maxAge, MaxBytes: maxBytes,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func header(target, subject string) record.Header {
	return record.Header{
		Protocol: "postgres",
		Target:   record.Target{Name: target, Address: "198.18.0.2:5432"},
		Identity: record.Identity{Subject: subject, Issuer: "https://issuer.test"},
		Process:  record.Process{PID: 42, Exe: "/usr/bin/psql"},
	}
}

func session(t *testing.T, r *Recorder, target, subject string, statements int) *Session {
	t.Helper()
	s, err := r.Start(context.Background(), header(target, subject))
	if err != nil {
		t.Fatal(err)
	}
	for i := range statements {
		id, err := s.Request(record.Request{Action: "insert", Text: "INSERT INTO t VALUES (1)", Decision: record.Decision{Allowed: i%2 == 0}, Critical: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Result(record.Result{Request: id, Rows: 1, Tag: "INSERT 0 1"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestSessionLifecycle(t *testing.T) {
	f := newFixture(t)
	r := f.recorder(t, "run-1", 0, 0)
	ctx := context.Background()
	s := session(t, r, "pg", "build-7", 3)
	s.syncIndex() // as Run does every second
	r.Flush()

	e, err := r.Index().Get(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateOpen || e.End != nil || e.Subject != "build-7" || e.Exe != "/usr/bin/psql" || e.Host != "runner-1" {
		t.Fatalf("open entry: %+v", e)
	}
	f.clock.advance(time.Second)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r.Flush()
	e, err = r.Index().Get(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	// header + 3 requests + 3 results + end
	if e.State != StateClosed || e.End == nil || e.End.Sub(e.Start) != time.Second || e.Records != 8 || e.Requests != 3 || e.Refusals != 1 {
		t.Fatalf("closed entry: %+v", e)
	}
	if st, _ := os.Stat(e.File); st == nil || st.Size() != e.Bytes {
		t.Errorf("index bytes %d, file %v", e.Bytes, st)
	}
	if rep := Verify(e); !rep.OK() || rep.State != record.StateClosed {
		t.Fatalf("verify: %s", rep)
	}

	// The index pins the sealed file: an appended record after the end,
	// or a file cut back to a valid-looking prefix, no longer verifies.
	orig, _ := os.ReadFile(e.File)
	lines := strings.SplitAfter(string(orig), "\n")
	if err := os.WriteFile(e.File, []byte(strings.Join(lines[:4], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := Verify(e); rep.OK() {
		t.Errorf("a truncated closed recording verified: %s", rep)
	}
	os.Remove(e.File)
	if rep := Verify(e); rep.OK() || !strings.Contains(problems(rep), "missing") {
		t.Errorf("a deleted recording: %s", rep)
	}

	if _, err := r.Index().Get(ctx, "s-nope"); err != ErrNotFound {
		t.Errorf("Get of an unknown id: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	f := newFixture(t)
	r := f.recorder(t, "run-1", 0, 0)
	ctx := context.Background()
	a := session(t, r, "pg", "alice", 1)
	f.clock.advance(time.Hour)
	b := session(t, r, "pg", "bob", 1)
	f.clock.advance(time.Hour)
	c := session(t, r, "web", "bob", 1)
	for _, s := range []*Session{a, b, c} {
		s.Close()
	}
	r.Flush()
	ids := func(fl Filter) []string {
		es, err := r.Index().List(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	check := func(name string, got []string, want ...*Session) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %d sessions", name, got, len(want))
			return
		}
		for i, s := range want {
			if got[i] != s.ID() {
				t.Errorf("%s: %v, want %s at %d (newest first)", name, got, s.ID(), i)
			}
		}
	}
	check("all", ids(Filter{}), c, b, a)
	check("target", ids(Filter{Target: "pg"}), b, a)
	check("subject", ids(Filter{Subject: "bob"}), c, b)
	check("since", ids(Filter{Since: f.clock.now().Add(-90 * time.Minute)}), c, b)
	check("limit", ids(Filter{Limit: 1}), c)
}

// TestInterrupted: a session the previous daemon run left open shows as
// interrupted; its file verifies up to the point the index saw, and a file
// cut back behind that point is caught.
func TestInterrupted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r1 := f.recorder(t, "run-1", 0, 0)
	s := session(t, r1, "pg", "build-7", 2)
	s.syncIndex()
	r1.Flush()
	// The daemon dies here: no Close.
	session(t, r1, "pg", "build-7", 0) // never synced past its header

	r2 := f.recorder(t, "run-2", 0, 0)
	e, err := r2.Index().Get(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateInterrupted || e.End == nil || e.Records != 5 || e.Requests != 2 {
		t.Fatalf("entry after restart: %+v", e)
	}
	if rep := Verify(e); !rep.OK() || rep.State != record.StateInterrupted {
		t.Fatalf("verify of the interrupted recording: %s", rep)
	}
	orig, _ := os.ReadFile(e.File)
	lines := strings.SplitAfter(string(orig), "\n")
	if err := os.WriteFile(e.File, []byte(strings.Join(lines[:3], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := Verify(e); rep.OK() || !strings.Contains(problems(rep), "truncated") {
		t.Errorf("a recording cut back behind the index: %s", rep)
	}
	// An open session of the running instance is not touched.
	s3 := session(t, r2, "pg", "x", 0)
	s3.syncIndex()
	r2.Flush()
	if _, err := New(ctx, Config{Dir: filepath.Join(f.dir, "rec"), Store: f.store, Instance: "run-2",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock.now}); err != nil {
		t.Fatal(err)
	}
	if e, _ := r2.Index().Get(ctx, s3.ID()); e.State != StateOpen {
		t.Errorf("own open session became %s", e.State)
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t)
	r := f.recorder(t, "run-1", 0, 0)
	ctx := context.Background()
	h := header("", "build-7")
	h.Connection.Upstream = "198.18.0.9:8080"
	if err := r.Refused(ctx, h, record.Refusal{Stage: record.StageConnect, Outcome: "unknown_target", Reason: "198.18.0.9:8080 is not a configured target"}); err != nil {
		t.Fatal(err)
	}
	r.Flush()
	es, _ := r.Index().List(ctx, Filter{})
	if len(es) != 1 || es[0].State != StateRefused || es[0].End == nil {
		t.Fatalf("index: %+v", es)
	}
	if rep := Verify(es[0]); !rep.OK() {
		t.Fatalf("verify: %s", rep)
	}
	var refusals int
	f2, _ := os.Open(es[0].File)
	defer f2.Close()
	_ = record.Read(f2, nil, func(rec record.Record) error {
		if rec.Kind == record.KindRefusal {
			refusals++
		}
		return nil
	})
	if refusals != 1 {
		t.Errorf("%d refusal records", refusals)
	}
}

// TestRetention: age first, then size, oldest first; open sessions are
// kept; every deletion is logged with the file's last hash.
func TestRetention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.recorder(t, "run-1", 0, 0)
	var old []*Session
	for range 4 {
		s := session(t, r, "pg", "build-7", 3)
		s.Close()
		old = append(old, s)
		f.clock.advance(time.Hour)
	}
	open := session(t, r, "pg", "build-7", 1)
	open.syncIndex()
	f.clock.advance(48 * time.Hour)
	keep := session(t, r, "pg", "build-7", 1)
	keep.Close()
	r.Flush()

	entry := func(s *Session) *Entry {
		e, err := r.Index().Get(ctx, s.ID())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e0, e1 := entry(old[0]), entry(old[1])
	// A day's age: the four closed old sessions go, the open one stays.
	r.cfg.MaxAge = 24 * time.Hour
	r.retain(ctx)
	for _, s := range old {
		if _, err := r.Index().Get(ctx, s.ID()); err != ErrNotFound {
			t.Errorf("session %s survived age retention: %v", s.ID(), err)
		}
		if _, err := os.Stat(s.file); !os.IsNotExist(err) {
			t.Errorf("file of %s not deleted: %v", s.ID(), err)
		}
	}
	if entry(open).State != StateOpen || entry(keep).State != StateClosed {
		t.Fatal("retention deleted an open or a young session")
	}
	ds, err := r.Index().Deletions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 {
		t.Fatalf("%d deletions logged", len(ds))
	}
	var d0 *Deletion
	for i := range ds {
		if ds[i].Session == e0.ID {
			d0 = &ds[i]
		}
	}
	if d0 == nil || d0.LastHash != e0.LastHash || d0.Bytes != e0.Bytes || !strings.Contains(d0.Reason, "older than") {
		t.Errorf("deletion of %s: %+v", e0.ID, d0)
	}

	// Size: a budget below one more session's size removes the oldest.
	r.cfg.MaxAge = 0
	newer := session(t, r, "pg", "build-7", 1)
	newer.Close()
	r.Flush()
	r.cfg.MaxBytes = entry(newer).Bytes + e1.Bytes/4
	r.retain(ctx)
	if _, err := r.Index().Get(ctx, keep.ID()); err != ErrNotFound {
		t.Errorf("oldest session kept over the size budget")
	}
	if entry(newer).State != StateClosed || entry(open).State != StateOpen {
		t.Error("size retention removed the newest or an open session")
	}
	ds, _ = r.Index().Deletions(ctx)
	if len(ds) != 5 || !strings.Contains(ds[len(ds)-1].Reason+ds[0].Reason, "exceed") {
		t.Errorf("deletions: %+v", ds)
	}
}

func problems(rep record.Report) string {
	var b strings.Builder
	for _, p := range rep.Problems {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// TestSpares: with Run going, sessions start in files made ahead, which
// end up where the index says; what is left over goes when Run ends.
func TestSpares(t *testing.T) {
	f := newFixture(t)
	r := f.recorder(t, "run-1", 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	spare := filepath.Join(f.dir, "rec", ".spare")
	deadline := time.Now().Add(10 * time.Second)
	for len(r.spares.files) < spareCount && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var ids []string
	for range spareCount + 3 { // past the pool: inline creation too
		s := session(t, r, "pg", "build-7", 1)
		s.Close()
		ids = append(ids, s.ID())
	}
	r.Flush()
	for _, id := range ids {
		e, err := r.Index().Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(e.File) != id+".jsonl" || filepath.Dir(e.File) != filepath.Join(f.dir, "rec", "2026", "11", "01") {
			t.Errorf("recording of %s at %s", id, e.File)
		}
		if rep := Verify(e); !rep.OK() {
			t.Errorf("%s: %s", id, rep)
		}
	}
	cancel()
	<-done
	if left, _ := os.ReadDir(spare); len(left) != 0 {
		t.Errorf("%d spare files left after Run", len(left))
	}
	// A crash leaves spares behind: the next New clears them.
	os.WriteFile(filepath.Join(spare, "leftover"), nil, 0o600)
	f.recorder(t, "run-2", 0, 0)
	if left, _ := os.ReadDir(spare); len(left) != 0 {
		t.Errorf("New left %d spare files", len(left))
	}
}

// TestRecoverUnindexed: recordings whose index rows a crash lost (still
// queued) are indexed from their content at the next start, as closed
// when sealed and as interrupted when not.
func TestRecoverUnindexed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := filepath.Join(f.dir, "rec", "2026", "11", "01")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(id string, seal bool) {
		h := header("pg", "build-7")
		h.Session = id
		w, err := record.Create(filepath.Join(dir, id+".jsonl"), h, record.Options{Now: f.clock.now})
		if err != nil {
			t.Fatal(err)
		}
		w.Append(record.KindRequest, record.Request{ID: "r1", Action: "drop", Decision: record.Decision{Allowed: false}}, true)
		w.Append(record.KindRequest, record.Request{ID: "r2", Action: "select", Decision: record.Decision{Allowed: true}}, false)
		if seal {
			w.Close()
		}
	}
	write("s-sealed", true)
	write("s-cut", false)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a recording"), 0o600)
	f.clock.advance(time.Hour)

	r := f.recorder(t, "run-2", 0, 0)
	for id, state := range map[string]string{"s-sealed": StateClosed, "s-cut": StateInterrupted} {
		e, err := r.Index().Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if e.State != state || e.Requests != 2 || e.Refusals != 1 || e.Subject != "build-7" || e.End == nil {
			t.Errorf("%s: %+v", id, e)
		}
		if rep := Verify(e); !rep.OK() {
			t.Errorf("%s: %s", id, rep)
		}
	}
	// Known recordings are left alone on the next start.
	f.recorder(t, "run-3", 0, 0)
	if es, _ := r.Index().List(ctx, Filter{}); len(es) != 2 {
		t.Errorf("%d sessions after a second start", len(es))
	}
}

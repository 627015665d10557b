package record

import (
	"bytes"
	"encoding/json"
	"flag"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testIdentity is a fixed auditor key, so that encrypted fuzz seeds and
// corpus files stay decryptable. It protects nothing.
const testIdentity = "AGE-SECRET-KEY-1M74A7D4QWQSPE8RDHC63GRZR7THZ59H2PEM3WHZSCF4Z7CZ3HCZQR7T98C"

func auditor(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.ParseX25519Identity(testIdentity)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var epoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// clock is a fake clock: each reading moves it on by step; advance jumps.
type clock struct {
	mu   sync.Mutex // guards t
	t    time.Time
	step time.Duration
}

func newClock() *clock { return &clock{t: epoch, step: time.Millisecond} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func pgHeader() Header {
	return Header{
		Session:  "s-0001",
		Host:     "ci-runner-7",
		Protocol: "postgres",
		Target:   Target{Name: "orders", Address: "db.internal:5432", Labels: map[string]string{"env": "prod", "team": "payments"}},
		Identity: Identity{
			Subject: "repo:acme/api:ref:refs/heads/main",
			Issuer:  "https://token.actions.githubusercontent.com",
			Claims:  map[string]any{"actor": "octocat", "repository": "acme/api", "run_attempt": 2.0},
			Job:     "1234",
			Cgroup:  "/sys/fs/cgroup/sluice/job-1234",
		},
		Process: Process{
			PID: 4242, UID: 1001, Exe: "/usr/bin/psql", Comm: "psql",
			Cmdline: []string{"psql", "-h", "db.internal", "-c", "select 'it''s'"},
			Parents: []Parent{{PID: 4200, Comm: "bash", Exe: "/usr/bin/bash"}, {PID: 4100, Comm: "Runner.Worker", Exe: "/opt/runner/bin/Runner.Worker"}},
		},
		Connection: Connection{Client: "10.0.0.5:51234", Upstream: "198.18.0.2:5432", AgentTLS: true, UpstreamTLS: true},
	}
}

// entry is one scripted append: the clock moves by gap first.
type entry struct {
	gap     time.Duration
	kind    Kind
	data    any
	durable bool
}

// pgSession is a PostgreSQL-like session: an allowed SELECT with masked
// rows, a refused DROP, a DELETE held for approval and approved, a result
// with a truncated sample, an error, a note. resultCap bounds samples.
func pgSession(resultCap int) []entry {
	masked := newSample(resultCap)
	masked.Add([]string{"1", "a***@example.com", "***-**-6789"})
	masked.Add([]string{"2", "b***@example.com", "\x1b[31mred\x1b[0m"})
	big := newSample(resultCap)
	for i := 0; i < 1000 && big.Add([]string{time.Duration(i).String(), "login", "ok"}); i++ {
	}
	started := epoch.Add(time.Second)
	return []entry{
		{120 * time.Millisecond, KindRequest, Request{
			ID: "r1", Action: "select", Text: "SELECT id, email, ssn\n  FROM customers\n LIMIT 2",
			Operation: map[string]any{"tables": []any{"customers"}, "statement": "select"},
			Decision: Decision{Allowed: true, Mask: []map[string]any{
				{"column": "email", "strategy": "partial"}, {"detector": "ssn", "strategy": "redact"}}},
			Started: started,
		}, false},
		{15 * time.Millisecond, KindResult, Result{
			Request: "r1", Duration: 14 * time.Millisecond, Rows: 2, Bytes: 187, Tag: "SELECT 2",
			Masked:  map[string]uint64{"email": 2, "ssn": 1},
			Columns: []string{"id", "email", "ssn"}, RowsSample: masked.Rows(), Truncated: masked.Truncated(),
		}, false},
		{2 * time.Second, KindRequest, Request{
			ID: "r2", Action: "drop", Text: "DROP TABLE customers",
			Operation: map[string]any{"tables": []any{"customers"}, "statement": "drop"},
			Decision:  Decision{Reasons: []string{"DROP is never allowed for agents"}},
			Started:   started.Add(2 * time.Second),
		}, true},
		{0, KindRefusal, Refusal{
			Stage: StageStatement, Outcome: "denied", Reason: "DROP is never allowed for agents",
			Request: "r2", Text: "DROP TABLE customers",
		}, true},
		{time.Second, KindRequest, Request{
			ID: "r3", Action: "delete", Text: "DELETE FROM orders WHERE id = 7",
			Decision: Decision{ApprovalRequired: true, Reviewers: []string{"alice@acme.example", "bob@acme.example"},
				Reasons: []string{"deletes in prod need a reviewer"}},
			Critical: true, Started: started.Add(3 * time.Second),
		}, true},
		{42 * time.Second, KindApproval, Approval{
			Request: "r3", ID: "a-17", Status: "approved", Reviewer: "alice@acme.example",
			Reason: "one row, ticket OPS-42", Decided: started.Add(45 * time.Second), Until: started.Add(345 * time.Second),
		}, true},
		{5 * time.Millisecond, KindResult, Result{Request: "r3", Duration: 3 * time.Millisecond, Rows: 1, Tag: "DELETE 1"}, false},
		{time.Second, KindRequest, Request{
			ID: "r4", Action: "select", Text: "SELECT * FROM events", Decision: Decision{Allowed: true},
			Started: started.Add(47 * time.Second),
		}, false},
		{800 * time.Millisecond, KindResult, Result{
			Request: "r4", Duration: 790 * time.Millisecond, Rows: 1000, Bytes: 48213, Tag: "SELECT 1000",
			Columns: []string{"at", "event", "status"}, RowsSample: big.Rows(), Truncated: big.Truncated(),
		}, false},
		{time.Second, KindRequest, Request{
			ID: "r5", Action: "select", Text: "SELECT * FROM nope", Decision: Decision{Allowed: true},
			Started: started.Add(49 * time.Second),
		}, false},
		{time.Millisecond, KindResult, Result{
			Request: "r5", Duration: time.Millisecond,
			Error: &ResultError{Code: "42P01", Message: `relation "nope" does not exist`},
		}, false},
		{time.Second, KindNote, Note{Text: "daemon stopping"}, true},
	}
}

// writeSession records h and entries to a new file in a temporary
// directory, closes it unless open is set, and returns its path and seal.
func writeSession(t testing.TB, h Header, entries []entry, opts Options, open bool) (string, Seal) {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.now
	}
	path := filepath.Join(t.TempDir(), "session.jsonl")
	w, err := Create(path, h, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for i, e := range entries {
		c.advance(e.gap)
		seq, err := w.Append(e.kind, e.data, e.durable)
		if err != nil {
			t.Fatalf("Append(%s) #%d: %v", e.kind, i, err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("Append(%s) #%d = seq %d, want %d", e.kind, i, seq, i+1)
		}
	}
	if open {
		// A crash: the process dies without Close; the kernel keeps what
		// was written.
		w.f.Close()
		return path, w.Seal()
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path, w.Seal()
}

func readAll(t testing.TB, b []byte, id age.Identity) []Record {
	t.Helper()
	var recs []Record
	if err := Read(bytes.NewReader(b), id, func(r Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return recs
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seqOf turns records into the iterator the renderers take.
func seqOf(recs []Record) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// roundTrip decodes data as the type of want and compares.
func roundTrip(t *testing.T, rec Record, want any) {
	t.Helper()
	got := reflect.New(reflect.TypeOf(want))
	if err := rec.Decode(got.Interface()); err != nil {
		t.Fatalf("record %d: Decode: %v", rec.Seq, err)
	}
	// Compare through JSON: decoded maps hold float64 where the
	// original held ints, which is what JSON keeps.
	a, _ := json.Marshal(got.Elem().Interface())
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("record %d (%s) = %s, want %s", rec.Seq, rec.Kind, a, b)
	}
}

func allKinds() []entry {
	return append(pgSession(DefaultResultCap),
		entry{time.Second, KindStream, Stream{Dir: DirOutput, Data: "$ "}, false},
		entry{time.Second, KindStream, Stream{Dir: DirInput, Data: "ls <x> && echo ü\r"}, false},
	)
}

func TestRoundTrip(t *testing.T) {
	entries := allKinds()
	path, seal := writeSession(t, pgHeader(), entries, Options{}, false)
	b := mustRead(t, path)

	recs := readAll(t, b, nil)
	if got, want := len(recs), len(entries)+2; got != want {
		t.Fatalf("Read: %d records, want %d", got, want)
	}
	prev := Genesis
	for i, r := range recs {
		if r.Seq != uint64(i) || r.Prev != prev || r.Encrypted {
			t.Errorf("record %d: seq %d prev %.12s encrypted %v, want seq %d prev %.12s plaintext", i, r.Seq, r.Prev, r.Encrypted, i, prev)
		}
		prev = r.Hash
		if i > 0 && r.Time.Before(recs[i-1].Time) {
			t.Errorf("record %d: time %v before the previous record's", i, r.Time)
		}
	}

	var h Header
	if err := recs[0].Decode(&h); err != nil {
		t.Fatal(err)
	}
	want := pgHeader()
	want.Version, want.Start = FormatVersion, epoch
	want.Recorder = Recorder{ResultCap: DefaultResultCap}
	roundTrip(t, recs[0], want)
	if recs[0].Kind != KindHeader || !recs[0].Time.Equal(epoch) {
		t.Errorf("record 0: %s at %v, want header at %v", recs[0].Kind, recs[0].Time, epoch)
	}
	for i, e := range entries {
		if recs[i+1].Kind != e.kind {
			t.Errorf("record %d: kind %s, want %s", i+1, recs[i+1].Kind, e.kind)
		}
		roundTrip(t, recs[i+1], e.data)
	}
	last := recs[len(recs)-1]
	var end End
	if err := last.Decode(&end); err != nil || last.Kind != KindEnd {
		t.Fatalf("last record: %s %v, want end", last.Kind, err)
	}
	if end.Records != last.Seq || end.LastHash != last.Prev || end.State != StateClosed || !end.Time.Equal(last.Time) {
		t.Errorf("end = %+v, want %d records, last hash %.12s, closed at %v", end, last.Seq, last.Prev, last.Time)
	}

	if seal.Records != len(recs) || seal.LastHash != last.Hash {
		t.Errorf("Seal() = %+v, want {%d %s}", seal, len(recs), last.Hash)
	}
	rep := Verify(bytes.NewReader(b), &seal)
	if !rep.OK() || rep.State != StateClosed || !rep.Sealed || rep.Records != len(recs) || rep.LastHash != last.Hash {
		t.Errorf("Verify = %v %v, want closed with %d records", rep, rep.Problems, len(recs))
	}

	// The raw lines: exact field order, UTC, no HTML escaping.
	first := bytes.SplitN(b, []byte("\n"), 2)[0]
	prefix := `{"seq":0,"t":"2026-03-01T10:00:00Z","kind":"header","prev":"` + Genesis + `","data":{"version":1,"session":"s-0001",`
	if !bytes.HasPrefix(first, []byte(prefix)) {
		t.Errorf("header line = %.200s, want prefix %s", first, prefix)
	}
	if !bytes.Contains(b, []byte(`"ls <x> && echo ü\r"`)) {
		t.Errorf("stream data not stored as sent (HTML-escaped?)")
	}
}

func TestGenesis(t *testing.T) {
	if got := hashOf([]byte("sluice-record-v1")); got != Genesis {
		t.Errorf("sha256(sluice-record-v1) = %s, want Genesis %s", got, Genesis)
	}
}

func TestPosition(t *testing.T) {
	c := newClock()
	w, err := Create(filepath.Join(t.TempDir(), "s"), pgHeader(), Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	seq, h := w.Position()
	if seq != 0 || !isHash(h) {
		t.Errorf("Position() after Create = %d, %q; want 0 and a hash", seq, h)
	}
	for i := 1; i <= 3; i++ {
		if _, err := w.Append(KindNote, Note{Text: "x"}, false); err != nil {
			t.Fatal(err)
		}
		if seq, _ := w.Position(); seq != uint64(i) {
			t.Errorf("Position() after %d appends = %d, want %d", i, seq, i)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seq, h = w.Position()
	if seq != 4 {
		t.Errorf("Position() after Close = %d, want 4 (the end record)", seq)
	}
	if s := w.Seal(); s.Records != 5 || s.LastHash != h {
		t.Errorf("Seal() = %+v, want {5 %s}", s, h)
	}
}

func TestTranscriptGolden(t *testing.T) {
	path, _ := writeSession(t, pgHeader(), pgSession(256), Options{ResultCap: 256}, false)
	var out bytes.Buffer
	if err := Transcript(&out, Records(bytes.NewReader(mustRead(t, path)), nil), TranscriptOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "transcript.golden", out.Bytes())
}

func TestTranscriptInterrupted(t *testing.T) {
	path, _ := writeSession(t, pgHeader(), pgSession(256)[:3], Options{}, true)
	var out bytes.Buffer
	if err := Transcript(&out, Records(bytes.NewReader(mustRead(t, path)), nil), TranscriptOptions{Rows: 1}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INTERRUPTED after record 3: no end record\n", "(1 more sample rows not shown)"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("Transcript of an interrupted session = %s, want it to contain %q", out.Bytes(), want)
		}
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

func TestConcurrentAppend(t *testing.T) {
	const goroutines, each = 16, 200
	path := filepath.Join(t.TempDir(), "s")
	w, err := Create(path, pgHeader(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	seqs := make(chan uint64, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				seq, err := w.Append(KindStream, Stream{Dir: DirOutput, Data: fmt.Sprintf("g%d-%d", g, i)}, i%50 == 0)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] || s == 0 || s > goroutines*each {
			t.Errorf("Append returned seq %d twice or out of range", s)
		}
		seen[s] = true
	}
	b := mustRead(t, path)
	seal := w.Seal()
	if rep := Verify(bytes.NewReader(b), &seal); !rep.OK() || rep.State != StateClosed || rep.Records != goroutines*each+2 {
		t.Errorf("Verify() = %v %q, want closed with %d records", rep, rep.Problems, goroutines*each+2)
	}
}

// Close while appends are in flight: each append is either in the file
// before the end record, or refused with ErrClosed.
func TestCloseDuringAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	w, err := Create(path, pgHeader(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards ok
		ok   int
		half = make(chan struct{})
		once sync.Once
	)
	for range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := w.Append(KindNote, Note{Text: "n"}, i%10 == 0)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				ok++
				if ok == 100 {
					once.Do(func() { close(half) })
				}
				mu.Unlock()
			}
		})
	}
	<-half
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	rep := Verify(bytes.NewReader(mustRead(t, path)), nil)
	if !rep.OK() || rep.State != StateClosed || rep.Records != ok+2 {
		t.Errorf("Verify() = %v %q, want closed with %d records", rep, rep.Problems, ok+2)
	}
}

func TestAppendErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	w, err := Create(path, pgHeader(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		kind Kind
		data any
		is   error
	}{
		{"header", KindHeader, Header{}, nil},
		{"end", KindEnd, End{}, nil},
		{"unknown kind", Kind("bogus"), Note{}, nil},
		{"not an object", KindNote, []string{"x"}, nil},
		{"nil", KindNote, nil, nil},
		{"unencodable", KindNote, map[string]any{"f": func() {}}, nil},
		{"too large", KindNote, Note{Text: strings.Repeat("x", MaxRecordSize)}, ErrTooLarge},
		{"too large once encoded", KindNote, Note{Text: strings.Repeat("\x01", MaxRecordSize/6)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.Append(tt.kind, tt.data, false)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Append(%s, %T) = %v, want error %v", tt.kind, tt.data, err, tt.is)
			}
		})
	}
	// A refused record leaves the writer usable and the file untouched.
	if seq, err := w.Append(KindNote, Note{Text: "fine"}, false); seq != 1 || err != nil {
		t.Errorf("Append after refusals = %d, %v; want 1, nil", seq, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(KindNote, Note{}, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if rep := Verify(bytes.NewReader(mustRead(t, path)), nil); !rep.OK() || rep.Records != 3 {
		t.Errorf("Verify() = %v %q, want closed with 3 records", rep, rep.Problems)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	w, err := Create(path, pgHeader(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("Create: mode %v, %v; want 0600", fi.Mode(), err)
	}
	if _, err := Create(path, pgHeader(), Options{}); err == nil || !errors.Is(err, os.ErrExist) {
		t.Errorf("Create(existing) = %v, want ErrExist", err)
	}
	for _, cap := range []int{-1, MaxResultCap + 1} {
		if _, err := Create(filepath.Join(dir, "c"), pgHeader(), Options{ResultCap: cap}); err == nil {
			t.Errorf("Create(ResultCap %d) = nil, want error", cap)
		}
	}
	big := pgHeader()
	big.Process.Cmdline = []string{strings.Repeat("x", MaxRecordSize)}
	if _, err := Create(filepath.Join(dir, "big"), big, Options{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Create(huge header) = %v, want ErrTooLarge", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "big")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create(huge header) left a file: %v", err)
	}
}

func TestSample(t *testing.T) {
	s := newSample(100)
	row := []string{"abc", "defgh"} // 3 + 2 + 5 + 7 = 17 bytes
	var n int
	for s.Add(row) {
		n++
	}
	if n != 5 || !s.Truncated() || len(s.Rows()) != 5 {
		t.Errorf("Add to a 100-byte sample: %d rows, truncated %v; want 5, true", n, s.Truncated())
	}
	if s.Add([]string{}) {
		t.Error("Add after truncation = true, want false: the sample must stay a prefix")
	}
	row[0] = "changed"
	if s.Rows()[0][0] != "abc" {
		t.Errorf("Rows()[0][0] = %q after the caller reused its row, want a copy", s.Rows()[0][0])
	}
	b, _ := json.Marshal(s.Rows())
	if len(b) > 100 {
		t.Errorf("sample encodes to %d bytes, want at most 100", len(b))
	}
}

func TestJSONStringLen(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "é", "\x00", "\x1f", "\x7f", "\"", "\\", "<", "&", "\u2028", "\xff", "\xe2\x80", "😀", "\t", "\n"}
	for i := range 2000 {
		var b strings.Builder
		for range r.IntN(20) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := b.String()
		enc, err := marshalValue(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonStringLen(s); got < len(enc) {
			t.Fatalf("#%d: jsonStringLen(%q) = %d, want at least %d (%s)", i, s, got, len(enc), enc)
		}
	}
}

// Read refuses an over-long line having read little more than the limit.
func TestReadLineLimit(t *testing.T) {
	path, _ := writeSession(t, pgHeader(), nil, Options{}, false)
	head := splitLines(mustRead(t, path))[0]
	endless := &countingReader{r: io.MultiReader(bytes.NewReader(head), endlessReader{})}
	err := Read(endless, nil, func(Record) error { return nil })
	var le *LineError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &le) || le.Line != 2 {
		t.Errorf("Read(endless line) = %v, want ErrTooLarge at line 2", err)
	}
	if endless.n > 2*MaxRecordSize {
		t.Errorf("Read(endless line) read %d bytes, want about %d", endless.n, MaxRecordSize)
	}

	endless = &countingReader{r: io.MultiReader(bytes.NewReader(head), endlessReader{})}
	rep := Verify(endless, nil)
	if rep.OK() || rep.Problems[0].Line != 2 || !strings.Contains(rep.Problems[0].What, ErrTooLarge.Error()) {
		t.Errorf("Verify(endless line) = %v %q, want ErrTooLarge at line 2", rep, rep.Problems)
	}
	if endless.n > 2*MaxRecordSize {
		t.Errorf("Verify(endless line) read %d bytes, want about %d", endless.n, MaxRecordSize)
	}

	// A line of exactly the limit, newline included, is fine.
	line := appendLine(nil, 1, epoch, KindNote, hashOf(bytes.TrimSuffix(head, []byte("\n"))), []byte(`{"text":""}`))
	pad := MaxRecordSize - 1 - len(line)
	line = appendLine(nil, 1, epoch, KindNote, hashOf(bytes.TrimSuffix(head, []byte("\n"))), []byte(`{"text":"`+strings.Repeat("x", pad)+`"}`))
	file := append(append(append([]byte{}, head...), line...), '\n')
	if len(file)-len(head) != MaxRecordSize {
		t.Fatalf("test line is %d bytes, want %d", len(file)-len(head), MaxRecordSize)
	}
	if recs := readAll(t, file, nil); len(recs) != 2 {
		t.Errorf("Read(line of MaxRecordSize) = %d records, want 2", len(recs))
	}
	if err := Read(bytes.NewReader(append(file[:len(file)-1], "x\n"...)), nil, func(Record) error { return nil }); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read(line of MaxRecordSize+1) = %v, want ErrTooLarge", err)
	}
}

type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadErrors(t *testing.T) {
	path, _ := writeSession(t, pgHeader(), pgSession(DefaultResultCap)[:2], Options{}, false)
	orig := mustRead(t, path)
	tests := []struct {
		name string
		file []byte
		line int
		what string
	}{
		{"bad JSON", edit(t, orig, 1, `{"seq":1,`, `{"seq":1;`), 2, "not a record"},
		{"first record not a header", joinLines(splitLines(orig)[1:]), 1, "want a header"},
		{"future format", edit(t, orig, 0, `"version":1`, `"version":2`), 1, "format version 2"},
		{"bad time", edit(t, orig, 1, `"t":"2026-03-01T10:00:00.121Z"`, `"t":"2026-03-01T10:00:00.121+00:00"`), 2, "not in canonical form"},
		{"bad prev", edit(t, orig, 1, `"prev":"`, `"prev":"X`), 2, "not a hex SHA-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Read(bytes.NewReader(tt.file), nil, func(Record) error { return nil })
			var le *LineError
			if !errors.As(err, &le) || le.Line != tt.line || !strings.Contains(err.Error(), tt.what) {
				t.Errorf("Read() = %v, want line %d: %q", err, tt.line, tt.what)
			}
		})
	}
	// fn's error comes back as is; a torn last line is ignored.
	stop := errors.New("stop here")
	if err := Read(bytes.NewReader(orig), nil, func(Record) error { return stop }); err != stop {
		t.Errorf("Read(fn fails) = %v, want %v", err, stop)
	}
	if recs := readAll(t, orig[:len(orig)-5], nil); len(recs) != 3 {
		t.Errorf("Read(torn last line) = %d records, want 3", len(recs))
	}
	var n int
	for _, err := range Records(bytes.NewReader(orig), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("Records: stopped after %d, want 2", n)
	}
}

func TestExport(t *testing.T) {
	id := auditor(t)
	path, _ := writeSession(t, pgHeader(), pgSession(DefaultResultCap)[:2], Options{Recipient: id.Recipient()}, false)
	b := mustRead(t, path)
	for _, tc := range []struct {
		name      string
		id        age.Identity
		encrypted bool
	}{{"with identity", id, false}, {"without", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Export(&out, Records(bytes.NewReader(b), tc.id)); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 4 {
				t.Fatalf("Export: %d lines, want 4", len(lines))
			}
			var got struct {
				Seq       uint64          `json:"seq"`
				Kind      Kind            `json:"kind"`
				Hash      string          `json:"hash"`
				Encrypted bool            `json:"encrypted"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
				t.Fatal(err)
			}
			if got.Seq != 1 || got.Kind != KindRequest || !isHash(got.Hash) || got.Encrypted != tc.encrypted ||
				bytes.Contains(got.Data, []byte("SELECT id")) == tc.encrypted {
				t.Errorf("Export line 2 = %s, want request 1, encrypted %v", lines[1], tc.encrypted)
			}
		})
	}
}

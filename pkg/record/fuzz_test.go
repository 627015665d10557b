package record

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// fuzzSeeds are valid recordings (plain and encrypted, closed and
// interrupted) and broken ones.
func fuzzSeeds(f *testing.F) [][]byte {
	short := pgSession(256)[:3]
	p1, _ := writeSession(f, pgHeader(), short, Options{ResultCap: 256}, false)
	p2, _ := writeSession(f, pgHeader(), short, Options{Recipient: auditor(f).Recipient()}, false)
	p3, _ := writeSession(f, sshHeader(), terminalSession()[:4], Options{}, true)
	plain, enc, open := mustRead(f, p1), mustRead(f, p2), mustRead(f, p3)
	l := splitLines(plain)
	return [][]byte{
		plain, enc, open,
		plain[:len(plain)-7],
		joinLines([][]byte{l[0], l[2], l[1], l[3], l[4]}),
		joinLines([][]byte{l[0], l[1], l[1], l[2]}),
		bytes.Replace(plain, []byte("DROP"), []byte("DROQ"), 1),
		bytes.Replace(enc, []byte(`"enc":"`), []byte(`"enc":"A`), 1),
		append(append([]byte{}, plain...), l[1]...),
		l[0],
		{},
		[]byte("\n\n"),
		[]byte(`{"seq":0,"t":"2026-03-01T10:00:00Z","kind":"header","prev":"` + Genesis + `","data":{}}` + "\n"),
	}
}

// FuzzRead decodes arbitrary input, with the test identity, and renders
// whatever decodes: nothing may panic.
func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	id := auditor(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var recs []Record
		err := Read(bytes.NewReader(b), id, func(r Record) error {
			recs = append(recs, r)
			return nil
		})
		if err == nil && len(recs) > 0 && recs[0].Kind != KindHeader {
			t.Fatalf("Read() = nil with first record %s, want a header", recs[0].Kind)
		}
		Transcript(io.Discard, seqOf(recs), TranscriptOptions{Rows: 3, CellWidth: 5})
		Export(io.Discard, seqOf(recs))
		Asciicast(io.Discard, seqOf(recs))
		Play(t.Context(), io.Discard, seqOf(recs), float64(time.Hour))
	})
}

// FuzzVerify checks arbitrary input: nothing may panic, the report must
// be consistent, and what Verify passes Read must decode.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := Verify(bytes.NewReader(b), nil)
		if rep.OK() != (len(rep.Problems) == 0) || (rep.State == StateTampered) != (len(rep.Problems) > 0) {
			t.Fatalf("Verify() = %v with %d problems: inconsistent", rep, len(rep.Problems))
		}
		if len(rep.Problems) > maxProblems {
			t.Fatalf("Verify() = %d problems, want at most %d", len(rep.Problems), maxProblems)
		}
		if rep.State == StateClosed && !rep.Sealed {
			t.Fatalf("Verify() = closed but not sealed")
		}
		if rep.OK() {
			var n int
			if err := Read(bytes.NewReader(b), nil, func(Record) error { n++; return nil }); err != nil || n != rep.Records {
				t.Fatalf("Verify() = %v, but Read() = %v after %d records", rep, err, n)
			}
		}
		seal := Seal{Records: rep.Records, LastHash: rep.LastHash}
		if again := Verify(bytes.NewReader(b), &seal); rep.State == StateClosed && !again.OK() {
			t.Fatalf("Verify(own seal) = %v %q, want closed", again, again.Problems)
		}
	})
}

package record

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// splitLines splits a file into its lines, each with its newline.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func joinLines(l [][]byte) []byte { return bytes.Join(l, nil) }

// edit returns b with the first old in line i (0-based) replaced by new.
func edit(t *testing.T, b []byte, i int, old, new string) []byte {
	t.Helper()
	l := splitLines(b)
	if !bytes.Contains(l[i], []byte(old)) {
		t.Fatalf("line %d has no %q: %s", i+1, old, l[i])
	}
	l[i] = bytes.Replace(l[i], []byte(old), []byte(new), 1)
	return joinLines(l)
}

// forge builds a well-formed line that chains onto prevLine.
func forge(seq uint64, kind Kind, prevLine []byte, data string) []byte {
	prev := hashOf(bytes.TrimSuffix(prevLine, []byte("\n")))
	return append(appendLine(nil, seq, epoch, kind, prev, []byte(data)), '\n')
}

func TestVerifyTamper(t *testing.T) {
	path, seal := writeSession(t, pgHeader(), pgSession(DefaultResultCap), Options{}, false)
	orig := mustRead(t, path)
	lines := splitLines(orig)
	if len(lines) != 14 {
		t.Fatalf("session has %d lines, want 14", len(lines))
	}
	openPath, pos := writeSession(t, pgHeader(), pgSession(DefaultResultCap), Options{}, true)
	unsealed := mustRead(t, openPath)
	oh := pgHeader()
	oh.Session = "s-0002"
	other, _ := writeSession(t, oh, pgSession(DefaultResultCap)[:4], Options{}, false)

	drop := func(b []byte, i int) []byte {
		l := splitLines(b)
		return joinLines(append(l[:i:i], l[i+1:]...))
	}

	tests := []struct {
		name   string
		file   []byte
		expect *Seal
		state  string
		// The first problem: its record, line and a phrase of it.
		seq, line int
		what      string
		torn      bool
	}{
		{"intact", orig, &seal, StateClosed, 0, 0, "", false},
		{"intact without index", orig, nil, StateClosed, 0, 0, "", false},
		{"unsealed intact", unsealed, nil, StateInterrupted, 0, 0, "", false},

		{"byte flipped in a middle record's text", edit(t, orig, 3, "DROP TABLE", "DROP TABLF"), nil, StateTampered,
			4, 5, "hash chain broken: prev does not match record 3 (line 4)", false},
		{"byte flipped into bad JSON", edit(t, orig, 3, `{"seq":3,`, `{"seq":3;`), nil, StateTampered,
			-1, 4, "not a record", false},
		{"byte flipped in a seq", edit(t, orig, 3, `{"seq":3,`, `{"seq":8,`), nil, StateTampered,
			8, 4, "seq 8 out of order (want 3): records 3 to 7 missing", false},
		{"byte flipped in the last record", edit(t, orig, 12, "daemon stopping", "daemon stoppinG"), &seal, StateTampered,
			13, 14, "prev does not match record 12", false},
		// An index that kept the Position of a session still open.
		{"byte flipped in the last record of an unsealed file", edit(t, unsealed, 12, "daemon stopping", "daemon stoppinG"), &pos, StateTampered,
			12, 13, "does not match the index", false},
		{"byte flipped in the end record's count", edit(t, orig, 13, `"records":13`, `"records":12`), nil, StateTampered,
			13, 14, "end record counts 12 records before it, the file has 13", false},
		{"byte flipped in the end record's time", edit(t, orig, 13, `"t":"2026`, `"t":"2027`), &seal, StateTampered,
			13, 14, "does not match the index", false},
		{"byte flipped in the header", edit(t, orig, 0, "ci-runner-7", "ci-runner-8"), nil, StateTampered,
			1, 2, "prev does not match record 0", false},
		{"header prev changed", edit(t, orig, 0, `"prev":"a6d3`, `"prev":"a6d4`), nil, StateTampered,
			0, 1, "not the genesis hash", false},
		{"header replaced", joinLines(append([][]byte{splitLines(mustRead(t, other))[0]}, lines[1:]...)), nil, StateTampered,
			1, 2, "prev does not match record 0", false},
		{"header removed", drop(orig, 0), nil, StateTampered,
			1, 1, "seq 1 out of order (want 0)", false},
		{"record deleted", drop(orig, 5), nil, StateTampered,
			6, 6, "seq 6 out of order (want 5): record 5 missing", false},
		{"records swapped", joinLines(append(append(append([][]byte{}, lines[:3]...), lines[4], lines[3]), lines[5:]...)), nil, StateTampered,
			4, 4, "seq 4 out of order (want 3)", false},
		{"record duplicated", joinLines(append(append(append([][]byte{}, lines[:6]...), lines[5]), lines[6:]...)), nil, StateTampered,
			5, 7, "seq 5 out of order (want 6): a repeated or moved record", false},
		{"record inserted with a good chain", joinLines(append(append(append([][]byte{}, lines[:6]...), forge(6, KindNote, lines[5], `{"text":"hi"}`)), lines[6:]...)), nil, StateTampered,
			6, 8, "seq 6 out of order (want 7)", false},
		{"truncated at a boundary, with index", joinLines(lines[:9]), &seal, StateTampered,
			8, 0, "file truncated: index says 14 records, file has 9, end record missing", false},
		{"end record cut, with index", joinLines(lines[:13]), &seal, StateTampered,
			12, 0, "end record missing", false},
		// Without an index, a cut at a record boundary looks exactly
		// like a writer killed there: the reason the index keeps a Seal.
		{"truncated at a boundary, no index", joinLines(lines[:9]), nil, StateInterrupted, 0, 0, "", false},
		{"unsealed truncated at a boundary, no index", joinLines(splitLines(unsealed)[:5]), nil, StateInterrupted, 0, 0, "", false},
		{"truncated mid-line, with index", orig[:len(orig)-len(lines[13])-20], &seal, StateTampered,
			11, 0, "file truncated", true},
		{"truncated mid-line, no index", orig[:len(orig)-len(lines[13])-20], nil, StateInterrupted, 0, 0, "", true},
		{"newline of the end record cut, with index", orig[:len(orig)-1], &seal, StateTampered,
			12, 0, "file truncated", true},
		{"record after the end", append(append([]byte{}, orig...), forge(14, KindNote, lines[13], `{"text":"later"}`)...), nil, StateTampered,
			14, 15, "follows the end record", false},
		{"record after the end, with index", append(append([]byte{}, orig...), forge(14, KindNote, lines[13], `{"text":"later"}`)...), &seal, StateTampered,
			14, 15, "follows the end record", false},
		{"garbage after the end", append(append([]byte{}, orig...), "junk\n"...), nil, StateTampered,
			-1, 15, "line follows the end record", false},
		{"torn bytes after the end", append(append([]byte{}, orig...), `{"seq":14`...), nil, StateTampered,
			-1, 15, "9 bytes follow the end record", true},
		{"another closed session under this index", mustRead(t, other), &seal, StateTampered,
			5, 0, "file truncated", false},
		{"non-canonical spacing", edit(t, orig, 3, `"kind":"request"`, `"kind": "request"`), nil, StateTampered,
			-1, 4, "not in canonical form", false},
		{"unknown field", edit(t, orig, 3, `"kind":"request"`, `"kind":"request","x":1`), nil, StateTampered,
			-1, 4, "not a record", false},
		{"empty file", nil, nil, StateTampered, -1, 0, "no complete record", false},
		{"empty file, with index", nil, &seal, StateTampered, -1, 0, "no complete record", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Verify(bytes.NewReader(tt.file), tt.expect)
			if rep.State != tt.state || rep.OK() != (tt.state != StateTampered) {
				t.Fatalf("Verify() = %v %q, want state %s", rep, rep.Problems, tt.state)
			}
			if (rep.Torn > 0) != tt.torn {
				t.Errorf("Verify().Torn = %d, want torn %v", rep.Torn, tt.torn)
			}
			if tt.state != StateTampered {
				if len(rep.Problems) > 0 {
					t.Errorf("Verify().Problems = %q, want none", rep.Problems)
				}
				return
			}
			p := rep.Problems[0]
			if p.Seq != tt.seq || p.Line != tt.line || !strings.Contains(p.What, tt.what) {
				t.Errorf("Verify().Problems[0] = %q (seq %d, line %d), want seq %d, line %d, %q; all: %q",
					p, p.Seq, p.Line, tt.seq, tt.line, tt.what, rep.Problems)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Seq: 7, Line: 8, What: "hash chain broken"}, "record 7 (line 8): hash chain broken"},
		{Problem{Seq: -1, Line: 12, What: "not a record"}, "line 12: not a record"},
		{Problem{Seq: 41, What: "file truncated"}, "after record 41: file truncated"},
		{Problem{Seq: -1, What: "no complete record"}, "no complete record"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Problem%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestVerifyProblemLimit(t *testing.T) {
	path, _ := writeSession(t, pgHeader(), nil, Options{}, false)
	b := mustRead(t, path)
	b = append(b, bytes.Repeat([]byte("junk\n"), 10000)...)
	rep := Verify(bytes.NewReader(b), nil)
	if len(rep.Problems) != maxProblems || !strings.Contains(rep.Problems[maxProblems-1].What, "too many problems") {
		t.Errorf("Verify(10000 bad lines) = %d problems, last %q; want %d ending in too many problems",
			len(rep.Problems), rep.Problems[len(rep.Problems)-1], maxProblems)
	}
}

// TestCrash drops a Writer without Close after non-durable appends.
func TestCrash(t *testing.T) {
	entries := pgSession(DefaultResultCap)
	for i := range entries {
		entries[i].durable = false
	}
	path, pos := writeSession(t, pgHeader(), entries, Options{}, true)
	b := mustRead(t, path)
	rep := Verify(bytes.NewReader(b), nil)
	if !rep.OK() || rep.State != StateInterrupted || rep.Records != len(entries)+1 || rep.LastHash != pos.LastHash {
		t.Errorf("Verify(crashed) = %v %q, want interrupted with %d records ending %s", rep, rep.Problems, len(entries)+1, pos.LastHash)
	}
	if recs := readAll(t, b, nil); len(recs) != len(entries)+1 {
		t.Errorf("Read(crashed) = %d records, want %d", len(recs), len(entries)+1)
	}
}

// TestKill9 appends from a child process that then kills itself with
// SIGKILL: everything Append acknowledged must be in the file.
func TestKill9(t *testing.T) {
	if path := os.Getenv("SLUICE_RECORD_KILL9"); path != "" {
		w, err := Create(path, pgHeader(), Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for i := range 100 {
			if _, err := w.Append(KindNote, Note{Text: fmt.Sprint("note ", i)}, false); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	path := filepath.Join(t.TempDir(), "s")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "SLUICE_RECORD_KILL9="+path)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, %s; want killed by SIGKILL", err, out)
	}
	rep := Verify(bytes.NewReader(mustRead(t, path)), nil)
	if !rep.OK() || rep.State != StateInterrupted || rep.Records != 101 {
		t.Errorf("Verify(killed) = %v %q, want interrupted with 101 records", rep, rep.Problems)
	}
}

// A failed write leaves a well-formed prefix and a writer that refuses
// more.
func TestWriteFailure(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "s")
	w, err := Create(path, pgHeader(), Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(KindNote, Note{Text: "one"}, false); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the next write fails
	if _, err := w.Append(KindNote, Note{Text: "two"}, false); err == nil {
		t.Fatal("Append to a failed file: want error")
	}
	if _, err := w.Append(KindNote, Note{Text: "three"}, false); err == nil || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Errorf("Append after a failed write = %v, want ErrClosed", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed write = nil, want the write error")
	}
	rep := Verify(bytes.NewReader(mustRead(t, path)), nil)
	if !rep.OK() || rep.State != StateInterrupted || rep.Records != 2 {
		t.Errorf("Verify() = %v %q, want interrupted with 2 records", rep, rep.Problems)
	}
}

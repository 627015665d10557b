package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Seal is what an external index remembers of a recording when its
// Writer is closed (Writer.Seal), to hand to Verify later. It is what
// makes a cut at a record boundary, or a file rewritten with a fresh
// chain, detectable.
type Seal struct {
	Records  int    `json:"records"`   // lines, header and end record included
	LastHash string `json:"last_hash"` // hash of the final line (the end record)
}

// Report states. StateClosed is shared with End.State.
const (
	// StateInterrupted: no end record (the writer died or the host lost
	// power) and everything present chains; there is no sign of tampering
	// and no index said the file was closed.
	StateInterrupted = "interrupted"
	// StateTampered: at least one Problem.
	StateTampered = "tampered"
)

// maxProblems bounds a Report: past it, Verify stops reading.
const maxProblems = 100

// Problem is one piece of evidence against a recording.
type Problem struct {
	// Seq is the record concerned, as the record says; -1 when the line
	// is not a record or the problem concerns no record.
	Seq int
	// Line is the 1-based line; 0 when the problem is about the file as
	// a whole (then Seq, if set, is the last record present).
	Line int
	What string
}

func (p Problem) String() string {
	switch {
	case p.Line == 0 && p.Seq >= 0:
		return fmt.Sprintf("after record %d: %s", p.Seq, p.What)
	case p.Line == 0:
		return p.What
	case p.Seq < 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.What)
	default:
		return fmt.Sprintf("record %d (line %d): %s", p.Seq, p.Line, p.What)
	}
}

// Report is the outcome of Verify.
type Report struct {
	Records  int    // complete lines read (each should be a record)
	LastHash string // hash of the last complete line
	Sealed   bool   // an end record was found
	State    string // StateClosed, StateInterrupted or StateTampered
	// Torn is the length of an unterminated final line that was ignored:
	// a write cut short by a crash, never acknowledged to the writer's
	// caller. It is evidence of tampering only in a sealed file, or when
	// an index Seal says the file was closed.
	Torn     int
	Problems []Problem // at most 100, in file order
}

// OK reports whether nothing speaks against the file: it is closed, or
// interrupted with everything present intact.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.State != StateTampered }

func (r Report) String() string {
	var s string
	switch r.State {
	case StateClosed:
		s = fmt.Sprintf("closed: %d records, last hash %s", r.Records, r.LastHash)
	case StateInterrupted:
		s = fmt.Sprintf("interrupted after %d records (no end record), last hash %s", r.Records, r.LastHash)
	default:
		s = fmt.Sprintf("%s: %d records, %d problems", r.State, r.Records, len(r.Problems))
	}
	if r.Torn > 0 {
		s += fmt.Sprintf("; torn last line of %d bytes ignored", r.Torn)
	}
	return s
}

// Verify checks the recording in r: that every line is a record in
// canonical form, that seqs count up from 0, that each prev is the hash of
// the line before (Genesis for the header), that there is exactly one
// header and that it comes first, that the end record agrees with what
// precedes it and that nothing follows it, and that an encrypted
// recording has no plaintext records. Verify needs no key. Record times
// are not required to increase: wall clocks step, and the order that
// matters is the chain's.
//
// With expect (the index's Seal; nil when there is none) it also checks
// that the file holds exactly expect.Records lines ending in a line whose
// hash is expect.LastHash: that catches truncation at a record boundary,
// a removed end record and a rewritten file, which the chain alone cannot
// show. Without expect, a file that simply stops (no end record) is
// StateInterrupted, since a killed writer leaves just that.
//
// Verify reads r to the end (or to the 100th problem), holding one line at
// a time; a line longer than MaxRecordSize is a problem that stops it.
func Verify(r io.Reader, expect *Seal) Report {
	var (
		rep       Report
		lr        = newLineReader(r)
		prevHash  = Genesis // hash of the previous line
		prevSeq   = -1      // seq of the previous line, -1 if it was no record
		wantSeq   uint64
		lastSeq   = -1
		encrypted bool
		stopped   bool
	)
	add := func(p Problem) {
		if stopped {
			return
		}
		if len(rep.Problems) == maxProblems-1 {
			p = Problem{Seq: -1, Line: p.Line, What: "too many problems: verification stopped"}
			stopped = true
		}
		rep.Problems = append(rep.Problems, p)
	}
	for !stopped {
		b, torn, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				add(Problem{Seq: -1, Line: le.Line, What: le.Err.Error()})
			} else {
				add(Problem{Seq: -1, What: err.Error()})
			}
			stopped = true
			break
		}
		n := lr.line
		if torn {
			rep.Torn = len(b)
			if rep.Sealed {
				add(Problem{Seq: -1, Line: n, What: fmt.Sprintf("%d bytes follow the end record", len(b))})
			}
			break
		}
		hash := hashOf(b)
		rep.Records++
		rep.LastHash = hash

		rec, err := parseLine(b)
		if err != nil {
			if rep.Sealed {
				add(Problem{Seq: -1, Line: n, What: "line follows the end record"})
			} else {
				add(Problem{Seq: -1, Line: n, What: "not a record: " + err.Error()})
			}
			// The line presumably took a record's place; the next record
			// is not checked against it, since that could only repeat
			// this problem.
			prevHash, prevSeq = hash, -1
			wantSeq++
			continue
		}
		seq := int(min(rec.Seq, uint64(math.MaxInt32)))
		if rep.Sealed {
			add(Problem{Seq: seq, Line: n, What: "follows the end record"})
			prevHash, prevSeq = hash, seq
			continue
		}

		switch {
		case rec.Seq > wantSeq && rec.Seq-wantSeq == 1:
			add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("seq %d out of order (want %d): record %d missing", rec.Seq, wantSeq, wantSeq)})
		case rec.Seq > wantSeq:
			add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("seq %d out of order (want %d): records %d to %d missing", rec.Seq, wantSeq, wantSeq, rec.Seq-1)})
		case rec.Seq < wantSeq:
			add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("seq %d out of order (want %d): a repeated or moved record", rec.Seq, wantSeq)})
		}
		// Resynchronise, so that one gap is one problem.
		wantSeq = rec.Seq + 1

		switch {
		case n == 1:
			if rec.Prev != Genesis {
				add(Problem{Seq: seq, Line: n, What: "prev is not the genesis hash: not the start of a recording"})
			}
		case prevSeq >= 0 && rec.Prev != prevHash:
			add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("hash chain broken: prev does not match record %d (line %d)", prevSeq, n-1)})
		}

		switch {
		case n == 1:
			h, err := parseHeader(rec)
			if err != nil {
				add(Problem{Seq: seq, Line: n, What: err.Error()})
			}
			encrypted = h.Recorder.Encrypted
		case rec.Kind == KindHeader:
			add(Problem{Seq: seq, Line: n, What: "a second header: replaced or inserted header"})
		case rec.Kind == KindEnd:
			rep.Sealed = true
			var e End
			if err := json.Unmarshal(rec.Data, &e); err != nil {
				add(Problem{Seq: seq, Line: n, What: "end record: " + err.Error()})
				break
			}
			if e.Records != uint64(n-1) {
				add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("end record counts %d records before it, the file has %d", e.Records, n-1)})
			}
			if e.LastHash != rec.Prev {
				add(Problem{Seq: seq, Line: n, What: "end record's last_hash differs from its prev"})
			}
			if e.State != StateClosed {
				add(Problem{Seq: seq, Line: n, What: fmt.Sprintf("end record state %s, want %q", quote(e.State), StateClosed)})
			}
		case encrypted:
			if _, err := parseEnvelope(rec.Data); err != nil {
				add(Problem{Seq: seq, Line: n, What: "plaintext data in an encrypted recording"})
			}
		}
		prevHash, prevSeq, lastSeq = hash, seq, seq
	}

	if rep.Records == 0 && !stopped {
		add(Problem{Seq: -1, What: "no complete record: not a recording"})
	}
	if expect != nil && !stopped {
		switch {
		case rep.Records < expect.Records:
			what := fmt.Sprintf("file truncated: index says %d records, file has %d", expect.Records, rep.Records)
			if !rep.Sealed {
				what += ", end record missing"
			}
			add(Problem{Seq: lastSeq, What: what})
		case rep.Records > expect.Records:
			add(Problem{Seq: -1, Line: expect.Records + 1, What: fmt.Sprintf("file has %d records, index says %d: records added", rep.Records, expect.Records)})
		case rep.LastHash != expect.LastHash:
			add(Problem{Seq: lastSeq, Line: rep.Records, What: fmt.Sprintf("hash %s does not match the index (%s): record altered or file rewritten", short(rep.LastHash), short(expect.LastHash))})
		case !rep.Sealed:
			add(Problem{Seq: lastSeq, Line: rep.Records, What: "end record missing: index says the recording was closed"})
		}
	}

	switch {
	case len(rep.Problems) > 0:
		rep.State = StateTampered
	case rep.Sealed:
		rep.State = StateClosed
	default:
		rep.State = StateInterrupted
	}
	return rep
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

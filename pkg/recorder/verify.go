package recorder

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sluice-gate/sluice/pkg/record"
)

// Verify checks a session's recording against what the index remembers.
// A closed session's file must be exactly what the index sealed. An open
// or interrupted one's must chain, and contain the record the index last
// saw, with the same hash: cutting it back behind that point shows.
func Verify(e *Entry) record.Report {
	f, err := os.Open(e.File)
	if err != nil {
		return record.Report{State: record.StateTampered, Problems: []record.Problem{{Seq: -1, What: fmt.Sprintf("recording missing: %v", err)}}}
	}
	defer f.Close()
	if e.State == StateClosed || e.State == StateRefused {
		return record.Verify(f, e.Seal())
	}
	rep := record.Verify(f, nil)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return rep
	}
	var seen string
	n := 0
	stop := errors.New("stop")
	_ = record.Read(f, nil, func(r record.Record) error {
		n++
		if n == e.Records {
			seen = r.Hash
			return stop
		}
		return nil
	})
	switch {
	case n < e.Records:
		rep.Problems = append(rep.Problems, record.Problem{Seq: n - 1, What: fmt.Sprintf("file truncated: the index saw %d records, the file has %d", e.Records, n)})
	case seen != e.LastHash:
		rep.Problems = append(rep.Problems, record.Problem{Seq: e.Records - 1, Line: e.Records, What: "record does not match the hash the index saw: altered or rewritten"})
	}
	if len(rep.Problems) > 0 {
		rep.State = record.StateTampered
	}
	return rep
}

package record

import "unicode/utf8"

// Sample collects the first rows of a response for Result.RowsSample,
// stopping at the recording's result cap. Handlers add every row they
// forward until Add returns false, then keep counting rows themselves:
//
//	s := w.NewSample()
//	for each row { rows++; s.Add(row) }
//	res.RowsSample, res.Truncated = s.Rows(), s.Truncated()
//
// The cap is on the rows' JSON encoding (an upper bound of it: every
// character that JSON may escape is counted at its longest escape), so a
// full sample keeps a Result well under MaxRecordSize. A Sample is not
// safe for concurrent use.
type Sample struct {
	max, size int
	rows      [][]string
	truncated bool
}

func newSample(max int) *Sample {
	if max <= 0 {
		max = DefaultResultCap
	}
	return &Sample{max: max}
}

// Add appends a copy of row if it fits under the cap and reports whether
// it did. Once a row did not fit, the sample is truncated and Add accepts
// nothing more (so the sample stays a prefix of the response).
func (s *Sample) Add(row []string) bool {
	if s.truncated {
		return false
	}
	n := rowLen(row)
	if s.size+n > s.max {
		s.truncated = true
		return false
	}
	s.size += n
	s.rows = append(s.rows, append([]string(nil), row...))
	return true
}

// Rows returns the rows collected so far.
func (s *Sample) Rows() [][]string { return s.rows }

// Truncated reports whether a row was left out for lack of room.
func (s *Sample) Truncated() bool { return s.truncated }

// rowLen bounds the bytes row adds to a JSON array of rows: its brackets,
// the commas between its cells and before it, and each quoted cell.
func rowLen(row []string) int {
	n := 3 + len(row) // [ ] , and a comma per cell, counted generously
	for _, c := range row {
		n += jsonStringLen(c)
	}
	return n
}

// jsonStringLen bounds the length of s as a JSON string, quotes included.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				n += 2
			case b < 0x20 || b == 0x7f:
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// NewSample starts a sample bounded by max bytes (0: DefaultResultCap),
// for code that records without a Writer at hand.
func NewSample(max int) *Sample { return newSample(max) }

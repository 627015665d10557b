package mask

// Stats counts what masking did: values masked per column rule, and
// matches per detector. Counting is a slice increment, so it can stay on
// for every value. A Stats is not safe for concurrent use: keep one per
// connection or per goroutine and read it with Map. The zero value is
// ready to use.
//
// One Stats can follow several Maskers, as a connection gets a new policy
// decision per query: when it meets a different Masker it folds the counts
// so far into its map, which costs a map update once per change of Masker,
// not per value.
type Stats struct {
	m      *Masker
	counts []uint64 // rule i at i, detector d at len(m.rules)+d
	folded map[string]uint64
}

// Map returns the counts by label, leaving out zeros. A column rule's
// label is its Name or "column:<Column>"; detector matches are labelled
// "detector:<name>", whichever rule enabled the detector. Labels that
// coincide are added together.
func (s *Stats) Map() map[string]uint64 {
	out := make(map[string]uint64, len(s.folded)+4)
	for k, n := range s.folded {
		out[k] += n
	}
	for i, n := range s.counts {
		if n != 0 {
			out[s.m.label(i)] += n
		}
	}
	return out
}

// Reset zeroes every count.
func (s *Stats) Reset() {
	clear(s.counts)
	clear(s.folded)
}

func (s *Stats) bind(m *Masker) {
	if s.m != nil {
		for i, n := range s.counts {
			if n != 0 {
				s.add(s.m.label(i), n)
			}
		}
	}
	s.m = m
	size := len(m.rules) + int(numDetectors)
	if cap(s.counts) >= size {
		s.counts = s.counts[:size]
		clear(s.counts)
	} else {
		s.counts = make([]uint64, size)
	}
}

func (s *Stats) add(label string, n uint64) {
	if s.folded == nil {
		s.folded = make(map[string]uint64)
	}
	s.folded[label] += n
}

func (s *Stats) countRule(m *Masker, r *Rule) {
	if r.owner != m {
		// Built by hand or by another Masker: no slot to count in.
		s.add(r.label(), 1)
		return
	}
	if s.m != m {
		s.bind(m)
	}
	s.counts[r.index]++
}

func (s *Stats) countDetector(m *Masker, d detector) {
	if s.m != m {
		s.bind(m)
	}
	s.counts[len(m.rules)+int(d)]++
}

// label names count slot i of m.
func (m *Masker) label(i int) string {
	if i < len(m.rules) {
		return m.rules[i].label()
	}
	return "detector:" + detectorNames[i-len(m.rules)]
}

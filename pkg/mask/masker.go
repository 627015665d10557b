package mask

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Masker applies a compiled rule set. It is immutable and safe for
// concurrent use.
type Masker struct {
	rules   []Rule // as given, each pointing back at this Masker
	columns []columnRule
	paths   []pathRule
	steps   []pathStep // of all paths, one after the other
	detect  detSet
	strat   [numDetectors]Strategy
	macs    sync.Pool // *macState keyed with the Masker's key; no New without a key
}

type columnRule struct {
	pattern columnPattern
	rule    int
}

// Text rewrites a value at most this many times before giving up on it.
// Replacing a match changes what its neighbours see (a phone number that
// ran into an SSN is a phone number once the SSN is gone), so Text scans
// its own output again until nothing matches; real data settles in one or
// two passes, and only crafted nesting needs more.
const maxPasses = 8

// New compiles rules. The key keys the hash strategy and must be non-empty
// when any rule hashes; New copies it. Rules are checked as ParseRules
// checks them, and a rule's position decides precedence: the first column
// rule covering a column, the first path rule covering a JSON value, and
// the first detector rule naming a detector, win.
func New(rules []Rule, key []byte) (*Masker, error) {
	if len(rules) > maxRules {
		return nil, fmt.Errorf("%w: %d rules exceed the limit of %d", ErrInvalidRule, len(rules), maxRules)
	}
	m := &Masker{rules: slices.Clone(rules)}
	hashes := false
	for i := range m.rules {
		r := &m.rules[i]
		if reason := r.check(); reason != "" {
			return nil, &RuleError{Index: i, Reason: reason}
		}
		r.owner, r.index = m, i
		hashes = hashes || r.Strategy == Hash
		if r.Column != "" {
			p, _ := compileColumn(r.Column)
			m.columns = append(m.columns, columnRule{p, i})
			continue
		}
		if r.Path != "" {
			steps, _ := compilePath(r.Path)
			p := int32(len(m.paths))
			m.paths = append(m.paths, pathRule{first: len(m.steps), empty: len(steps) == 0, rule: i})
			for k := range steps {
				steps[k].path = p
			}
			if len(steps) > 0 {
				steps[len(steps)-1].last = true
			}
			m.steps = append(m.steps, steps...)
			continue
		}
		set, _ := detectorsFor(r.Detector)
		for d := range numDetectors {
			if set.has(d) && !m.detect.has(d) {
				m.detect |= 1 << d
				m.strat[d] = r.Strategy
			}
		}
	}
	if hashes && len(key) == 0 {
		return nil, ErrNoHashKey
	}
	if len(key) > 0 {
		key := bytes.Clone(key)
		m.macs.New = func() any { return newMACState(key) }
	}
	return m, nil
}

// Empty reports whether there are no rules at all, so callers can skip
// masking, and the copies it needs, entirely.
func (m *Masker) Empty() bool { return len(m.rules) == 0 }

// Detects reports whether Text can find anything: whether any detector
// rule exists.
func (m *Masker) Detects() bool { return m.detect != 0 }

// Column returns the first column rule, in rule order, covering column of
// table. table may be schema-qualified ("public.users") and is "" when the
// caller does not know it, as for an expression; only rules without a
// table part apply then. Matching ignores case. Callers look rules up once
// per result column, not once per value.
func (m *Masker) Column(table, column string) (Rule, bool) {
	if len(m.columns) == 0 {
		return Rule{}, false
	}
	column = strings.ToLower(column)
	var schema string
	table = strings.ToLower(table)
	if k := strings.LastIndexByte(table, '.'); k >= 0 {
		schema, table = table[:k], table[k+1:]
		// "db.schema.table": the schema is what a rule can name.
		if k := strings.LastIndexByte(schema, '.'); k >= 0 {
			schema = schema[k+1:]
		}
	}
	for _, c := range m.columns {
		if c.pattern.matches(schema, table, column) {
			return m.rules[c.rule], true
		}
	}
	return Rule{}, false
}

// HasColumns reports whether any column rule exists: callers need column
// names (a catalog lookup) only then.
func (m *Masker) HasColumns() bool { return len(m.columns) > 0 }

// TableRule returns the first column rule that names a table matching
// table (schema-qualified or not), whatever its column part: the rule to
// apply to an expression computed over that table's columns, whose origin
// column is unknown. Rules without a table part never match here.
func (m *Masker) TableRule(table string) (Rule, bool) {
	table = strings.ToLower(table)
	var schema string
	if k := strings.LastIndexByte(table, '.'); k >= 0 {
		schema, table = table[:k], table[k+1:]
	}
	for _, c := range m.columns {
		p := c.pattern
		if p.table == "" || !glob(p.table, table) {
			continue
		}
		if p.schema == "" || schema == "" || glob(p.schema, schema) {
			return m.rules[c.rule], true
		}
	}
	return Rule{}, false
}

// Value masks a whole value with r's strategy, appending to dst[:0], and
// returns the result. With Null it returns null == true and out is
// dst[:0]: the caller must send SQL NULL or JSON null, not an empty value.
// out never aliases v; dst and v must not overlap.
//
// Partial keeps an e-mail address's first character and domain when all
// of v is an address. Hash hashes v exactly as given. A strategy Value
// cannot honour (a hand-built Rule with an unknown strategy, or Hash on a
// Masker without a key) redacts: masking fails closed.
//
// Callers pass SQL NULL through without calling Value: it carries no data.
// st, if not nil, counts the value against r.
func (m *Masker) Value(dst, v []byte, r Rule, st *Stats) (out []byte, null bool) {
	if st != nil {
		st.countRule(m, &r)
	}
	dst = dst[:0]
	switch r.Strategy {
	case Null:
		return dst, true
	case Partial:
		if at, ok := isEmail(v); ok {
			return appendEmailPartial(dst, v, at), false
		}
		return appendPartial(dst, v), false
	case Hash:
		if x, ok := m.macs.Get().(*macState); ok {
			dst = appendHash(dst, x, v)
			m.macs.Put(x)
			return dst, false
		}
	}
	return append(dst, redacted...), false
}

// Text runs the detector rules over v and replaces every match, keeping
// the rest of v. With no match it returns v itself and 0, without copying
// or allocating, so callers can write the value through unchanged.
// Otherwise out is built from dst[:0], though it may end up in a fresh
// buffer; dst and v must not overlap.
//
// Inside text Redact writes "[REDACTED:<detector>]"; Partial keeps the
// last four digits (an address keeps its first character and domain, and
// jwt, aws_access_key_id and private_key are redacted); Null removes the
// match; Hash writes the pseudonym of the match's canonical form: the
// digits of a pan, us_ssn or phone, an iban in upper case without spaces,
// an address in lower case, anything else as found. So the card
// "4111 1111 1111 1111" in text hashes like a column holding
// "4111111111111111".
//
// The output is a fixed point: Text finds nothing in it. Should masking
// keep exposing new matches after several passes (only crafted input
// does), the whole value becomes "[REDACTED]". Markers are longer than the
// shortest matches, so out can be up to about four times as long as v.
// st, if not nil, counts matches per detector.
func (m *Masker) Text(dst, v []byte, st *Stats) (out []byte, hits int) {
	if m.detect == 0 {
		return v, 0
	}
	mt, ok := find(v, 0, m.detect)
	if !ok {
		return v, 0
	}
	out, hits = m.rewrite(dst[:0], v, mt, st)
	var spare []byte
	for pass := 1; ; pass++ {
		mt, ok = find(out, 0, m.detect)
		if !ok {
			return out, hits
		}
		if pass == maxPasses || len(out) > 4*len(v)+64 {
			return append(out[:0], redacted...), hits
		}
		var n int
		spare, n = m.rewrite(spare[:0], out, mt, st)
		out, spare = spare, out
		hits += n
	}
}

// rewrite copies v to out with every match from first on replaced.
func (m *Masker) rewrite(out, v []byte, first match, st *Stats) ([]byte, int) {
	out = slices.Grow(out, len(v)+len(v)/8)
	var x *macState
	hits, last := 0, 0
	for mt, ok := first, true; ok; mt, ok = find(v, last, m.detect) {
		out = append(out, v[last:mt.start]...)
		b := v[mt.start:mt.end]
		switch s := m.strat[mt.det]; {
		case s == Null:
		case s == Partial && mt.det == detEmail:
			out = appendEmailPartial(out, b, bytes.IndexByte(b, '@'))
		case s == Partial && mt.det != detJWT && mt.det != detAWS && mt.det != detPrivateKey:
			out = appendPartial(out, b)
		case s == Hash:
			if x == nil {
				x = m.macs.Get().(*macState)
			}
			out = appendHash(out, x, canonical(x.canon[:0], b, mt.det))
		default:
			out = append(out, redactMarker[mt.det]...)
		}
		if st != nil {
			st.countDetector(m, mt.det)
		}
		hits++
		last = mt.end
	}
	if x != nil {
		m.macs.Put(x)
	}
	return append(out, v[last:]...), hits
}

package mask

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Strategy says how a value or a match is replaced.
type Strategy string

const (
	// Redact replaces a whole value with "[REDACTED]" and a match in text
	// with "[REDACTED:<detector>]".
	Redact Strategy = "redact"
	// Partial keeps the last four letters or digits and stars the rest,
	// keeping separators; an e-mail address keeps its first character and
	// its domain. Inside text, jwt, aws_access_key_id and private_key
	// matches are redacted instead: four characters of a secret are
	// useless to a reader and still help an attacker.
	Partial Strategy = "partial"
	// Hash replaces the value with "h:" and the first 16 hex digits of
	// HMAC-SHA256(key, value): a stable pseudonym that still joins.
	Hash Strategy = "hash"
	// Null turns a whole value into SQL NULL or JSON null (see
	// Masker.Value) and removes a match from text.
	Null Strategy = "null"
)

func (s Strategy) valid() bool {
	switch s {
	case Redact, Partial, Hash, Null:
		return true
	}
	return false
}

// AnyDetector in Rule.Detector selects every detector.
const AnyDetector = "*"

// Limits on what a policy may ask for; rules come from policy authors, so
// their size is bounded like any other input.
const (
	maxRules   = 1024
	maxPattern = 255
	maxName    = 255
)

// ErrInvalidRule is wrapped by every error about a malformed rule.
var ErrInvalidRule = errors.New("invalid mask rule")

// ErrNoHashKey is returned by New when a rule hashes but there is no key:
// an unkeyed hash of a card number or an SSN is reversed by enumeration.
var ErrNoHashKey = errors.New("mask: hash strategy needs a non-empty key")

// RuleError says which rule is wrong and why.
type RuleError struct {
	Index  int
	Reason string
}

func (e *RuleError) Error() string { return fmt.Sprintf("mask rule %d: %s", e.Index, e.Reason) }

// Unwrap lets callers test for ErrInvalidRule.
func (e *RuleError) Unwrap() error { return ErrInvalidRule }

// Rule is one mask rule: exactly one of Column, Detector and Path is set.
//
// Column is "column", "table.column" or "schema.table.column". Every part
// is a path.Match glob, matched case-insensitively. A rule without a table
// part matches the column in any table, and also when the caller does not
// know the table (an expression column); a rule with a table part matches
// only when the caller knows the table. "users.email" matches the tables
// users and public.users; "public.users.email" matches public.users and,
// because masking too much is the safe mistake, an unqualified users.
//
// Detector is a detector name or AnyDetector.
//
// Path selects values of a JSON document, such as "$.items[*].card", in
// the syntax the package documentation gives. Only JSON walkers, through
// PathWalker, use path rules.
//
// Rules returned by Masker.Column remember which Masker they came from so
// that Stats can count them without a map lookup; compare rules by their
// fields, not with ==.
type Rule struct {
	// Name labels the rule for audit records and, for a column rule, in
	// Stats (detector matches are counted per detector); optional.
	Name     string
	Column   string
	Detector string
	Path     string
	Strategy Strategy

	owner *Masker
	index int
}

// label names the rule in Stats.
func (r *Rule) label() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.Column != "":
		return "column:" + r.Column
	case r.Path != "":
		return "path:" + r.Path
	}
	return "detector:" + r.Detector
}

// ParseRules converts the mask rules of a policy decision. It is strict:
// an unknown key, a non-string value, an unknown detector or strategy, or
// a rule that names more or fewer than one of column, detector and path
// is an error naming the rule's index.
func ParseRules(list []map[string]any) ([]Rule, error) {
	if len(list) > maxRules {
		return nil, fmt.Errorf("%w: %d rules exceed the limit of %d", ErrInvalidRule, len(list), maxRules)
	}
	rules := make([]Rule, 0, len(list))
	for i, raw := range list {
		r, reason := parseRule(raw)
		if reason == "" {
			reason = r.check()
		}
		if reason != "" {
			return nil, &RuleError{Index: i, Reason: reason}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(raw map[string]any) (Rule, string) {
	var r Rule
	// Sorted so that a rule with several mistakes always reports the same one.
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		s, ok := raw[k].(string)
		if !ok {
			return r, fmt.Sprintf("%s is %T, want string", k, raw[k])
		}
		if s == "" {
			return r, fmt.Sprintf("%s is empty", k)
		}
		switch k {
		case "name":
			r.Name = s
		case "column":
			r.Column = s
		case "detector":
			r.Detector = s
		case "path":
			r.Path = s
		case "strategy":
			r.Strategy = Strategy(s)
		default:
			return r, fmt.Sprintf("unknown key %q", k)
		}
	}
	if r.Strategy == "" {
		return r, "strategy is missing"
	}
	return r, ""
}

// check returns why r is unusable, or "".
func (r *Rule) check() string {
	var kinds []string
	for _, k := range [...]struct{ v, name string }{{r.Column, "a column"}, {r.Detector, "a detector"}, {r.Path, "a path"}} {
		if k.v != "" {
			kinds = append(kinds, k.name)
		}
	}
	switch {
	case len(kinds) == 0:
		return "needs a column or a detector or a path"
	case len(kinds) == 2:
		return "has both " + kinds[0] + " and " + kinds[1]
	case len(kinds) == 3:
		return "has a column, a detector and a path"
	case !r.Strategy.valid():
		return fmt.Sprintf("unknown strategy %q (want redact, partial, hash or null)", r.Strategy)
	case len(r.Name) > maxName:
		return fmt.Sprintf("name is %d bytes, limit %d", len(r.Name), maxName)
	}
	if r.Detector != "" {
		if _, ok := detectorsFor(r.Detector); !ok {
			return fmt.Sprintf("unknown detector %q", r.Detector)
		}
		return ""
	}
	if r.Path != "" {
		if _, err := compilePath(r.Path); err != nil {
			return err.Error()
		}
		return ""
	}
	if _, err := compileColumn(r.Column); err != nil {
		return err.Error()
	}
	return ""
}

// detectorsFor returns the detectors a Rule.Detector value selects.
func detectorsFor(name string) (detSet, bool) {
	if name == AnyDetector {
		return allDetectors, true
	}
	for d, n := range detectorNames {
		if n == name {
			return 1 << d, true
		}
	}
	return 0, false
}

// columnPattern is a compiled Rule.Column: lower-cased globs, "" for a
// part the rule does not name.
type columnPattern struct {
	schema, table, column string
}

func compileColumn(s string) (columnPattern, error) {
	if len(s) > maxPattern {
		return columnPattern{}, fmt.Errorf("column pattern is %d bytes, limit %d", len(s), maxPattern)
	}
	parts := strings.Split(strings.ToLower(s), ".")
	for _, p := range parts {
		if p == "" {
			return columnPattern{}, fmt.Errorf("column %q has an empty part", s)
		}
		// path.Match validates the whole pattern even when it fails early.
		if _, err := path.Match(p, ""); err != nil {
			return columnPattern{}, fmt.Errorf("column %q: bad glob %q", s, p)
		}
	}
	switch len(parts) {
	case 1:
		return columnPattern{column: parts[0]}, nil
	case 2:
		return columnPattern{table: parts[0], column: parts[1]}, nil
	case 3:
		return columnPattern{schema: parts[0], table: parts[1], column: parts[2]}, nil
	}
	return columnPattern{}, fmt.Errorf("column %q: want column, table.column or schema.table.column", s)
}

// matches reports whether p covers column of table, which the caller has
// lower-cased and split; table "" means unknown.
func (p *columnPattern) matches(schema, table, column string) bool {
	if !glob(p.column, column) {
		return false
	}
	if p.table == "" {
		return true
	}
	if table == "" || !glob(p.table, table) {
		return false
	}
	return p.schema == "" || schema == "" || glob(p.schema, schema)
}

func glob(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}

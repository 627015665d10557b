package mask

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	mixed,
	"+1 415 5555 123-45-6789",
	"4111111111111111@example.com",
	"AKIAIOSFODNN7EXAMPLE@example.com",
	"a@b.co@c.org a****@example.com *@x.io",
	"h:4111111111111111 h:0123456789abcdef",
	"key:\n" + rsaKey + "\n" + sshKey,
	"-----BEGIN PRIVATE KEY-----\nMIIE",
	jwtSample + "." + jwtSample,
	"GB82 WEST 1234 5698 7654 32 DE89 3704 0044 0532 0130 00 0012",
	"4111 1111 1111 1111 1111 1111 5555-5555-5555-4444-4444",
	"+44 (0)20 7946 0958 (415) 555-2671 1-800-555-0199",
	"José.müller@bücher.de \xff\xfe 4111111111111111 \xe2\x82",
	"2024-01-15 192.168.1.10 v1.2.3 3.4111111111111111",
	// Found by fuzzing: masking one match exposes another.
	"+10000000+10000000",
	"0@0.A0@0.A0 0@0.A0@0.A0",
	"AKIA2222222222222222@0.aA",
}

// fuzzMaskers cover every strategy, and a mix of them, with all detectors.
func fuzzMaskers(t testing.TB) []*Masker {
	ms := []*Masker{mustNew(t, testKey,
		Rule{Detector: "pan", Strategy: Partial},
		Rule{Detector: "email", Strategy: Hash},
		Rule{Detector: "us_ssn", Strategy: Null},
		Rule{Detector: "*", Strategy: Redact},
	)}
	for _, s := range []Strategy{Redact, Partial, Hash, Null} {
		ms = append(ms, mustNew(t, testKey, Rule{Detector: "*", Strategy: s}))
	}
	return ms
}

func FuzzText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	ms := fuzzMaskers(f)
	f.Fuzz(func(t *testing.T, in string) {
		v := []byte(in)
		for i, m := range ms {
			var st Stats
			out, hits := m.Text(nil, v, &st)
			if hits == 0 {
				if len(out) != len(v) || len(v) > 0 && &out[0] != &v[0] {
					t.Fatalf("masker %d: Text(%q) = %q with no hits, want v itself", i, v, out)
				}
				continue
			}
			if len(out) > 4*len(v)+64 {
				t.Fatalf("masker %d: Text(%q) = %d bytes from %d", i, v, len(out), len(v))
			}
			if again, n := m.Text(nil, out, nil); n != 0 {
				t.Fatalf("masker %d: Text(%q) = %q, in which Text finds %d more (%q)", i, v, out, n, again)
			}
			var counted uint64
			for _, n := range st.Map() {
				counted += n
			}
			if counted != uint64(hits) {
				t.Fatalf("masker %d: Text(%q) hits = %d, Stats counted %d", i, v, hits, counted)
			}
			reused, _ := m.Text(bytes.Repeat([]byte{'#'}, 7), v, nil)
			if !bytes.Equal(reused, out) {
				t.Fatalf("masker %d: Text(%q) into a used buffer = %q, want %q", i, v, reused, out)
			}
		}
	})
}

func FuzzValue(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, s := range []string{"alice@example.com", "a@example.com", "4111-1111-1111-1111", "abcd", "Müller", "@", "a@", ".a@b.co"} {
		f.Add(s)
	}
	m := mustNew(f, testKey, Rule{Column: "x", Strategy: Redact})
	f.Fuzz(func(t *testing.T, in string) {
		v := []byte(in)
		rule := func(s Strategy) Rule { return Rule{Column: "x", Strategy: s} }

		if out, null := m.Value(nil, v, rule(Redact), nil); string(out) != redacted || null {
			t.Fatalf("Value(%q, redact) = %q, %v", v, out, null)
		}
		if out, null := m.Value(nil, v, rule(Null), nil); len(out) != 0 || !null {
			t.Fatalf("Value(%q, null) = %q, %v", v, out, null)
		}
		h1, _ := m.Value(nil, v, rule(Hash), nil)
		h2, _ := m.Value(make([]byte, 40), v, rule(Hash), nil)
		if !bytes.Equal(h1, h2) || len(h1) != hashMarkerLen || !isHashMarker(h1, 0) {
			t.Fatalf("Value(%q, hash) = %q then %q", v, h1, h2)
		}

		out, null := m.Value(nil, v, rule(Partial), nil)
		if null || len(out) > len(v) {
			t.Fatalf("Value(%q, partial) = %q, %v: longer than the input", v, out, null)
		}
		if utf8.Valid(v) && !utf8.Valid(out) {
			t.Fatalf("Value(%q, partial) = %q: invalid UTF-8 from valid input", v, out)
		}
		if !isASCII(v) {
			return
		}
		if len(out) != len(v) {
			t.Fatalf("Value(%q, partial) = %q: %d bytes, want %d", v, out, len(out), len(v))
		}
		if at, ok := isEmail(v); ok {
			want := string(v[:1]) + strings.Repeat("*", at-1) + string(v[at:])
			if at == 1 {
				want = "*" + string(v[1:])
			}
			if string(out) != want {
				t.Fatalf("Value(%q, partial) = %q, want %q", v, out, want)
			}
			return
		}
		kept := 0
		for k := range v {
			switch {
			case out[k] == '*' && isAlnum(v[k]):
			case out[k] != v[k]:
				t.Fatalf("Value(%q, partial) = %q: byte %d changed to %q", v, out, k, out[k])
			case isAlnum(v[k]):
				kept++
			}
		}
		if kept > keep {
			t.Fatalf("Value(%q, partial) = %q: %d letters or digits left, want at most %d", v, out, kept, keep)
		}
	})
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func FuzzParseRules(f *testing.F) {
	f.Add(`[{"column": "users.email", "strategy": "partial"}, {"detector": "*", "strategy": "hash", "name": "all"}]`)
	f.Add(`[{"column": "[", "strategy": "redact"}]`)
	f.Add(`[{"column": "a.b.c.d", "strategy": "null", "x": 1}]`)
	f.Add(`[{"path": "$.items[*][\"api-key\"]", "strategy": "hash"}, {"path": "$..pw", "strategy": "null"}]`)
	f.Fuzz(func(t *testing.T, doc string) {
		var list []map[string]any
		if json.Unmarshal([]byte(doc), &list) != nil {
			return
		}
		rules, err := ParseRules(list)
		if err != nil {
			return
		}
		m, err := New(rules, testKey)
		if err != nil {
			t.Fatalf("New(ParseRules(%s)) = %v, want the rules ParseRules accepted to compile", doc, err)
		}
		m.Column("public.users", "email")
		m.Text(nil, []byte(mixed), nil)
		w := m.PathWalker()
		walk(w, "items", "[]", "api-key", "pw")
		w.Rule()
	})
}

package mask

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
)

func TestCompilePath(t *testing.T) {
	name := func(s string) pathStep { return pathStep{name: s} }
	deep := func(s string) pathStep { return pathStep{name: s, deep: true} }
	star := pathStep{any: true}
	tests := []struct {
		path string
		want []pathStep
	}{
		{"$", nil},
		{"$.items", []pathStep{name("items")}},
		{"$.items[*].card", []pathStep{name("items"), star, name("card")}},
		{"$.items.*.card", []pathStep{name("items"), star, name("card")}},
		{"$[*]", []pathStep{star}},
		{"$.*", []pathStep{star}},
		{`$["kubernetes.io/name"]`, []pathStep{name("kubernetes.io/name")}},
		{`$.metadata.annotations["a\"b\\c"]`, []pathStep{name("metadata"), name("annotations"), name(`a"b\c`)}},
		{`$["caf\u00e9"].x`, []pathStep{name("café"), name("x")}},
		{`$[""]`, []pathStep{name("")}},
		{"$..password", []pathStep{deep("password")}},
		{"$..*", []pathStep{{any: true, deep: true}}},
		{"$..[*]", []pathStep{{any: true, deep: true}}},
		{`$..["api-key"]`, []pathStep{deep("api-key")}},
		{"$.spec..env[*].value", []pathStep{name("spec"), deep("env"), star, name("value")}},
		{"$._x1.Größe", []pathStep{name("_x1"), name("Größe")}},
	}
	for _, tt := range tests {
		got, err := compilePath(tt.path)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("compilePath(%q) = %+v, %v, want %+v", tt.path, got, err, tt.want)
		}
	}
}

func TestParseRulesPath(t *testing.T) {
	rules, err := ParseRules([]map[string]any{
		{"path": "$.items[*].card", "strategy": "redact"},
		{"path": "$..password", "strategy": "null", "name": "passwords"},
	})
	if err != nil {
		t.Fatalf("ParseRules = %v", err)
	}
	want := []Rule{
		{Path: "$.items[*].card", Strategy: Redact},
		{Name: "passwords", Path: "$..password", Strategy: Null},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("ParseRules = %+v, want %+v", rules, want)
	}
}

func TestParseRulesPathErrors(t *testing.T) {
	ok := map[string]any{"path": "$.a", "strategy": "redact"}
	tests := []struct {
		rule map[string]any
		want string
	}{
		{map[string]any{"path": "$.a", "column": "a", "strategy": "redact"}, "has both a column and a path"},
		{map[string]any{"path": "$.a", "detector": "pan", "strategy": "redact"}, "has both a detector and a path"},
		{map[string]any{"path": "$.a", "column": "a", "detector": "pan", "strategy": "redact"}, "has a column, a detector and a path"},
		{map[string]any{"path": 1, "strategy": "redact"}, "path is int, want string"},
		{map[string]any{"path": "", "strategy": "redact"}, "path is empty"},
		{map[string]any{"path": "$.a"}, "strategy is missing"},
		{map[string]any{"path": "items", "strategy": "redact"}, "does not start with $"},
		{map[string]any{"path": ".items", "strategy": "redact"}, "does not start with $"},
		{map[string]any{"path": "$items", "strategy": "redact"}, "unexpected 'i' at byte 1"},
		{map[string]any{"path": "$.", "strategy": "redact"}, "ends after '.'"},
		{map[string]any{"path": "$..", "strategy": "redact"}, "ends after '.'"},
		{map[string]any{"path": "$...a", "strategy": "redact"}, `unexpected '.' at byte 3`},
		{map[string]any{"path": "$.a.", "strategy": "redact"}, "ends after '.'"},
		{map[string]any{"path": "$.[*]", "strategy": "redact"}, "'.' before '['"},
		{map[string]any{"path": "$.items[0]", "strategy": "redact"}, "array indexes and slices are not supported"},
		{map[string]any{"path": "$.items[-1]", "strategy": "redact"}, "array indexes and slices are not supported"},
		{map[string]any{"path": "$.items[1:2]", "strategy": "redact"}, "array indexes and slices are not supported"},
		{map[string]any{"path": "$['a']", "strategy": "redact"}, "double quotes"},
		{map[string]any{"path": `$["a"`, "strategy": "redact"}, "unterminated"},
		{map[string]any{"path": `$["a\"]`, "strategy": "redact"}, "unterminated"},
		{map[string]any{"path": `$["a"x`, "strategy": "redact"}, "unterminated"},
		{map[string]any{"path": `$["\x"]`, "strategy": "redact"}, "bad name"},
		{map[string]any{"path": "$[\"\xff\"]", "strategy": "redact"}, "bad name"},
		{map[string]any{"path": "$[?(@.a)]", "strategy": "redact"}, `want [*] or ["name"]`},
		{map[string]any{"path": "$[*", "strategy": "redact"}, `want [*] or ["name"]`},
		{map[string]any{"path": "$.api-key", "strategy": "redact"}, `unexpected '-' at byte 5`},
		{map[string]any{"path": "$.1a", "strategy": "redact"}, `unexpected '1' at byte 2`},
		{map[string]any{"path": "$.a b", "strategy": "redact"}, `unexpected ' ' at byte 3`},
		{map[string]any{"path": "$.a\xff", "strategy": "redact"}, "not UTF-8"},
		{map[string]any{"path": "$" + strings.Repeat(".a", 128), "strategy": "redact"}, "limit 255"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseRules([]map[string]any{ok, tt.rule})
			var re *RuleError
			if !errors.As(err, &re) || re.Index != 1 || !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("ParseRules(%v) = %v, want a RuleError for rule 1", tt.rule, err)
			}
			if !strings.HasPrefix(err.Error(), "mask rule 1: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRules(%v) = %q, want it to say %q", tt.rule, err, tt.want)
			}
		})
	}
}

// walk enters each step of path: "[]" an element, anything else a member.
func walk(w *PathWalker, path ...string) {
	for _, s := range path {
		if s == "[]" {
			w.EnterElement()
		} else {
			w.EnterMember([]byte(s))
		}
	}
}

func TestPathWalker(t *testing.T) {
	m := mustNew(t, testKey,
		Rule{Path: "$.items[*].card", Strategy: Redact},
		Rule{Path: `$.items[*]["api-key"]`, Strategy: Hash},
		Rule{Path: "$..password", Strategy: Null},
		Rule{Path: "$.secrets", Strategy: Partial},
		Rule{Path: "$.spec..env[*].value", Strategy: Redact},
		Rule{Path: "$.a.*.b", Strategy: Redact},
		Rule{Detector: "pan", Strategy: Redact},
		Rule{Column: "card", Strategy: Redact},
	)
	tests := []struct {
		path []string
		want string // the covering rule's Path, "" for none
	}{
		{nil, ""},
		{[]string{"items"}, ""},
		{[]string{"items", "[]"}, ""},
		{[]string{"items", "[]", "card"}, "$.items[*].card"},
		{[]string{"items", "[]", "card", "x", "[]"}, "$.items[*].card"},
		{[]string{"items", "[]", "Card"}, ""},
		{[]string{"items", "[]", "api-key"}, `$.items[*]["api-key"]`},
		{[]string{"items", "x", "card"}, "$.items[*].card"}, // [*] is any member too, as in RFC 9535
		{[]string{"item", "[]", "card"}, ""},
		{[]string{"card"}, ""},
		{[]string{"password"}, "$..password"},
		{[]string{"a", "[]", "[]", "b", "password"}, "$..password"},
		{[]string{"items", "[]", "password"}, "$..password"},
		{[]string{"passwords"}, ""},
		{[]string{"secrets"}, "$.secrets"},
		{[]string{"secrets", "x", "[]", "password"}, "$..password"}, // the earlier rule wins
		{[]string{"secrets", "x", "[]", "y"}, "$.secrets"},
		{[]string{"spec", "env", "[]", "value"}, "$.spec..env[*].value"},
		{[]string{"spec", "containers", "[]", "env", "[]", "value"}, "$.spec..env[*].value"},
		{[]string{"spec", "env", "[]", "name"}, ""},
		{[]string{"env", "[]", "value"}, ""},
		{[]string{"a", "x", "b"}, "$.a.*.b"},
		{[]string{"a", "[]", "b"}, "$.a.*.b"},
		{[]string{"a", "b"}, ""},
		{[]string{"a", "x", "y", "b"}, ""},
	}
	w := m.PathWalker()
	for _, tt := range tests {
		walk(w, tt.path...)
		r, ok := w.Rule()
		if ok != (tt.want != "") || r.Path != tt.want {
			t.Errorf("Rule() at %q = %q, %v, want %q", tt.path, r.Path, ok, tt.want)
		}
		for range tt.path {
			w.Leave()
		}
		if len(w.frames) != 1 || w.dead != 0 || len(w.states) != len(m.paths) {
			t.Fatalf("after leaving %q: %d frames, %d states, want the root's 1 and %d", tt.path, len(w.frames), len(w.states), len(m.paths))
		}
	}
	w.Leave() // at the root: nothing to leave
	if _, ok := w.Rule(); ok {
		t.Error("Rule() at the root after an extra Leave = true, want false")
	}
}

func TestPathWalkerRoot(t *testing.T) {
	m := mustNew(t, nil, Rule{Path: "$.a", Strategy: Partial}, Rule{Path: "$", Strategy: Redact}, Rule{Path: "$.b", Strategy: Null})
	w := m.PathWalker()
	for _, tt := range []struct {
		path []string
		want string
	}{{nil, "$"}, {[]string{"a"}, "$.a"}, {[]string{"b"}, "$"}, {[]string{"[]"}, "$"}} {
		w.Reset()
		walk(w, tt.path...)
		if r, ok := w.Rule(); !ok || r.Path != tt.want {
			t.Errorf("Rule() at %q = %q, %v, want %q", tt.path, r.Path, ok, tt.want)
		}
	}
}

func TestPathWalkerLongName(t *testing.T) {
	long := strings.Repeat("x", MaxPathName)
	m := mustNew(t, nil, Rule{Path: `$["` + long[:MaxPathName-5] + `"]`, Strategy: Redact}, Rule{Path: "$.*.b", Strategy: Redact})
	w := m.PathWalker()
	w.EnterMember([]byte(long[:MaxPathName-5]))
	if _, ok := w.Rule(); !ok {
		t.Errorf("Rule() at a %d-byte name = false, want the rule naming it", MaxPathName-5)
	}
	w.Reset()
	w.EnterMember([]byte(long + "x"))
	w.EnterMember([]byte("b"))
	if r, ok := w.Rule(); !ok || r.Path != "$.*.b" {
		t.Errorf("Rule() below a long name = %q, %v, want $.*.b", r.Path, ok)
	}
}

// TestPathWalkerDeepStates checks that "..a..a..a" keeps one state per
// position, not one per way of reaching it.
func TestPathWalkerDeepStates(t *testing.T) {
	m := mustNew(t, nil, Rule{Path: "$..a..a..a..z", Strategy: Redact})
	w := m.PathWalker()
	for range 50 {
		w.EnterMember([]byte("a"))
	}
	if top := w.frames[len(w.frames)-1]; len(w.states)-top.start > 4 {
		t.Errorf("%d states alive at depth 50, want at most 4", len(w.states)-top.start)
	}
	w.EnterMember([]byte("z"))
	if _, ok := w.Rule(); !ok {
		t.Error("Rule() at $.a.a...a.z = false, want $..a..a..a..z")
	}
}

func TestPathStats(t *testing.T) {
	m := mustNew(t, nil, Rule{Path: "$.card", Strategy: Redact}, Rule{Name: "pw", Path: "$..pw", Strategy: Redact})
	w := m.PathWalker()
	var st Stats
	for _, name := range []string{"card", "pw", "card"} {
		w.EnterMember([]byte(name))
		r, _ := w.Rule()
		m.Value(nil, []byte("x"), r, &st)
		w.Leave()
	}
	want := map[string]uint64{"path:$.card": 2, "pw": 1}
	if got := st.Map(); !maps.Equal(got, want) {
		t.Errorf("Stats.Map() = %v, want %v", got, want)
	}
}

func TestHasPaths(t *testing.T) {
	if mustNew(t, nil, Rule{Column: "a", Strategy: Redact}).HasPaths() {
		t.Error("HasPaths() = true without path rules")
	}
	m := mustNew(t, nil, Rule{Path: "$.a", Strategy: Redact})
	if !m.HasPaths() || m.HasColumns() || m.Detects() {
		t.Errorf("HasPaths, HasColumns, Detects = %v, %v, %v with one path rule, want true, false, false", m.HasPaths(), m.HasColumns(), m.Detects())
	}
	if _, ok := m.Column("", "a"); ok {
		t.Error(`Column("", "a") matched a path rule`)
	}
}

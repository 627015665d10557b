package mask

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	got, err := ParseRules([]map[string]any{
		{"column": "users.email", "strategy": "partial"},
		{"column": "*ssn*", "strategy": "redact", "name": "ssn columns"},
		{"detector": "pan", "strategy": "hash"},
		{"detector": "*", "strategy": "null"},
	})
	if err != nil {
		t.Fatalf("ParseRules = %v", err)
	}
	want := []Rule{
		{Column: "users.email", Strategy: Partial},
		{Name: "ssn columns", Column: "*ssn*", Strategy: Redact},
		{Detector: "pan", Strategy: Hash},
		{Detector: "*", Strategy: Null},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseRules returned %d rules, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParseRules rule %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseRulesErrors(t *testing.T) {
	ok := map[string]any{"column": "a", "strategy": "redact"}
	tests := []struct {
		rule map[string]any
		want string
	}{
		{map[string]any{"colum": "a", "strategy": "redact"}, `unknown key "colum"`},
		{map[string]any{"column": 7, "strategy": "redact"}, "column is int, want string"},
		{map[string]any{"column": "a", "strategy": true}, "strategy is bool, want string"},
		{map[string]any{"column": "a", "strategy": "redact", "name": nil}, "name is <nil>, want string"},
		{map[string]any{"detector": "credit_card", "strategy": "redact"}, `unknown detector "credit_card"`},
		{map[string]any{"detector": "PAN", "strategy": "redact"}, `unknown detector "PAN"`},
		{map[string]any{"column": "a", "strategy": "scramble"}, `unknown strategy "scramble"`},
		{map[string]any{"column": "a", "strategy": "Redact"}, `unknown strategy "Redact"`},
		{map[string]any{"column": "a", "detector": "pan", "strategy": "redact"}, "both a column and a detector"},
		{map[string]any{"strategy": "redact"}, "needs a column or a detector"},
		{map[string]any{"column": "a"}, "strategy is missing"},
		{map[string]any{"column": "", "strategy": "redact"}, "column is empty"},
		{map[string]any{"column": "users.", "strategy": "redact"}, "empty part"},
		{map[string]any{"column": "a.b.c.d", "strategy": "redact"}, "want column, table.column or schema.table.column"},
		{map[string]any{"column": "[a", "strategy": "redact"}, "bad glob"},
		{map[string]any{"column": strings.Repeat("a", 300), "strategy": "redact"}, "limit 255"},
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

func TestParseRulesLimit(t *testing.T) {
	list := make([]map[string]any, maxRules+1)
	for i := range list {
		list[i] = map[string]any{"column": "a", "strategy": "redact"}
	}
	if _, err := ParseRules(list); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("ParseRules(%d rules) = %v, want ErrInvalidRule", len(list), err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		key   []byte
		want  error
	}{
		{"hash without key", []Rule{{Column: "a", Strategy: Hash}}, nil, ErrNoHashKey},
		{"detector hash without key", []Rule{{Detector: "*", Strategy: Hash}}, []byte{}, ErrNoHashKey},
		{"bad rule", []Rule{{Column: "a", Strategy: Redact}, {Column: "a"}}, nil, ErrInvalidRule},
		{"bad detector", []Rule{{Detector: "ssn", Strategy: Redact}}, nil, ErrInvalidRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.rules, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("New(%+v) = %v, want %v", tt.rules, err, tt.want)
			}
		})
	}
	if _, err := New([]Rule{{Column: "a", Strategy: Redact}}, nil); err != nil {
		t.Errorf("New without hash rules or key = %v, want nil", err)
	}
}

// TestCache: the same rules compile once, whether the decision hands over
// the same slice or an equal copy; different rules compile apart; bad
// rules are refused.
func TestCache(t *testing.T) {
	c := NewCache([]byte("k"))
	if m, err := c.Masker(nil); m != nil || err != nil {
		t.Fatalf("no rules: %v %v", m, err)
	}
	rules := []map[string]any{{"detector": "pan", "strategy": "redact"}}
	a, err := c.Masker(rules)
	if err != nil || a == nil {
		t.Fatal(err)
	}
	if b, _ := c.Masker(rules); b != a {
		t.Error("the same slice compiled twice")
	}
	if b, _ := c.Masker([]map[string]any{{"detector": "pan", "strategy": "redact"}}); b != a {
		t.Error("an equal copy compiled twice")
	}
	if b, _ := c.Masker([]map[string]any{{"detector": "pan", "strategy": "partial"}}); b == a {
		t.Error("different rules share a masker")
	}
	if _, err := c.Masker([]map[string]any{{"detector": "nope", "strategy": "redact"}}); err == nil {
		t.Error("a bad rule compiled")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Masker(rules) }); n != 0 {
		t.Errorf("a cached slice costs %v allocations", n)
	}
}

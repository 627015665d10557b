package policy

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/policies"
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name      string
		rego      string
		cacheable bool
		params    bool
	}{
		{"fields only", "decision := {\"allow\": x}\nx if { input.operation.kind == \"select\"; input.identity.subject != \"\" }", true, false},
		{"time", `decision := {"allow": input.time < "2030"}`, false, false},
		{"now", `decision := {"allow": time.now_ns() > 0}`, false, false},
		{"now in body", "decision := {\"allow\": x}\nx if { t := time.now_ns(); t > 0 }", false, false},
		{"http", `decision := {"allow": http.send({"method": "get", "url": "http://x"}).status_code == 200}`, false, false},
		{"params", `decision := {"allow": count(input.operation.params) == 0}`, false, true},
		{"whole input", `decision := {"allow": count(input) > 0}`, false, false},
		{"dynamic key", "decision := {\"allow\": x}\nx if { some k; input[k] }", false, false},
		{"whole operation", `decision := {"allow": object.get(input.operation, "kind", "") == "select"}`, false, false},
		{"import alias", "import input.operation as op\ndecision := {\"allow\": op.kind == \"select\"}", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(context.Background(), map[string]string{"p.rego": "package sluice\n" + tt.rego + "\n"})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.deps.cacheable(); got != tt.cacheable {
				t.Errorf("cacheable = %v (deps %+v), want %v", got, e.deps, tt.cacheable)
			}
			if tt.params && !e.deps.params {
				t.Errorf("params not detected: %+v", e.deps)
			}
		})
	}
	e, err := LoadFS(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	if !e.deps.cacheable() {
		t.Errorf("the shipped policy is not cacheable: %+v", e.deps)
	}
}

func TestSessionCache(t *testing.T) {
	// Counts evaluations through a rule that is true only for the first
	// evaluation of a key... a policy cannot count, so use two engines:
	// a cacheable one must return the cached decision even when the
	// operation's fields differ under the same Key (the contract says
	// they cannot); an uncacheable one re-evaluates.
	ctx := context.Background()
	src := `decision := {"allow": input.operation.kind == "select"}`
	e, err := Compile(ctx, map[string]string{"p.rego": "package sluice\n" + src + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(input())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d, _ := s.Evaluate(ctx, Operation{Fields: map[string]any{"kind": "select"}, Key: "k"}, now)
	if !d.Allowed() {
		t.Fatal("select not allowed")
	}
	d, _ = s.Evaluate(ctx, Operation{Fields: map[string]any{"kind": "delete"}, Key: "k"}, now)
	if !d.Allowed() {
		t.Error("cacheable policy re-evaluated an operation with a cached key")
	}
	d, _ = s.Evaluate(ctx, Operation{Fields: map[string]any{"kind": "delete"}}, now)
	if d.Allowed() {
		t.Error("operation without a key came from the cache")
	}

	timed, err := Compile(ctx, map[string]string{"p.rego": "package sluice\ndecision := {\"allow\": x}\nx if { input.operation.kind == \"select\"; input.time != \"\" }\n"})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := timed.NewSession(input())
	ts.Evaluate(ctx, Operation{Fields: map[string]any{"kind": "select"}, Key: "k"}, now)
	if d, _ := ts.Evaluate(ctx, Operation{Fields: map[string]any{"kind": "delete"}, Key: "k"}, now); d.Allowed() {
		t.Error("a policy that reads input.time had its decision cached")
	}
}

// TestSessionMatchesEngine: a session sees the same input document as a
// one-off evaluation.
func TestSessionMatchesEngine(t *testing.T) {
	ctx := context.Background()
	e, err := LoadFS(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	in := input()
	in.Target.Labels = map[string]string{"allowed_groups": "ops"}
	want, err := e.Evaluate(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Evaluate(ctx, in.Operation, in.Time)
	if err != nil {
		t.Fatal(err)
	}
	if got.Allowed() != want.Allowed() || got.Reason() != want.Reason() {
		t.Errorf("session decision %+v, engine decision %+v", got, want)
	}
}

func BenchmarkSessionEvaluate(b *testing.B) {
	ctx := context.Background()
	e, err := LoadFS(ctx, policies.FS)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := e.NewSession(input())
	op := Operation{Protocol: "postgres", Action: "query", Fields: map[string]any{"kind": "select"}}
	now := time.Now()
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Evaluate(ctx, op, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	op.Key = "select 1"
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Evaluate(ctx, op, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

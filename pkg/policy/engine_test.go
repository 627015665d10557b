package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/policies"
)

func input() *Input {
	return &Input{
		Identity:  Identity{Issuer: "http://x", Subject: "build-1", Claims: map[string]any{"groups": []any{"ci"}}, Job: "job-a", Cgroup: "/sluice/job-a"},
		Process:   Process{PID: 10, Comm: "curl", Exe: "/usr/bin/curl", Cmdline: []string{"curl", "x"}, Verified: true, Parents: []Parent{{PID: 1, Comm: "sh"}}},
		Target:    Target{Name: "web", Protocol: "tcp", Address: "198.18.0.2:80", Labels: map[string]string{"env": "production"}},
		Operation: Operation{Protocol: "tcp", Action: "connect", Resource: "198.18.0.2:80"},
		Time:      time.Unix(1700000000, 0),
	}
}

func TestEmbeddedPolicy(t *testing.T) {
	e, err := LoadFS(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range e.Files() {
		if strings.HasSuffix(f, "_test.rego") {
			t.Errorf("test module %s compiled into the runtime policy", f)
		}
	}
	d, err := e.Evaluate(context.Background(), input())
	if err != nil || !d.Allowed() {
		t.Fatalf("Evaluate(configured target) = %+v, %v; want allowed", d, err)
	}
	in := input()
	in.Target = Target{}
	d, err = e.Evaluate(context.Background(), in)
	if err != nil || d.Allowed() || d.Reason() != "destination is not a configured target" {
		t.Fatalf("Evaluate(no target) = %+v, %v; want denied", d, err)
	}
}

func TestDecisionShapes(t *testing.T) {
	tests := []struct {
		name    string
		rego    string
		allowed bool
		reason  string
		wantErr string
	}{
		{"allow", `decision := {"allow": true}`, true, "", ""},
		{"deny wins over allow", `decision := {"allow": true, "deny": {"b", "a"}}`, false, "a; b", ""},
		{"approval", `decision := {"allow": true, "approval": {"required": true, "reviewers": ["dba"], "ttl": "10m", "reason": "ddl"}}`, false, "approval required: ddl", ""},
		{"not allowed", `decision := {"allow": false}`, false, "not allowed by policy", ""},
		{"undefined", `other := 1`, false, "", "undefined"},
		{"allow not bool", `decision := {"allow": "yes"}`, false, "", "want boolean"},
		{"allow missing", `decision := {"deny": []}`, false, "", "missing"},
		{"deny not strings", `decision := {"allow": false, "deny": [1]}`, false, "", "want string"},
		{"bad ttl", `decision := {"allow": true, "approval": {"required": true, "ttl": "soon"}}`, false, "", "ttl"},
		{"not an object", `decision := true`, false, "", "want object"},
		{"runtime error", `decision := {"allow": 1/0 == 1}`, false, "", "policy error"},
		{"conflict", "decision := {\"allow\": true} if input.operation.x\ndecision := {\"allow\": false} if input.operation.y", false, "", "policy error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(context.Background(), map[string]string{"p.rego": "package sluice\n" + tt.rego + "\n"})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			in := input()
			in.Operation.Fields = map[string]any{"x": true, "y": true}
			d, err := e.Evaluate(context.Background(), in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrPolicy) {
					t.Fatalf("Evaluate = %+v, %v; want ErrPolicy containing %q", d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed() != tt.allowed || d.Reason() != tt.reason {
				t.Errorf("decision %+v: Allowed %v Reason %q, want %v %q", d, d.Allowed(), d.Reason(), tt.allowed, tt.reason)
			}
		})
	}
}

func TestCompileError(t *testing.T) {
	_, err := Compile(context.Background(), map[string]string{"p.rego": "package sluice\ndecision := {"})
	if err == nil {
		t.Fatal("Compile(broken) succeeded")
	}
	if _, err := Compile(context.Background(), nil); !errors.Is(err, ErrPolicy) {
		t.Fatalf("Compile(nothing) = %v, want ErrPolicy", err)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	e, err := LoadFS(context.Background(), policies.FS)
	if err != nil {
		b.Fatal(err)
	}
	in := input()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Evaluate(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecision(f *testing.F) {
	f.Add(`{"allow": true}`)
	f.Add(`{"allow": true, "deny": ["x"], "approval": {"required": true, "reviewers": ["a"], "ttl": "5m"}, "mask": [{"column": "x"}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return
		}
		d, err := parseDecision(v)
		if err != nil {
			if d.Allowed() {
				t.Fatalf("parseDecision(%s) failed but allows", doc)
			}
			return
		}
		m, _ := v.(map[string]any)
		if d.Allowed() && m["allow"] != true {
			t.Fatalf("parseDecision(%s) allows without allow: true", doc)
		}
	})
}

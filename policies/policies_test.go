package policies

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRego runs the Rego unit tests (test_* rules in *_test.rego) against
// the shipped policies.
func TestRego(t *testing.T) {
	entries, err := FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, e := range entries {
		src, err := FS.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(e.Name(), string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", e.Name(), err)
		}
		modules[e.Name()] = m
	}
	ch, err := tester.NewRunner().SetModules(modules).Run(context.Background(), modules)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		switch {
		case r.Error != nil:
			t.Errorf("%s.%s: error: %v", r.Package, r.Name, r.Error)
		case r.Fail:
			t.Errorf("%s.%s: failed", r.Package, r.Name)
		case r.Skip:
			t.Logf("%s.%s: skipped", r.Package, r.Name)
		}
	}
	if n == 0 {
		t.Fatal("no Rego tests ran")
	}
	t.Logf("%d Rego tests", n)
}

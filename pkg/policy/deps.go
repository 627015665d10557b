package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// deps records what, besides the session (identity, process, target,
// connection) and the operation's own fields, a policy set reads. It is
// found by walking the modules' syntax trees once at compile time, and is
// conservative: anything it cannot see through counts as "everything".
type deps struct {
	// time: input.time, or a non-deterministic builtin (time.now_ns,
	// http.send, rand.intn, ...): the same operation may get a different
	// answer a moment later.
	time bool
	// params: input.operation.params or input.operation.text (parameter
	// values, the statement with its literals): they differ between
	// operations with the same Key.
	params bool
	// opaque: input read as a whole, through a computed key, or through
	// an import alias; nothing can be assumed.
	opaque bool
}

// Cacheable reports whether a decision is a function of the session and
// the operation's key alone, so it may be reused within a session.
func (d deps) cacheable() bool { return !d.time && !d.params && !d.opaque }

func analyze(modules []*ast.Module) deps {
	var d deps
	for _, m := range modules {
		for _, imp := range m.Imports {
			if ref, ok := imp.Path.Value.(ast.Ref); ok && ref.HasPrefix(ast.InputRootRef) {
				d.opaque = true
			}
		}
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Ref:
				inputRef(v, &d)
			case ast.Call:
				if len(v) > 0 {
					if op, ok := v[0].Value.(ast.Ref); ok {
						if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic {
							d.time = true
						}
					}
				}
			}
			return false
		})
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if op := x.Operator(); op != nil {
				if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic {
					d.time = true
				}
			}
			return false
		})
	}
	return d
}

// inputRef classifies one reference into the input document.
func inputRef(r ast.Ref, d *deps) {
	if !r[0].Equal(ast.InputRootDocument) {
		return
	}
	key := func(i int) (string, bool) {
		if i >= len(r) {
			return "", false
		}
		s, ok := r[i].Value.(ast.String)
		return string(s), ok
	}
	top, ok := key(1)
	switch {
	case !ok:
		d.opaque = true // input, or input[x]
	case top == "time":
		d.time = true
	case top == "operation":
		field, ok := key(2)
		switch {
		case !ok:
			d.opaque = true // the whole operation, or operation[x]
		case field == "params" || field == "text":
			d.params = true
		}
	}
}

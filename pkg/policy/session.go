package policy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxCached bounds a session's decision cache.
const maxCached = 4096

// Session evaluates the operations of one connection. The parts of the
// input that do not change during a connection (identity, process, target,
// connection) are converted to OPA's representation once, and when the
// policy set is cacheable (it reads neither the time nor parameter values,
// see deps) a decision is reused for an operation with the same Key.
type Session struct {
	engine *Engine
	base   [][2]*ast.Term

	// mu guards cache.
	mu    sync.Mutex
	cache map[string]Decision
}

// NewSession prepares evaluation for the session described by in; its
// Operation and Time are ignored.
func (e *Engine) NewSession(in *Input) (*Session, error) {
	v := in.value()
	s := &Session{engine: e, cache: map[string]Decision{}}
	for _, k := range []string{"identity", "process", "target", "connection"} {
		t, err := ast.InterfaceToValue(v[k])
		if err != nil {
			return nil, fmt.Errorf("%w: input.%s: %v", ErrPolicy, k, err)
		}
		s.base = append(s.base, [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(t)})
	}
	return s, nil
}

// Engine is the policy set the session evaluates with.
func (s *Session) Engine() *Engine { return s.engine }

// UsesParams reports whether the policy reads operation parameters, so
// that handlers only collect them when they matter.
func (s *Session) UsesParams() bool { return s.engine.deps.params || s.engine.deps.opaque }

// Evaluate decides op at time now.
func (s *Session) Evaluate(ctx context.Context, op Operation, now time.Time) (Decision, error) {
	cacheable := op.Key != "" && s.engine.deps.cacheable()
	if cacheable {
		s.mu.Lock()
		d, ok := s.cache[op.Key]
		s.mu.Unlock()
		if ok {
			return d, nil
		}
	}
	opv, err := ast.InterfaceToValue(op.value())
	if err != nil {
		return Decision{}, fmt.Errorf("%w: input.operation: %v", ErrPolicy, err)
	}
	terms := append(make([][2]*ast.Term, 0, len(s.base)+2), s.base...)
	terms = append(terms,
		[2]*ast.Term{ast.StringTerm("operation"), ast.NewTerm(opv)},
		[2]*ast.Term{ast.StringTerm("time"), ast.StringTerm(now.UTC().Format(time.RFC3339Nano))},
	)
	d, err := s.engine.eval(ctx, ast.NewObject(terms...))
	if err != nil {
		return Decision{}, err
	}
	if cacheable {
		s.mu.Lock()
		if len(s.cache) >= maxCached {
			clear(s.cache)
		}
		s.cache[op.Key] = d
		s.mu.Unlock()
	}
	return d, nil
}

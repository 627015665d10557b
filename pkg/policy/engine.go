package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Query is the rule every policy set must define.
const Query = "data.sluice.decision"

// ErrPolicy marks an evaluation that produced no usable decision.
var ErrPolicy = errors.New("policy error")

// Decision is the document a policy returns as data.sluice.decision:
//
//	{"allow": bool, "deny": [reason...],
//	 "approval": {"required": bool, "reviewers": [group...], "ttl": "10m", "reason": "..."},
//	 "mask": [rule...],
//	 "audit": {"critical": bool}}
type Decision struct {
	Allow    bool
	Deny     []string
	Approval Approval
	// Mask rules are passed to the masking stage as written; their shape
	// belongs to pkg/mask.
	Mask []map[string]any
	// Critical (decision.audit.critical) makes the request's record
	// durable on disk before the request goes on.
	Critical bool
}

// Approval says whether a human must approve the request first.
type Approval struct {
	Required  bool
	Reviewers []string
	TTL       time.Duration
	Reason    string
}

// Allowed reports whether the request may proceed without approval: allow
// is true and no deny reason was given.
func (d Decision) Allowed() bool { return d.Allow && len(d.Deny) == 0 && !d.Approval.Required }

// Reason is a one-line explanation for a refusal.
func (d Decision) Reason() string {
	switch {
	case len(d.Deny) > 0:
		return strings.Join(d.Deny, "; ")
	case d.Approval.Required:
		if d.Approval.Reason != "" {
			return "approval required: " + d.Approval.Reason
		}
		return "approval required"
	case !d.Allow:
		return "not allowed by policy"
	}
	return ""
}

// Engine is a compiled policy set.
type Engine struct {
	query    rego.PreparedEvalQuery
	revision string
	files    []string
	// deps is what the policy's decisions may depend on beyond the
	// session and the operation's identity (see analyze).
	deps deps
}

// Compile prepares the query over the given modules (file name → source).
func Compile(ctx context.Context, modules map[string]string) (*Engine, error) {
	if len(modules) == 0 {
		return nil, fmt.Errorf("%w: no policy modules", ErrPolicy)
	}
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
	}
	var parsed []*ast.Module
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(modules[n]))
		h.Write([]byte{0})
		m, err := ast.ParseModuleWithOpts(n, modules[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("compile policy: %w", err)
		}
		parsed = append(parsed, m)
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	return &Engine{query: pq, revision: hex.EncodeToString(h.Sum(nil))[:12], files: names, deps: analyze(parsed)}, nil
}

// LoadFS compiles every *.rego file at the top of fsys, skipping Rego unit
// tests (*_test.rego).
func LoadFS(ctx context.Context, fsys fs.FS) (*Engine, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	modules := map[string]string{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || path.Ext(n) != ".rego" || strings.HasSuffix(n, "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %w", n, err)
		}
		modules[n] = string(b)
	}
	return Compile(ctx, modules)
}

// LoadDir is LoadFS over a directory.
func LoadDir(ctx context.Context, dir string) (*Engine, error) {
	e, err := LoadFS(ctx, os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return e, nil
}

// Revision identifies the compiled sources (a hash), for logs and status.
func (e *Engine) Revision() string { return e.revision }

// Files lists the compiled module names.
func (e *Engine) Files() []string { return append([]string(nil), e.files...) }

// Evaluate runs the policy on in.
func (e *Engine) Evaluate(ctx context.Context, in *Input) (Decision, error) {
	v, err := ast.InterfaceToValue(in.value())
	if err != nil {
		return Decision{}, fmt.Errorf("%w: input: %v", ErrPolicy, err)
	}
	return e.eval(ctx, v)
}

func (e *Engine) eval(ctx context.Context, v ast.Value) (Decision, error) {
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(v))
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("%w: %s is undefined", ErrPolicy, Query)
	}
	return parseDecision(rs[0].Expressions[0].Value)
}

// parseDecision converts the policy's answer, refusing anything that is not
// exactly the documented shape: a policy bug must not read as "allow".
func parseDecision(v any) (Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("%w: decision is %T, want object", ErrPolicy, v)
	}
	var d Decision
	for k, val := range m {
		switch k {
		case "allow":
			b, ok := val.(bool)
			if !ok {
				return Decision{}, fmt.Errorf("%w: decision.allow is %T, want boolean", ErrPolicy, val)
			}
			d.Allow = b
		case "deny":
			reasons, err := stringList("decision.deny", val)
			if err != nil {
				return Decision{}, err
			}
			sort.Strings(reasons)
			d.Deny = reasons
		case "approval":
			a, err := parseApproval(val)
			if err != nil {
				return Decision{}, err
			}
			d.Approval = a
		case "audit":
			am, ok := val.(map[string]any)
			if !ok {
				return Decision{}, fmt.Errorf("%w: decision.audit is %T, want object", ErrPolicy, val)
			}
			if c, ok := am["critical"]; ok {
				b, ok := c.(bool)
				if !ok {
					return Decision{}, fmt.Errorf("%w: decision.audit.critical is %T, want boolean", ErrPolicy, c)
				}
				d.Critical = b
			}
		case "mask":
			list, ok := val.([]any)
			if !ok {
				return Decision{}, fmt.Errorf("%w: decision.mask is %T, want array", ErrPolicy, val)
			}
			for i, r := range list {
				rm, ok := r.(map[string]any)
				if !ok {
					return Decision{}, fmt.Errorf("%w: decision.mask[%d] is %T, want object", ErrPolicy, i, r)
				}
				d.Mask = append(d.Mask, rm)
			}
		default:
			// Unknown keys are for newer sluice versions or the
			// policy author's own use; they never grant anything.
		}
	}
	if _, ok := m["allow"]; !ok {
		return Decision{}, fmt.Errorf("%w: decision.allow is missing", ErrPolicy)
	}
	return d, nil
}

func parseApproval(v any) (Approval, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Approval{}, fmt.Errorf("%w: decision.approval is %T, want object", ErrPolicy, v)
	}
	var a Approval
	if r, ok := m["required"]; ok {
		b, ok := r.(bool)
		if !ok {
			return Approval{}, fmt.Errorf("%w: decision.approval.required is %T, want boolean", ErrPolicy, r)
		}
		a.Required = b
	}
	if r, ok := m["reviewers"]; ok {
		list, err := stringList("decision.approval.reviewers", r)
		if err != nil {
			return Approval{}, err
		}
		a.Reviewers = list
	}
	if r, ok := m["ttl"]; ok {
		s, ok := r.(string)
		if !ok {
			return Approval{}, fmt.Errorf("%w: decision.approval.ttl is %T, want duration string", ErrPolicy, r)
		}
		ttl, err := time.ParseDuration(s)
		if err != nil || ttl < 0 {
			return Approval{}, fmt.Errorf("%w: decision.approval.ttl %q: want a duration like \"10m\"", ErrPolicy, s)
		}
		a.TTL = ttl
	}
	if r, ok := m["reason"]; ok {
		s, ok := r.(string)
		if !ok {
			return Approval{}, fmt.Errorf("%w: decision.approval.reason is %T, want string", ErrPolicy, r)
		}
		a.Reason = s
	}
	return a, nil
}

// stringList accepts a Rego set or array of strings (sets arrive as arrays).
func stringList(name string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is %T, want array of strings", ErrPolicy, name, v)
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d] is %T, want string", ErrPolicy, name, i, e)
		}
		out = append(out, s)
	}
	return out, nil
}

package postgres

import (
	"errors"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
)

// maxClasses bounds the classification cache.
const maxClasses = 8192

// classCache remembers how statements classify, keyed by their normalized
// text (constants replaced by $n): an application sends the same few
// statements with different values over and over, and normalizing costs a
// tenth of parsing. The classification of an entry is computed from the
// normalized text itself, so it cannot depend on a constant that
// normalization hid; a text that does not parse once normalized is
// classified from the original and not cached.
type classCache struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string][]pgsql.Statement
}

func newClassCache() *classCache { return &classCache{m: map[string][]pgsql.Statement{}} }

func (c *classCache) parse(sql string) ([]pgsql.Statement, error) {
	norm, err := pg_query.Normalize(sql)
	if err != nil {
		return pgsql.Parse(sql)
	}
	c.mu.Lock()
	st, ok := c.m[norm]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err = pgsql.Parse(norm)
	if err != nil {
		return pgsql.Parse(sql)
	}
	c.mu.Lock()
	if len(c.m) >= maxClasses {
		clear(c.m)
	}
	c.m[norm] = st
	c.mu.Unlock()
	return st, nil
}

// operation is what policy sees for one statement.
func operation(action, database string, st *pgsql.Statement) policy.Operation {
	effects := make([]any, 0, len(st.Effects))
	whereMissing := false
	for _, e := range st.Effects {
		effects = append(effects, map[string]any{
			"action": e.Action, "object": e.Object, "name": e.Name, "has_where": e.HasWhere,
		})
		if (e.Action == "update" || e.Action == "delete") && !e.HasWhere {
			whereMissing = true
		}
	}
	fields := map[string]any{
		"database":      database,
		"kind":          string(st.Kind),
		"command":       st.Command,
		"statement":     st.Normalized,
		"fingerprint":   st.Fingerprint,
		"reads":         anyList(st.Reads),
		"writes":        anyList(st.Writes),
		"functions":     anyList(st.Functions),
		"effects":       effects,
		"opaque":        st.Opaque,
		"lock":          st.Lock,
		"where_missing": whereMissing,
	}
	if st.Copy != nil {
		fields["copy"] = map[string]any{
			"direction": st.Copy.Direction, "table": st.Copy.Table, "columns": anyList(st.Copy.Columns),
			"query": st.Copy.Query, "stdio": st.Copy.Stdio, "program": st.Copy.Program, "binary": st.Copy.Binary,
		}
	}
	if st.Prepared != "" {
		fields["prepared"] = st.Prepared
	}
	return policy.Operation{
		Protocol: "postgres",
		Action:   action,
		Resource: database,
		Fields:   fields,
		Key:      action + "\x00" + database + "\x00" + st.Normalized,
	}
}

func anyList(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// syntaxRefusal is PostgreSQL's own answer to text it cannot parse.
func syntaxRefusal(err error) *refusal {
	var r *refusal
	if errors.As(err, &r) {
		return r
	}
	r = &refusal{code: codeSyntaxError, message: err.Error()}
	var se *pgsql.SyntaxError
	var le *pgsql.LimitError
	switch {
	case errors.As(err, &se):
		r.message = se.Message
	case errors.As(err, &le):
		r.code = codeProgramLimitExceeded
		r.message = "sluice: statement exceeds the " + le.Limit + " sluice can analyse"
	}
	return r
}

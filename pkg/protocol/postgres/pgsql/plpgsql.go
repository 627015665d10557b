package pgsql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// do handles DO. A plpgsql body is compiled with the PL/pgSQL parser and
// every SQL statement and expression in it is analysed as if it were part
// of the DO statement. A body in any other language is opaque.
func (a *analyzer) do(n *pg_query.DoStmt) {
	var body string
	lang, haveBody := "plpgsql", false
	for _, arg := range n.GetArgs() {
		d := arg.GetDefElem()
		switch d.GetDefname() {
		case "as":
			body, haveBody = d.GetArg().GetString_().GetSval(), true
		case "language":
			// The server looks the name up as is; the grammar has
			// already folded an unquoted name to lower case.
			lang = d.GetArg().GetString_().GetSval()
		}
	}
	if !haveBody || lang != "plpgsql" {
		a.opaque = true
		return
	}
	a.plpgsql(body)
}

// plpgsql analyses a PL/pgSQL block. pg_query only compiles PL/pgSQL
// given a CREATE FUNCTION statement, so the body is wrapped in one,
// dollar-quoted with a tag that does not occur in it; the wrapper is parsed
// first to make sure the function's body is exactly the block.
func (a *analyzer) plpgsql(body string) {
	if a.nest+1 > maxNest {
		a.opaque = true
		return
	}
	if checkNesting(body, true) != nil {
		a.opaque = true
		return
	}
	tag, ok := quoteTag(body)
	if !ok {
		a.opaque = true
		return
	}
	quote := "$" + tag + "$"
	src := "CREATE FUNCTION sluice_do() RETURNS void LANGUAGE plpgsql AS " + quote + body + quote
	if !wraps(src, body) {
		a.opaque = true
		return
	}
	js, err := pg_query.ParsePlPgSqlToJSON(src)
	if err != nil {
		// The server would reject the block too, but only when running
		// it; what it would have done is unknown.
		a.opaque = true
		return
	}
	tree, err := decodeOrdered([]byte(js))
	if err != nil {
		a.opaque = true
		return
	}
	a.plWalk(tree, 0)
}

// quoteTag returns a dollar-quote tag that does not occur in body: a
// handful of candidates, the later ones derived from the body's hash, so
// that the search stays cheap whatever the body holds.
func quoteTag(body string) (string, bool) {
	h := fnv.New64a()
	h.Write([]byte(body))
	sum := h.Sum64()
	for i := range 4 {
		tag := "sluice"
		if i > 0 {
			tag += "_" + strconv.FormatUint(sum+uint64(i), 36)
		}
		if !strings.Contains(body, "$"+tag) {
			return tag, true
		}
	}
	return "", false
}

// wraps reports whether src is one CREATE FUNCTION statement whose body
// is body.
func wraps(src, body string) bool {
	tree, err := pg_query.Parse(src)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	fn := tree.GetStmts()[0].GetStmt().GetCreateFunctionStmt()
	for _, o := range fn.GetOptions() {
		d := o.GetDefElem()
		if d.GetDefname() != "as" {
			continue
		}
		items := d.GetArg().GetList().GetItems()
		return len(items) == 1 && items[0].GetString_().GetSval() == body
	}
	return false
}

// plWalk visits the JSON form of a compiled PL/pgSQL function. It looks
// at every PLpgSQL_expr wherever it occurs (statements, conditions,
// assignments, cursor declarations, defaults, RAISE arguments, ...), so
// that no kind of PL/pgSQL statement needs listing here except the
// dynamic ones. pg_query writes statements in source order, and members
// are visited in the order written, so Effects come out in source order.
func (a *analyzer) plWalk(v any, depth int) {
	if depth > maxDepth {
		a.opaque = true
		return
	}
	switch v := v.(type) {
	case []any:
		for _, c := range v {
			a.plWalk(c, depth+1)
		}
	case object:
		for _, m := range v {
			switch m.key {
			case "PLpgSQL_expr":
				a.plExpr(m.value)
				continue
			case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
				// EXECUTE and FOR ... IN EXECUTE.
				a.opaque = true
				if o, ok := m.value.(object); ok {
					a.dynamic(o.get("query"))
				}
			case "dynquery":
				// OPEN ... FOR EXECUTE and RETURN QUERY EXECUTE.
				a.opaque = true
				a.dynamic(m.value)
			}
			a.plWalk(m.value, depth+1)
		}
	}
}

// object is a JSON object with its members in the order written.
type object []member

type member struct {
	key   string
	value any
}

// get returns the value of the first member named key, or nil.
func (o object) get(key string) any {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// decodeOrdered decodes JSON into object, []any, string, float64, bool
// and nil values. encoding/json bounds the nesting it accepts.
func decodeOrdered(data []byte) (any, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var o object
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("pgsql: object key %v", k)
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{key, v})
		}
		_, err := dec.Token() // }
		return o, err
	case json.Delim('['):
		var l []any
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token() // ]
		return l, err
	}
	return tok, nil
}

// PL/pgSQL expression parse modes (RawParseMode in parser/parser.h).
const (
	rawParseDefault    = 0 // a complete SQL statement
	rawParseTypeName   = 1
	rawParsePlpgsqlExp = 2 // an expression: SELECT without the keyword
	rawParseAssign1    = 3 // target := expression, in three flavours
	rawParseAssign3    = 5
)

// plExpr analyses one PL/pgSQL expression, given as the JSON value of a
// PLpgSQL_expr key.
func (a *analyzer) plExpr(v any) {
	o, _ := v.(object)
	q, ok := o.get("query").(string)
	mode, _ := o.get("parseMode").(float64)
	if !ok {
		a.opaque = true
		return
	}
	switch {
	case mode == rawParseDefault:
		a.nested(q)
	case mode == rawParseTypeName:
	case mode == rawParsePlpgsqlExp:
		a.nested("SELECT " + q)
	case mode >= rawParseAssign1 && mode <= rawParseAssign3:
		target, value, ok := splitAssignment(q)
		if !ok {
			a.opaque = true
			return
		}
		// The target may carry subscripts, which are expressions too.
		a.nested("SELECT " + target)
		a.nested("SELECT " + value)
	default:
		a.opaque = true
	}
}

// dynamic looks at the query of a dynamic SQL statement (a PLpgSQL_expr
// wrapper). If it is a constant string, its statements are analysed too;
// the statement stays opaque regardless.
func (a *analyzer) dynamic(v any) {
	o, _ := v.(object)
	e, _ := o.get("PLpgSQL_expr").(object)
	q, ok := e.get("query").(string)
	if !ok {
		return
	}
	if sql, ok := constString(q); ok {
		a.nested(sql)
	}
}

// constString returns the value of an expression that is a single string
// constant.
func constString(expr string) (string, bool) {
	if checkNesting("SELECT "+expr, false) != nil {
		return "", false
	}
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil || len(tree.GetStmts()) != 1 {
		return "", false
	}
	targets := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()
	if len(targets) != 1 {
		return "", false
	}
	s := targets[0].GetResTarget().GetVal().GetAConst().GetSval()
	if s == nil {
		return "", false
	}
	return s.GetSval(), true
}

// nested analyses SQL text found inside the statement and adds what it
// does. Text that cannot be analysed makes the statement opaque.
func (a *analyzer) nested(sql string) {
	if a.nest+1 > maxNest {
		a.opaque = true
		return
	}
	stmts, err := parse(sql, a.nest+1)
	if err != nil {
		a.opaque = true
		return
	}
	for i := range stmts {
		a.include(&stmts[i])
	}
}

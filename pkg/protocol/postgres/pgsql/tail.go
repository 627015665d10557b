package pgsql

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The parser gives no location for a statement nested in EXPLAIN or
// PREPARE, but in both the inner statement is the rest of the outer one,
// after a prefix whose grammar is simple enough to skip token by token
// with PostgreSQL's own scanner. These functions return "" when the text
// does not look as expected; the caller then deparses the tree instead.

// tokens scans text, leaving out comments.
func tokens(text string) []*pg_query.ScanToken {
	res, err := pg_query.Scan(text)
	if err != nil {
		return nil
	}
	toks := res.GetTokens()
	out := toks[:0:0]
	for _, t := range toks {
		switch t.GetToken() {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
		default:
			out = append(out, t)
		}
	}
	return out
}

// skipParens returns the index after the parenthesised group that starts
// at toks[i], or -1.
func skipParens(toks []*pg_query.ScanToken, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].GetToken() {
		case pg_query.Token_ASCII_40:
			depth++
		case pg_query.Token_ASCII_41:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// rest returns text from token i on.
func rest(text string, toks []*pg_query.ScanToken, i int) string {
	if i < 0 || i >= len(toks) {
		return ""
	}
	start := int(toks[i].GetStart())
	if start < 0 || start > len(text) {
		return ""
	}
	return strings.Trim(text[start:], space)
}

// explainTail returns the statement explained by an EXPLAIN statement:
//
//	EXPLAIN [ ANALYZE [ VERBOSE ] | VERBOSE | ( option [, ...] ) ] statement
//
// hasOptions tells a parenthesised option list from a parenthesised
// SELECT.
func explainTail(text string, hasOptions bool) string {
	toks := tokens(text)
	if len(toks) < 2 || toks[0].GetToken() != pg_query.Token_EXPLAIN {
		return ""
	}
	i := 1
	switch toks[i].GetToken() {
	case pg_query.Token_ANALYZE, pg_query.Token_ANALYSE:
		i++
		if i < len(toks) && toks[i].GetToken() == pg_query.Token_VERBOSE {
			i++
		}
	case pg_query.Token_VERBOSE:
		i++
	case pg_query.Token_ASCII_40:
		if hasOptions {
			i = skipParens(toks, i)
		}
	}
	return rest(text, toks, i)
}

// prepareTail returns the statement of a PREPARE statement:
//
//	PREPARE name [ ( data_type [, ...] ) ] AS statement
func prepareTail(text string) string {
	toks := tokens(text)
	if len(toks) < 4 || toks[0].GetToken() != pg_query.Token_PREPARE {
		return ""
	}
	i := 2
	if toks[i].GetToken() == pg_query.Token_ASCII_40 {
		i = skipParens(toks, i)
	}
	if i < 0 || i >= len(toks) || toks[i].GetToken() != pg_query.Token_AS {
		return ""
	}
	return rest(text, toks, i+1)
}

// splitAssignment splits a PL/pgSQL assignment "target := value" (or
// "target = value"); the target may have subscripts and field selections.
func splitAssignment(q string) (target, value string, ok bool) {
	depth := 0
	for _, t := range tokens(q) {
		switch t.GetToken() {
		case pg_query.Token_ASCII_40, pg_query.Token_ASCII_91:
			depth++
		case pg_query.Token_ASCII_41, pg_query.Token_ASCII_93:
			depth--
		case pg_query.Token_COLON_EQUALS, pg_query.Token_ASCII_61:
			if depth == 0 {
				start, end := int(t.GetStart()), int(t.GetEnd())
				if start < 0 || end < start || end > len(q) {
					return "", "", false
				}
				return q[:start], q[end:], true
			}
		}
	}
	return "", "", false
}

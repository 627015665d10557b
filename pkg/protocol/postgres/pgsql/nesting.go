package pgsql

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// maxNesting bounds the estimated nesting depth of a parse tree.
//
// pg_query's C code turns the parse tree into protobuf (and normalises and
// fingerprints it) by plain recursion without a stack depth check, on the
// stack of whatever thread runs the cgo call. A 50 KiB query such as
// "SELECT 1+1+...+1" is 25000 levels deep and overflows an 8 MiB thread
// stack: SIGSEGV, and the whole daemon is gone. So before handing text to
// pg_query we estimate, from the flat token stream of PostgreSQL's own
// scanner (which does not recurse), an upper bound on the depth of the
// tree it will produce, and refuse the query beyond this bound.
//
// Measured with pg_query 6.2.5 on amd64, the costliest constructs per unit
// of the estimate (long chains of binary operators) need about 350 bytes of
// C stack, so the bound keeps the recursion under 750 KiB: the daemon's
// threads need at least 1 MiB of stack (glibc's default is 8 MiB). The
// bound is far above what hand-written or ORM-generated SQL reaches;
// PostgreSQL itself refuses trees not much deeper ("stack depth limit
// exceeded").
const maxNesting = 2000

// levelWeight is what a parenthesis, bracket or CASE adds to the estimate:
// one such level can stand for a few tree levels (SubLink, SelectStmt,
// ResTarget, ...).
const levelWeight = 4

// level is one parenthesised (or CASE, or PL/pgSQL block) level of the
// token stream.
type level struct {
	// chain counts tokens that make left-deep chains across commas and
	// ANDs: set operations and JOINs.
	chain int
	// expr counts the other tokens that may add a tree level since the
	// last separator (comma, AND, OR, WHEN, THEN, ELSE): operators,
	// keywords, NOT, casts, ....
	expr int
	// between counts BETWEENs still waiting for their AND.
	between int
	// end is set for levels closed by END rather than a bracket.
	end bool
}

// checkNesting returns a *LimitError if the parse tree of sql (a PL/pgSQL
// block if plpgsql is set) may be nested deeper than maxNesting. The
// estimate is deliberately coarse: every token that is not a name, a
// constant or a separator is taken to add a level, and separators only
// reset what cannot chain across them.
func checkNesting(sql string, plpgsql bool) error {
	if len(sql)*levelWeight <= maxNesting {
		// Every level costs at least one byte of input.
		return nil
	}
	if nesting(sql, plpgsql, maxNesting) > maxNesting {
		return &LimitError{Limit: "nesting depth", Max: maxNesting}
	}
	return nil
}

// nesting estimates the nesting depth of the parse tree of sql; it stops
// counting once the estimate exceeds limit.
func nesting(sql string, plpgsql bool, limit int) int {
	res, err := pg_query.Scan(sql)
	if err != nil {
		// The parser will reject it as well, before building a tree.
		return 0
	}
	deepest := 0
	stack := []level{{}}
	total := 0 // sum over stack of levelWeight+chain+expr
	push := func(end bool) {
		stack = append(stack, level{end: end})
		total += levelWeight
	}
	pop := func() {
		if len(stack) > 1 {
			top := stack[len(stack)-1]
			total -= levelWeight + top.chain + top.expr
			stack = stack[:len(stack)-1]
		}
	}
	reset := func(top *level, chain bool) {
		total -= top.expr
		top.expr = 0
		if chain {
			total -= top.chain
			top.chain = 0
		}
	}
	afterEnd := false // PL/pgSQL: the IF, LOOP or CASE of END IF, END LOOP, END CASE
	for i, t := range res.GetTokens() {
		top := &stack[len(stack)-1]
		tok := t.GetToken()
		word := ""
		if tok == pg_query.Token_IDENT && plpgsql {
			if s, e := int(t.GetStart()), int(t.GetEnd()); s >= 0 && s <= e && e <= len(sql) {
				word = strings.ToLower(sql[s:e])
			}
		}
		wasAfterEnd := afterEnd
		afterEnd = false
		switch {
		case wasAfterEnd && (tok == pg_query.Token_IF_P || tok == pg_query.Token_CASE || word == "loop"):
			// Part of the END that closed the block.
		case tok == pg_query.Token_ASCII_40 || tok == pg_query.Token_ASCII_91: // ( [
			push(false)
		case tok == pg_query.Token_ASCII_41 || tok == pg_query.Token_ASCII_93: // ) ]
			for len(stack) > 1 && stack[len(stack)-1].end {
				pop() // an unclosed PL/pgSQL level; cannot happen in valid input
			}
			pop()
		case tok == pg_query.Token_CASE:
			push(true)
		case plpgsql && (tok == pg_query.Token_BEGIN_P || word == "loop"):
			push(true)
		case plpgsql && tok == pg_query.Token_IF_P:
			// IF EXISTS / IF NOT EXISTS in DDL does not open a block.
			next := pg_query.Token(0)
			if toks := res.GetTokens(); i+1 < len(toks) {
				next = toks[i+1].GetToken()
			}
			if next == pg_query.Token_EXISTS || next == pg_query.Token_NOT {
				top.expr++
				total++
			} else {
				push(true)
			}
		case tok == pg_query.Token_END_P:
			if top.end {
				pop()
				afterEnd = plpgsql
			}
		case tok == pg_query.Token_ASCII_59: // ;
			if plpgsql || len(stack) == 1 {
				reset(top, true)
			}
		case tok == pg_query.Token_ASCII_44, tok == pg_query.Token_OR,
			tok == pg_query.Token_WHEN, tok == pg_query.Token_THEN, tok == pg_query.Token_ELSE:
			reset(top, false)
		case tok == pg_query.Token_AND:
			if top.between > 0 {
				top.between--
				top.expr++
				total++
			} else {
				reset(top, false)
			}
		case tok == pg_query.Token_UNION, tok == pg_query.Token_INTERSECT,
			tok == pg_query.Token_EXCEPT, tok == pg_query.Token_JOIN:
			top.chain++
			total++
		case tok == pg_query.Token_IDENT, tok == pg_query.Token_UIDENT,
			tok == pg_query.Token_ICONST, tok == pg_query.Token_FCONST,
			tok == pg_query.Token_SCONST, tok == pg_query.Token_USCONST,
			tok == pg_query.Token_BCONST, tok == pg_query.Token_XCONST,
			tok == pg_query.Token_PARAM, tok == pg_query.Token_ASCII_46, // .
			tok == pg_query.Token_SQL_COMMENT, tok == pg_query.Token_C_COMMENT:
		case tok == pg_query.Token_NOT:
			// A NOT is a BoolExpr with an argument list: about three
			// times the C stack of a binary operator.
			top.expr += 3
			total += 3
		case tok == pg_query.Token_BETWEEN:
			top.between++
			top.expr++
			total++
		default:
			top.expr++
			total++
		}
		deepest = max(deepest, total)
		if deepest > limit {
			break
		}
	}
	return deepest
}

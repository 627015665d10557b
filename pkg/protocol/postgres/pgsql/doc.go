// Package pgsql turns PostgreSQL query text into classified statements for
// policy: what kind of statement each is, what it changes (Effects,
// Writes), what it reads, which functions it calls, and whether it can do
// things that are not visible in its text (Opaque).
//
// It is meant for the PostgreSQL proxy: the proxy calls Parse on the text
// of every simple Query and every extended-protocol Parse message an agent
// sends and hands the statements to the policy engine, which decides on
// them, never on the raw text. Results depend only on the text, so the
// proxy may cache them by Normalized text. Parsing uses PostgreSQL's own grammar, through pg_query (and
// its PL/pgSQL compiler for DO blocks), never regular expressions: a
// comment, a CTE, EXPLAIN ANALYZE, a DO block, several statements in one
// string, a SQL-level PREPARE/EXECUTE or a function call must not hide a
// write. Where this package cannot see what a statement does, it says so
// with Opaque rather than guess; where it is unsure, it reports more, not
// less.
//
// # What the proxy must ensure
//
// pg_query lexes as a server with standard_conforming_strings on and
// client_encoding UTF8. With standard_conforming_strings off, the server
// reads 'a\', $$' as one string where pg_query reads a string and the start
// of a dollar-quoted one, so the two disagree about where statements
// begin and end. The proxy must therefore track the ParameterStatus
// messages for standard_conforming_strings and client_encoding (the server
// sends them at start-up and on every change, however made) and refuse
// queries while they are not on and UTF8. Statements that change either
// are reported Opaque as a first line of defence.
//
// # What it cannot see
//
// A statement can run code that is not in its text: triggers, rules,
// row-level security policies, view definitions, column defaults,
// user-defined functions, operators, casts and type input functions, and
// the bodies of procedures. Functions lists the functions called by name;
// it is up to policy to allow only known ones. Opaque covers what the
// statement itself leaves open (CALL, dynamic SQL, EXECUTE of a prepared
// statement, COPY PROGRAM, LOAD, extensions, ...; see Statement.Opaque).
//
// # Limits
//
// Input over MaxQueryLen bytes is refused with a *LimitError, and so is
// input whose parse tree may be nested deeper than pg_query can safely
// handle (pg_query's C code recurses over the tree without a stack check;
// see maxNesting). SQL nested in SQL (DO bodies, constant dynamic SQL) is
// followed a few levels deep; beyond that the statement is Opaque. Parse
// is linear in its input, at up to about 3 µs per byte for input made of
// many tiny statements (every statement is parsed three times by pg_query:
// to split and classify, to normalise, to fingerprint).
package pgsql

package pgsql

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// Limits on the input. Every one of them is reported as a *LimitError.
const (
	// MaxQueryLen bounds the query string handed to Parse, in bytes.
	MaxQueryLen = 1 << 20
	// MaxStatements bounds the statements in one query string: each costs
	// a normalization and a fingerprint on top of the parse, so a string
	// of many tiny statements is the expensive kind.
	MaxStatements = 1000
	// maxDepth bounds the nesting of the parse tree our walkers descend.
	// protobuf-go refuses to decode trees deeper than 10000 anyway.
	maxDepth = 10000
	// maxNest bounds how deeply SQL text found inside SQL (DO bodies,
	// PL/pgSQL statements, constant dynamic SQL) is parsed again.
	// Deeper text is not looked at and the statement is marked Opaque.
	maxNest = 8
)

// Kind is the coarse class of a statement, meant for policy rules.
type Kind string

// The kinds Parse reports.
const (
	KindSelect      Kind = "select"      // SELECT, VALUES, TABLE, DECLARE CURSOR
	KindInsert      Kind = "insert"      // INSERT
	KindUpdate      Kind = "update"      // UPDATE
	KindDelete      Kind = "delete"      // DELETE
	KindMerge       Kind = "merge"       // MERGE
	KindCopy        Kind = "copy"        // COPY
	KindDDL         Kind = "ddl"         // CREATE, ALTER, COMMENT, SECURITY LABEL, REFRESH, SELECT INTO, ...
	KindDrop        Kind = "drop"        // DROP ..., DROP OWNED
	KindTruncate    Kind = "truncate"    // TRUNCATE
	KindTransaction Kind = "transaction" // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, ...
	KindSet         Kind = "set"         // SET, RESET, SET CONSTRAINTS
	KindShow        Kind = "show"        // SHOW
	KindExplain     Kind = "explain"     // EXPLAIN
	KindPrepare     Kind = "prepare"     // PREPARE name AS ...
	KindExecute     Kind = "execute"     // EXECUTE name
	KindDeallocate  Kind = "deallocate"  // DEALLOCATE
	KindCall        Kind = "call"        // CALL
	KindDo          Kind = "do"          // DO
	KindGrant       Kind = "grant"       // GRANT, REVOKE, ALTER DEFAULT PRIVILEGES
	KindLock        Kind = "lock"        // LOCK TABLE
	KindListen      Kind = "listen"      // LISTEN, UNLISTEN
	KindNotify      Kind = "notify"      // NOTIFY
	KindMaintenance Kind = "maintenance" // VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT
	KindUtility     Kind = "utility"     // FETCH, MOVE, CLOSE, DISCARD, LOAD, anything unknown
)

// Effect actions.
const (
	ActionInsert   = "insert"
	ActionUpdate   = "update"
	ActionDelete   = "delete"
	ActionMerge    = "merge"
	ActionTruncate = "truncate"
	ActionCreate   = "create"
	ActionAlter    = "alter"
	ActionRename   = "rename"
	ActionDrop     = "drop"
	ActionGrant    = "grant"
	ActionRevoke   = "revoke"
	ActionComment  = "comment"
	ActionLabel    = "label"
	ActionRefresh  = "refresh"
)

// Statement is one SQL statement of a query string, classified for policy.
//
// Names (Reads, Writes, Functions, Effect names, Copy columns) are rendered
// from the parse tree: identifiers are joined with "." in the order written
// (so "s.t" only if the query said s.t), unquoted identifiers come out in
// lower case as PostgreSQL folds them, and an identifier that is not a plain
// lower-case name is double-quoted the way PostgreSQL would need it, so that
// `"Users"` and users, or `"a.b"` and a.b, can never be confused. A name
// ending in ".*" stands for every object of its kind in that schema, and
// "*" alone for every one in the database (GRANT ... ON ALL TABLES IN
// SCHEMA, ALTER DEFAULT PRIVILEGES, DROP SCHEMA ... CASCADE, IMPORT
// FOREIGN SCHEMA, ALTER TABLE ALL IN TABLESPACE, ALTER ROLE ALL,
// publications FOR ALL TABLES).
type Statement struct {
	// Text is this statement's own text, sliced from the input by the
	// parser's statement location, with surrounding white space trimmed.
	// Comments before the statement stay in it.
	Text string `json:"text"`
	// Kind is the class of the statement; see the Kind constants.
	Kind Kind `json:"kind"`
	// Command is the command tag PostgreSQL itself would use for the
	// statement ("SELECT", "CREATE TABLE", "DROP INDEX", "GRANT", ...),
	// except that SELECT ... INTO is "SELECT INTO". "???" for a statement
	// this package does not know.
	Command string `json:"command"`
	// Effects lists every change to data or schema the statement performs
	// when run, including changes made by data-modifying CTEs, the
	// statement inside EXPLAIN ANALYZE, the body of a PL/pgSQL DO block,
	// constant dynamic SQL, and the statement inside CREATE SCHEMA.
	// Duplicates are removed; the order is otherwise that of the tree.
	Effects []Effect `json:"effects"`
	// Reads lists the relations the statement reads or otherwise names
	// without changing them: FROM items, subqueries, CTE bodies, foreign
	// key targets, LIKE sources, tables locked, vacuumed or published.
	// The target of UPDATE, DELETE, MERGE and INSERT ... ON CONFLICT DO
	// UPDATE is a read as well, because those look at existing rows. CTE
	// names are not relations and are left out. Sorted, unique.
	Reads []string `json:"reads"`
	// Writes lists every relation (table, view, materialized view,
	// foreign table, sequence, index) named by an Effect, including the
	// table an index, trigger, rule, policy, column or constraint belongs
	// to and the new name of a renamed relation. Sorted, unique.
	Writes []string `json:"writes"`
	// Functions lists the functions the statement calls, anywhere: target
	// lists, WHERE, FROM, DEFAULT and CHECK expressions of DDL, index
	// expressions, COPY (query), CALL, PL/pgSQL expressions. SQL syntax
	// that PostgreSQL implements as a function (EXTRACT, SUBSTRING, ...)
	// shows up under its pg_catalog name. Sorted, unique.
	Functions []string `json:"functions"`
	// Opaque is set when the statement can do things this package cannot
	// see in the text:
	//   - CALL (a procedure body is not part of the statement);
	//   - EXECUTE of an SQL-level prepared statement (see Prepared);
	//   - DO in a language other than plpgsql, or a DO body that does
	//     not compile as PL/pgSQL;
	//   - dynamic SQL in a DO body (EXECUTE, FOR ... IN EXECUTE, OPEN ...
	//     FOR EXECUTE, RETURN QUERY EXECUTE), even when the string is a
	//     constant (whose effects are reported anyway);
	//   - COPY ... PROGRAM (runs a shell command on the server);
	//   - LOAD (runs a shared library's initialiser);
	//   - CREATE EXTENSION and ALTER EXTENSION ... UPDATE (run scripts);
	//   - CREATE/ALTER SUBSCRIPTION (replicates remote writes in);
	//   - calls of functions that run SQL given as text (query_to_xml*,
	//     ts_stat, dblink*);
	//   - changes of standard_conforming_strings or client_encoding to
	//     anything but on/UTF8, by SET, RESET, ALTER SYSTEM/ROLE/DATABASE
	//     or set_config: later queries would be lexed differently by the
	//     server than by this package;
	//   - SQL nested deeper than this package follows, and statements of
	//     a kind this package does not know.
	// CREATE FUNCTION is not opaque: its body is stored, not run.
	Opaque bool `json:"opaque"`
	// Lock is set for SELECT ... FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE
	// (anywhere in the statement) and for LOCK TABLE.
	Lock bool `json:"lock"`
	// Prepared is, for PREPARE, the name defined; for EXECUTE,
	// DEALLOCATE and EXPLAIN EXECUTE, the name used. DEALLOCATE ALL
	// leaves it empty. The proxy maps EXECUTE to the Inner statement it
	// saw at PREPARE time; this package does not keep that state.
	Prepared string `json:"prepared,omitempty"`
	// Setting is the configuration parameter named by SET, RESET, SHOW
	// and ALTER SYSTEM/ROLE/DATABASE ... SET, lower-cased ("all" for
	// RESET ALL and SHOW ALL, "role" for SET ROLE, "session_authorization"
	// for SET SESSION AUTHORIZATION, "transaction" for SET TRANSACTION).
	Setting string `json:"setting,omitempty"`
	// Inner is, for PREPARE name AS <stmt> and EXPLAIN <stmt>, the inner
	// statement classified on its own. For EXPLAIN ANALYZE the inner
	// statement runs, so its Effects, Reads, Functions, Opaque and Lock
	// are also the outer statement's; plain EXPLAIN only plans it (which
	// may run immutable functions and reveals statistics), so only Reads
	// and Functions carry over. PREPARE runs nothing and carries nothing
	// over.
	Inner *Statement `json:"inner,omitempty"`
	// Copy describes a COPY statement.
	Copy *Copy `json:"copy,omitempty"`
	// Normalized is pg_query's normalisation of Text: constants become
	// $1, $2, .... Meant as a cache and approval key.
	Normalized string `json:"normalized"`
	// Fingerprint is pg_query's fingerprint of Text, in hex: equal for
	// statements that differ only in constants, formatting and comments.
	Fingerprint string `json:"fingerprint"`
}

// Effect is one change a statement makes.
type Effect struct {
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Object is the kind of object changed, in lower case as SQL spells
	// it: "table", "view", "materialized view", "index", "sequence",
	// "foreign table", "schema", "function", "procedure", "type",
	// "domain", "database", "role", "extension", "trigger", "rule",
	// "policy", "column", "table constraint", "system" (ALTER SYSTEM),
	// "owned" (DROP/REASSIGN OWNED BY: Name is the role), ....
	Object string `json:"object"`
	// Name is the object's name as written; for DROP and TRUNCATE of
	// several objects there is one Effect per object. Empty for CREATE
	// INDEX without a name and CREATE STATISTICS without a name.
	Name string `json:"name"`
	// Table is the table an index, trigger, rule, policy, column or
	// constraint belongs to; empty otherwise.
	Table string `json:"table,omitempty"`
	// NewName is the name the object has afterwards, for RENAME and SET
	// SCHEMA.
	NewName string `json:"new_name,omitempty"`
	// HasWhere reports, for update and delete, that the rows affected are
	// restricted: the UPDATE or DELETE has a WHERE clause (WHERE CURRENT
	// OF counts; whether the condition is a tautology such as WHERE true
	// is for policy to judge), the update is the DO UPDATE of INSERT ...
	// ON CONFLICT (it only touches conflicting rows), or it is a MERGE
	// action restricted by the join (WHEN MATCHED) or by its own AND
	// condition (WHEN NOT MATCHED BY SOURCE). False for every other
	// action.
	HasWhere bool `json:"has_where"`
}

// Copy describes a COPY statement.
type Copy struct {
	// Direction is "from" (into the table) or "to" (out of it).
	Direction string `json:"direction"`
	// Table is the table copied to or from; empty for COPY (query) TO.
	Table string `json:"table,omitempty"`
	// Columns is the column list, if one was given.
	Columns []string `json:"columns,omitempty"`
	// Query is set for COPY (query) TO.
	Query bool `json:"query,omitempty"`
	// Stdio is set for FROM STDIN and TO STDOUT: the data crosses the
	// client connection, and so the proxy.
	Stdio bool `json:"stdio,omitempty"`
	// Program is set for FROM/TO PROGRAM; File is then the command.
	Program bool `json:"program,omitempty"`
	// File is the server-side file name, or the command for PROGRAM.
	File string `json:"file,omitempty"`
	// Binary is set for FORMAT binary.
	Binary bool `json:"binary,omitempty"`
	// CSV is set for FORMAT csv.
	CSV bool `json:"csv,omitempty"`
	// Delimiter is the DELIMITER option, if given.
	Delimiter string `json:"delimiter,omitempty"`
}

// SyntaxError is a query PostgreSQL's parser rejects.
type SyntaxError struct {
	// Message is the parser's message, e.g. `syntax error at or near "FRM"`.
	Message string
	// Position is the 1-based character (not byte) offset of the error in
	// the input, as in PostgreSQL's ErrorResponse 'P' field; 0 if unknown.
	Position int
}

func (e *SyntaxError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("pgsql: %s at character %d", e.Message, e.Position)
	}
	return "pgsql: " + e.Message
}

// LimitError is input beyond one of this package's bounds.
type LimitError struct {
	Limit string // which bound: "query length", "nesting depth"
	Max   int    // the bound
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("pgsql: %s exceeds limit of %d", e.Limit, e.Max)
}

// Parse splits a query string into its statements and classifies each.
//
// An empty query, or one of only comments and semicolons, yields no
// statements and no error; PostgreSQL answers it with EmptyQueryResponse.
// A query the parser rejects yields a *SyntaxError; one beyond a bound a
// *LimitError. The query must be UTF-8 and must not contain NUL bytes.
//
// The parser lexes with standard_conforming_strings on and assumes UTF-8;
// results are only meaningful for a server session in that state (see the
// package documentation).
func Parse(sql string) (stmts []Statement, err error) {
	if len(sql) > MaxQueryLen {
		return nil, &LimitError{Limit: "query length", Max: MaxQueryLen}
	}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		return nil, &SyntaxError{Message: "query contains a NUL byte", Position: utf8.RuneCountInString(sql[:i]) + 1}
	}
	if !utf8.ValidString(sql) {
		i := 0
		for i < len(sql) {
			r, size := utf8.DecodeRuneInString(sql[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return nil, &SyntaxError{
			Message:  fmt.Sprintf("invalid byte sequence for encoding \"UTF8\": 0x%02x", sql[i]),
			Position: utf8.RuneCountInString(sql[:i]) + 1,
		}
	}
	// A bug in the classifier must cost one query, not the daemon.
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("pgsql: internal error classifying query: %v", r)
		}
	}()
	return parse(sql, 0)
}

// parse parses and classifies sql, which is nested SQL text when nest > 0.
// Normalized and Fingerprint are only computed for the caller's own
// statements (nest == 0).
func parse(sql string, nest int) ([]Statement, error) {
	if err := checkNesting(sql, false); err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, parseError(err)
	}
	if len(tree.GetStmts()) > MaxStatements {
		return nil, &LimitError{Limit: "statement count", Max: MaxStatements}
	}
	stmts := make([]Statement, 0, len(tree.GetStmts()))
	for _, raw := range tree.GetStmts() {
		if raw.GetStmt() == nil {
			continue
		}
		text, ok := stmtText(sql, raw)
		if !ok {
			return nil, fmt.Errorf("pgsql: statement location %d+%d outside query of %d bytes", raw.GetStmtLocation(), raw.GetStmtLen(), len(sql))
		}
		s, err := classify(raw.GetStmt(), text, nest, 0)
		if err != nil {
			return nil, err
		}
		if nest == 0 {
			if err := fingerprint(s); err != nil {
				return nil, err
			}
		}
		stmts = append(stmts, *s)
	}
	return stmts, nil
}

// parseError turns an error from pg_query into one of ours.
func parseError(err error) error {
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		if pe.Message == "stack depth limit exceeded" {
			return &LimitError{Limit: "parser stack depth", Max: maxDepth}
		}
		return &SyntaxError{Message: pe.Message, Position: pe.Cursorpos}
	}
	// protobuf-go refuses trees nested deeper than its recursion limit.
	return fmt.Errorf("pgsql: decode parse tree: %w", err)
}

// space is PostgreSQL's white space (scan.l).
const space = " \t\n\r\f\v"

// stmtText slices one statement out of sql. The parser reports byte
// offsets; a length of 0 means "to the end of the input".
func stmtText(sql string, raw *pg_query.RawStmt) (string, bool) {
	start, n := int(raw.GetStmtLocation()), int(raw.GetStmtLen())
	end := len(sql)
	if n > 0 {
		end = start + n
	}
	if start < 0 || start > end || end > len(sql) {
		return "", false
	}
	return strings.Trim(sql[start:end], space), true
}

// fingerprint fills in Normalized and Fingerprint of s and of its inner
// statement.
func fingerprint(s *Statement) error {
	if s.Inner != nil {
		if err := fingerprint(s.Inner); err != nil {
			return err
		}
	}
	norm, err := pg_query.Normalize(s.Text)
	if err != nil {
		return fmt.Errorf("pgsql: normalize %q: %w", s.Text, parseError(err))
	}
	fp, err := pg_query.Fingerprint(s.Text)
	if err != nil {
		return fmt.Errorf("pgsql: fingerprint %q: %w", s.Text, parseError(err))
	}
	s.Normalized, s.Fingerprint = norm, fp
	return nil
}

package pgsql

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// want is what a test expects of one statement. Text is only compared
// when set; every other field always is.
type want struct {
	Text      string
	Kind      Kind
	Command   string
	Effects   []Effect
	Reads     []string
	Writes    []string
	Functions []string
	Opaque    bool
	Lock      bool
	Prepared  string
	Setting   string
	Copy      *Copy
	Inner     *want
}

// got projects a Statement onto want, for comparison and readable output.
func got(s *Statement, text bool) *want {
	if s == nil {
		return nil
	}
	w := &want{
		Kind: s.Kind, Command: s.Command, Effects: s.Effects,
		Reads: s.Reads, Writes: s.Writes, Functions: s.Functions,
		Opaque: s.Opaque, Lock: s.Lock, Prepared: s.Prepared, Setting: s.Setting,
		Copy: s.Copy,
	}
	if text {
		w.Text = s.Text
	}
	if s.Inner != nil {
		w.Inner = got(s.Inner, false)
	}
	return w
}

// canon makes nil and empty slices compare equal.
func canon(w *want) *want {
	if w == nil {
		return nil
	}
	c := *w
	if len(c.Effects) == 0 {
		c.Effects = nil
	}
	for _, p := range []*[]string{&c.Reads, &c.Writes, &c.Functions} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	c.Inner = canon(c.Inner)
	if c.Inner != nil {
		c.Inner.Text = ""
	}
	return &c
}

func (w *want) String() string {
	b, _ := json.Marshal(w)
	return string(b)
}

// Shorthands for expected effects.
func eff(action, object, name string) Effect {
	return Effect{Action: action, Object: object, Name: name}
}

func tab(action, name string, where bool) Effect {
	return Effect{Action: action, Object: "table", Name: name, HasWhere: where}
}

func list(s ...string) []string { return s }

// checkParse parses sql and compares the statements with ws.
func checkParse(t *testing.T, sql string, ws ...want) {
	t.Helper()
	stmts, err := Parse(sql)
	if err != nil {
		t.Fatalf("Parse(%q) error: %v", sql, err)
	}
	if len(stmts) != len(ws) {
		var gs []string
		for i := range stmts {
			gs = append(gs, got(&stmts[i], true).String())
		}
		t.Fatalf("Parse(%q) = %d statements %v, want %d", sql, len(stmts), gs, len(ws))
	}
	for i := range ws {
		g := canon(got(&stmts[i], ws[i].Text != ""))
		w := canon(&ws[i])
		if !reflect.DeepEqual(g, w) {
			t.Errorf("Parse(%q)[%d] =\n  %v\nwant\n  %v", sql, i, g, w)
		}
	}
}

// TestRules covers each rule of the classification.
func TestRules(t *testing.T) {
	tests := []struct {
		name  string
		sql   string
		wants []want
	}{
		// EXPLAIN runs its statement only with ANALYZE.
		{"explain analyze", "EXPLAIN ANALYZE DELETE FROM t", []want{{
			Kind: KindExplain, Command: "EXPLAIN",
			Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
			Inner: &want{Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"explain analyze true", "EXPLAIN (ANALYZE true, FORMAT json) DELETE FROM t WHERE id = 1", []want{{
			Kind: KindExplain, Command: "EXPLAIN",
			Effects: []Effect{tab(ActionDelete, "t", true)}, Reads: list("t"), Writes: list("t"),
			Inner: &want{Text: "DELETE FROM t WHERE id = 1", Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", true)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"explain (analyze)", "EXPLAIN (ANALYZE) UPDATE t SET a = f(a)", []want{{
			Kind: KindExplain, Command: "EXPLAIN",
			Effects: []Effect{tab(ActionUpdate, "t", false)}, Reads: list("t"), Writes: list("t"), Functions: list("f"),
			Inner: &want{Kind: KindUpdate, Command: "UPDATE", Effects: []Effect{tab(ActionUpdate, "t", false)}, Reads: list("t"), Writes: list("t"), Functions: list("f")},
		}}},
		{"explain analyse verbose", "EXPLAIN ANALYSE VERBOSE INSERT INTO t VALUES (1)", []want{{
			Kind: KindExplain, Command: "EXPLAIN",
			Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t"),
			Inner: &want{Kind: KindInsert, Command: "INSERT", Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t")},
		}}},
		{"explain analyze 1", "EXPLAIN (ANALYZE 1) DELETE FROM t", []want{{
			Kind: KindExplain, Command: "EXPLAIN",
			Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
			Inner: &want{Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"explain analyze off", "EXPLAIN (ANALYZE off, COSTS off) DELETE FROM t", []want{{
			Kind: KindExplain, Command: "EXPLAIN", Reads: list("t"),
			Inner: &want{Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"explain plans only", "EXPLAIN DELETE FROM t", []want{{
			Kind: KindExplain, Command: "EXPLAIN", Reads: list("t"),
			Inner: &want{Text: "DELETE FROM t", Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"explain parenthesised select", "EXPLAIN (SELECT f(1) FROM t FOR UPDATE)", []want{{
			Kind: KindExplain, Command: "EXPLAIN", Reads: list("t"), Functions: list("f"),
			Inner: &want{Kind: KindSelect, Command: "SELECT", Reads: list("t"), Functions: list("f"), Lock: true},
		}}},

		// Data-modifying CTEs.
		{"delete in cte", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", []want{{
			Kind: KindSelect, Command: "SELECT",
			Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"insert in cte of update", "WITH x AS (INSERT INTO log SELECT * FROM src RETURNING id) UPDATE t SET n = n + 1 FROM x WHERE t.id = x.id", []want{{
			Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionInsert, "log", false), tab(ActionUpdate, "t", true)},
			Reads:   list("src", "t"), Writes: list("log", "t"),
		}}},
		{"cte shadows a table", "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list("secrets"),
		}}},
		{"cte sees earlier ctes only", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b", []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list("b"),
		}}},
		{"recursive cte", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r", []want{{
			Kind: KindSelect, Command: "SELECT",
		}}},
		{"cte scope ends with its query", "SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) q, c", []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list("c"),
		}}},
		{"schema-qualified name is never a cte", "WITH t AS (SELECT 1) SELECT * FROM public.t", []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list("public.t"),
		}}},

		// Comments and several statements.
		{"comment hides nothing", "/* DROP TABLE x */ SELECT 1", []want{{
			Text: "/* DROP TABLE x */ SELECT 1", Kind: KindSelect, Command: "SELECT",
		}}},
		{"line comment", "SELECT 1 -- ; DROP TABLE x", []want{{
			Text: "SELECT 1 -- ; DROP TABLE x", Kind: KindSelect, Command: "SELECT",
		}}},
		{"two statements", "SELECT 1; DROP TABLE x", []want{
			{Text: "SELECT 1", Kind: KindSelect, Command: "SELECT"},
			{Text: "DROP TABLE x", Kind: KindDrop, Command: "DROP TABLE", Effects: []Effect{eff(ActionDrop, "table", "x")}, Writes: list("x")},
		}},
		{"semicolon in string", "SELECT ';DROP TABLE x'", []want{{
			Kind: KindSelect, Command: "SELECT",
		}}},
		{"dollar quoted", "SELECT $q$; DROP TABLE x; $q$", []want{{
			Kind: KindSelect, Command: "SELECT",
		}}},

		// DO blocks.
		{"do", "DO $$ BEGIN DROP TABLE x; UPDATE y SET a=1; END $$", []want{{
			Kind: KindDo, Command: "DO",
			Effects: []Effect{eff(ActionDrop, "table", "x"), tab(ActionUpdate, "y", false)},
			Reads:   list("y"), Writes: list("x", "y"),
		}}},
		{"do nested blocks", `DO $do$
DECLARE
	r record;
	n int := (SELECT count(*) FROM counted);
	c CURSOR FOR SELECT * FROM cursored FOR UPDATE;
BEGIN
	FOR r IN SELECT * FROM k LOOP
		IF r.a > 0 THEN
			UPDATE t SET a = r.a WHERE id = r.id;
		ELSIF r.a < 0 THEN
			PERFORM audit(r.id);
		ELSE
			CASE r.b WHEN 1 THEN DELETE FROM u; ELSE NULL; END CASE;
		END IF;
	END LOOP;
	WHILE n > 0 LOOP n := n - step(n); END LOOP;
	RETURN;
EXCEPTION WHEN others THEN
	INSERT INTO errors VALUES (sqlerrm);
END
$do$`, []want{{
			Kind: KindDo, Command: "DO",
			Effects: []Effect{tab(ActionUpdate, "t", true), tab(ActionDelete, "u", false), tab(ActionInsert, "errors", false)},
			Reads:   list("counted", "cursored", "k", "t", "u"),
			Writes:  list("errors", "t", "u"), Functions: list("audit", "count", "step"), Lock: true,
		}}},
		{"do with dynamic sql", "DO $$BEGIN EXECUTE 'DROP TABLE ' || quote_ident(tbl()); END$$", []want{{
			Kind: KindDo, Command: "DO", Functions: list("quote_ident", "tbl"), Opaque: true,
		}}},
		{"do with constant dynamic sql", "DO $$BEGIN EXECUTE 'DROP TABLE w'; END$$", []want{{
			Kind: KindDo, Command: "DO", Effects: []Effect{eff(ActionDrop, "table", "w")}, Writes: list("w"), Opaque: true,
		}}},
		{"do for in execute", "DO $$DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END$$", []want{{
			Kind: KindDo, Command: "DO", Opaque: true,
		}}},
		{"do open for execute", "DO $$DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT * FROM s'; END$$", []want{{
			Kind: KindDo, Command: "DO", Reads: list("s"), Opaque: true,
		}}},
		{"do calls a procedure", "DO $$BEGIN CALL p(1); COMMIT; END$$", []want{{
			Kind: KindDo, Command: "DO", Functions: list("p"), Opaque: true,
		}}},
		{"do in do", "DO $a$BEGIN DO $b$ BEGIN TRUNCATE z; END $b$; END$a$", []want{{
			Kind: KindDo, Command: "DO", Effects: []Effect{eff(ActionTruncate, "table", "z")}, Writes: list("z"),
		}}},
		{"do body with the wrapper's quote tag", "DO $x$BEGIN PERFORM '$sluice$'; DELETE FROM t; END$x$", []want{{
			Kind: KindDo, Command: "DO", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"do in plperl", "DO LANGUAGE plperl $$ system('rm -rf /') $$", []want{{
			Kind: KindDo, Command: "DO", Opaque: true,
		}}},
		{"do language given after body", "DO $$ BEGIN DELETE FROM t; END $$ LANGUAGE plpgsql", []want{{
			Kind: KindDo, Command: "DO", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"do that does not compile", "DO $$ BEGIN x := 1; END $$", []want{{
			Kind: KindDo, Command: "DO", Opaque: true,
		}}},

		// SQL-level prepared statements.
		{"prepare", "PREPARE p (int) AS DELETE FROM t WHERE id = $1", []want{{
			Kind: KindPrepare, Command: "PREPARE", Prepared: "p",
			Inner: &want{Text: "DELETE FROM t WHERE id = $1", Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", true)}, Reads: list("t"), Writes: list("t")},
		}}},
		{"prepare without types", "PREPARE q AS SELECT * FROM t", []want{{
			Kind: KindPrepare, Command: "PREPARE", Prepared: "q",
			Inner: &want{Text: "SELECT * FROM t", Kind: KindSelect, Command: "SELECT", Reads: list("t")},
		}}},
		{"execute", "EXECUTE p(1)", []want{{Kind: KindExecute, Command: "EXECUTE", Prepared: "p", Opaque: true}}},
		{"execute with subquery argument", "EXECUTE p((SELECT max(id) FROM t))", []want{{
			Kind: KindExecute, Command: "EXECUTE", Prepared: "p", Opaque: true, Reads: list("t"), Functions: list("max"),
		}}},
		{"explain analyze execute", "EXPLAIN ANALYZE EXECUTE p(1)", []want{{
			Kind: KindExplain, Command: "EXPLAIN", Prepared: "p", Opaque: true,
			Inner: &want{Kind: KindExecute, Command: "EXECUTE", Prepared: "p", Opaque: true},
		}}},
		{"deallocate", "DEALLOCATE p", []want{{Kind: KindDeallocate, Command: "DEALLOCATE", Prepared: "p"}}},
		{"deallocate prepare", "DEALLOCATE PREPARE p", []want{{Kind: KindDeallocate, Command: "DEALLOCATE", Prepared: "p"}}},
		{"deallocate all", "DEALLOCATE ALL", []want{{Kind: KindDeallocate, Command: "DEALLOCATE ALL"}}},

		// Statements that create tables from queries.
		{"select into", "SELECT * INTO new_t FROM t", []want{{
			Kind: KindDDL, Command: "SELECT INTO", Effects: []Effect{eff(ActionCreate, "table", "new_t")}, Reads: list("t"), Writes: list("new_t"),
		}}},
		{"create table as", "CREATE TABLE a AS SELECT * FROM t WHERE f(x)", []want{{
			Kind: KindDDL, Command: "CREATE TABLE AS", Effects: []Effect{eff(ActionCreate, "table", "a")}, Reads: list("t"), Writes: list("a"), Functions: list("f"),
		}}},
		{"create table as execute", "CREATE TABLE a AS EXECUTE p", []want{{
			Kind: KindDDL, Command: "CREATE TABLE AS", Effects: []Effect{eff(ActionCreate, "table", "a")}, Writes: list("a"), Opaque: true,
		}}},
		{"create materialized view", "CREATE MATERIALIZED VIEW m AS SELECT * FROM t", []want{{
			Kind: KindDDL, Command: "CREATE MATERIALIZED VIEW", Effects: []Effect{eff(ActionCreate, "materialized view", "m")}, Reads: list("t"), Writes: list("m"),
		}}},

		// Upserts and MERGE.
		{"on conflict do update", "INSERT INTO t (id, a) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a", []want{{
			Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "t", false), tab(ActionUpdate, "t", true)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"on conflict do nothing", "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", []want{{
			Kind: KindInsert, Command: "INSERT", Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t"),
		}}},
		{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.gone THEN DELETE WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)", []want{{
			Kind: KindMerge, Command: "MERGE",
			Effects: []Effect{tab(ActionMerge, "t", false), tab(ActionDelete, "t", true), tab(ActionUpdate, "t", true), tab(ActionInsert, "t", false)},
			Reads:   list("s", "t"), Writes: list("t"),
		}}},
		{"merge not matched by source", "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", []want{{
			Kind: KindMerge, Command: "MERGE",
			Effects: []Effect{tab(ActionMerge, "t", false), tab(ActionDelete, "t", false)}, Reads: list("s", "t"), Writes: list("t"),
		}}},

		// WHERE.
		{"update where true", "UPDATE t SET a = 1 WHERE true", []want{{
			Kind: KindUpdate, Command: "UPDATE", Effects: []Effect{tab(ActionUpdate, "t", true)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"update without where", "UPDATE t SET a = 1", []want{{
			Kind: KindUpdate, Command: "UPDATE", Effects: []Effect{tab(ActionUpdate, "t", false)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"delete using", "DELETE FROM t USING u WHERE t.id = u.id", []want{{
			Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", true)}, Reads: list("t", "u"), Writes: list("t"),
		}}},
		{"delete where current of", "DELETE FROM t WHERE CURRENT OF c", []want{{
			Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "t", true)}, Reads: list("t"), Writes: list("t"),
		}}},
		{"delete without where", "DELETE FROM ONLY s.t", []want{{
			Kind: KindDelete, Command: "DELETE", Effects: []Effect{tab(ActionDelete, "s.t", false)}, Reads: list("s.t"), Writes: list("s.t"),
		}}},

		// Several objects.
		{"truncate two", "TRUNCATE a, b RESTART IDENTITY", []want{{
			Kind: KindTruncate, Command: "TRUNCATE TABLE", Effects: []Effect{eff(ActionTruncate, "table", "a"), eff(ActionTruncate, "table", "b")}, Writes: list("a", "b"),
		}}},
		{"drop two", "DROP TABLE a, s.b CASCADE", []want{{
			Kind: KindDrop, Command: "DROP TABLE", Effects: []Effect{eff(ActionDrop, "table", "a"), eff(ActionDrop, "table", "s.b")}, Writes: list("a", "s.b"),
		}}},
		{"alter drop column", "ALTER TABLE t DROP COLUMN c", []want{{
			Kind: KindDDL, Command: "ALTER TABLE", Effects: []Effect{eff(ActionAlter, "table", "t")}, Writes: list("t"),
		}}},

		// COPY.
		{"copy from stdin", "COPY t (a, b) FROM STDIN", []want{{
			Kind: KindCopy, Command: "COPY", Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t"),
			Copy: &Copy{Direction: "from", Table: "t", Columns: list("a", "b"), Stdio: true},
		}}},
		{"copy to stdout binary", "COPY t TO STDOUT WITH (FORMAT binary)", []want{{
			Kind: KindCopy, Command: "COPY", Reads: list("t"),
			Copy: &Copy{Direction: "to", Table: "t", Stdio: true, Binary: true},
		}}},
		{"copy old binary syntax", "COPY t TO STDOUT BINARY", []want{{
			Kind: KindCopy, Command: "COPY", Reads: list("t"),
			Copy: &Copy{Direction: "to", Table: "t", Stdio: true, Binary: true},
		}}},
		{"copy query", "COPY (SELECT a, f(b) FROM t JOIN u USING (id)) TO STDOUT CSV HEADER", []want{{
			Kind: KindCopy, Command: "COPY", Reads: list("t", "u"), Functions: list("f"),
			Copy: &Copy{Direction: "to", Query: true, Stdio: true, CSV: true},
		}}},
		{"copy returning query", "COPY (DELETE FROM t RETURNING *) TO STDOUT", []want{{
			Kind: KindCopy, Command: "COPY", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
			Copy: &Copy{Direction: "to", Query: true, Stdio: true},
		}}},
		{"copy from program", "COPY t FROM PROGRAM 'curl http://x'", []want{{
			Kind: KindCopy, Command: "COPY", Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t"), Opaque: true,
			Copy: &Copy{Direction: "from", Table: "t", Program: true, File: "curl http://x"},
		}}},
		{"copy to file", "COPY t TO '/tmp/t.csv'", []want{{
			Kind: KindCopy, Command: "COPY", Reads: list("t"),
			Copy: &Copy{Direction: "to", Table: "t", File: "/tmp/t.csv"},
		}}},
		{"copy from where", "COPY t FROM STDIN WHERE check_row(a)", []want{{
			Kind: KindCopy, Command: "COPY", Effects: []Effect{tab(ActionInsert, "t", false)}, Writes: list("t"), Functions: list("check_row"),
			Copy: &Copy{Direction: "from", Table: "t", Stdio: true},
		}}},

		// Functions.
		{"function in select list", "SELECT f(1)", []want{{Kind: KindSelect, Command: "SELECT", Functions: list("f")}}},
		{"function in where", "SELECT * FROM t WHERE g(a)", []want{{Kind: KindSelect, Command: "SELECT", Reads: list("t"), Functions: list("g")}}},
		{"pg_sleep", "SELECT pg_sleep(1)", []want{{Kind: KindSelect, Command: "SELECT", Functions: list("pg_sleep")}}},
		{"qualified and quoted function", `SELECT pg_catalog.now(), "MyFunc"(1), PUBLIC.LOWER('A')`, []want{{
			Kind: KindSelect, Command: "SELECT", Functions: list(`"MyFunc"`, "pg_catalog.now", "public.lower"),
		}}},
		{"functions everywhere", "SELECT a(x) OVER (ORDER BY b(y)) FROM c(1) AS t(x, y) JOIN d ON e(d.x) GROUP BY 1 HAVING count(*) > h() ORDER BY i()", []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list("d"), Functions: list("a", "b", "c", "count", "e", "h", "i"),
		}}},
		{"syntax functions", "SELECT EXTRACT(year FROM now()), substring('abc' FROM 2)", []want{{
			Kind: KindSelect, Command: "SELECT", Functions: list("now", "pg_catalog.extract", "pg_catalog.substring"),
		}}},
		{"call", "CALL p()", []want{{Kind: KindCall, Command: "CALL", Functions: list("p"), Opaque: true}}},
		{"call with query argument", "CALL s.p((SELECT max(x) FROM t))", []want{{
			Kind: KindCall, Command: "CALL", Reads: list("t"), Functions: list("max", "s.p"), Opaque: true,
		}}},
		{"sql-running function", "SELECT query_to_xml('DELETE FROM t', true, true, '')", []want{{
			Kind: KindSelect, Command: "SELECT", Effects: []Effect{tab(ActionDelete, "t", false)}, Reads: list("t"), Writes: list("t"),
			Functions: list("query_to_xml"), Opaque: true,
		}}},
		{"set_config of a lexer setting", "SELECT set_config('standard_conforming_strings', 'off', false)", []want{{
			Kind: KindSelect, Command: "SELECT", Functions: list("set_config"), Opaque: true,
		}}},
		{"set_config of another setting", "SELECT set_config('search_path', 'x', true)", []want{{
			Kind: KindSelect, Command: "SELECT", Functions: list("set_config"),
		}}},
		{"default expressions", "CREATE TABLE t (id bigint DEFAULT nextval('s'), ts timestamptz DEFAULT now(), CHECK (valid(id)))", []want{{
			Kind: KindDDL, Command: "CREATE TABLE", Effects: []Effect{eff(ActionCreate, "table", "t")}, Writes: list("t"), Functions: list("nextval", "now", "valid"),
		}}},

		// Locks.
		{"select for update", "SELECT * FROM t WHERE id = 1 FOR UPDATE", []want{{Kind: KindSelect, Command: "SELECT", Reads: list("t"), Lock: true}}},
		{"for share in subquery", "SELECT * FROM (SELECT * FROM t FOR KEY SHARE) s", []want{{Kind: KindSelect, Command: "SELECT", Reads: list("t"), Lock: true}}},
		{"lock table", "LOCK TABLE a, b IN ACCESS EXCLUSIVE MODE", []want{{Kind: KindLock, Command: "LOCK TABLE", Reads: list("a", "b"), Lock: true}}},

		// Transactions, sessions, notifications, maintenance.
		{"begin", "BEGIN", []want{{Kind: KindTransaction, Command: "BEGIN"}}},
		{"start transaction", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", []want{{Kind: KindTransaction, Command: "START TRANSACTION"}}},
		{"commit", "COMMIT", []want{{Kind: KindTransaction, Command: "COMMIT"}}},
		{"end", "END", []want{{Kind: KindTransaction, Command: "COMMIT"}}},
		{"rollback", "ROLLBACK", []want{{Kind: KindTransaction, Command: "ROLLBACK"}}},
		{"savepoint", "SAVEPOINT s1", []want{{Kind: KindTransaction, Command: "SAVEPOINT"}}},
		{"rollback to", "ROLLBACK TO SAVEPOINT s1", []want{{Kind: KindTransaction, Command: "ROLLBACK"}}},
		{"release", "RELEASE SAVEPOINT s1", []want{{Kind: KindTransaction, Command: "RELEASE"}}},
		{"prepare transaction", "PREPARE TRANSACTION 'tx1'", []want{{Kind: KindTransaction, Command: "PREPARE TRANSACTION"}}},
		{"commit prepared", "COMMIT PREPARED 'tx1'", []want{{Kind: KindTransaction, Command: "COMMIT PREPARED"}}},
		{"rollback prepared", "ROLLBACK PREPARED 'tx1'", []want{{Kind: KindTransaction, Command: "ROLLBACK PREPARED"}}},
		{"set", "SET search_path TO app, public", []want{{Kind: KindSet, Command: "SET", Setting: "search_path"}}},
		{"set local", "SET LOCAL statement_timeout = '5s'", []want{{Kind: KindSet, Command: "SET", Setting: "statement_timeout"}}},
		{"set role", "SET ROLE admin", []want{{Kind: KindSet, Command: "SET", Setting: "role"}}},
		{"set session authorization", "SET SESSION AUTHORIZATION admin", []want{{Kind: KindSet, Command: "SET", Setting: "session_authorization"}}},
		{"set transaction", "SET TRANSACTION READ ONLY", []want{{Kind: KindSet, Command: "SET", Setting: "transaction"}}},
		{"reset", "RESET work_mem", []want{{Kind: KindSet, Command: "RESET", Setting: "work_mem"}}},
		{"reset all", "RESET ALL", []want{{Kind: KindSet, Command: "RESET", Setting: "all"}}},
		{"set scs on", "SET standard_conforming_strings = on", []want{{Kind: KindSet, Command: "SET", Setting: "standard_conforming_strings"}}},
		{"set scs off", "SET standard_conforming_strings = off", []want{{Kind: KindSet, Command: "SET", Setting: "standard_conforming_strings", Opaque: true}}},
		{"reset scs", "RESET standard_conforming_strings", []want{{Kind: KindSet, Command: "RESET", Setting: "standard_conforming_strings", Opaque: true}}},
		{"set names utf8", "SET NAMES 'UTF-8'", []want{{Kind: KindSet, Command: "SET", Setting: "client_encoding"}}},
		{"set names sjis", "SET NAMES 'SJIS'", []want{{Kind: KindSet, Command: "SET", Setting: "client_encoding", Opaque: true}}},
		{"set client_encoding default", "SET client_encoding TO DEFAULT", []want{{Kind: KindSet, Command: "SET", Setting: "client_encoding", Opaque: true}}},
		{"set constraints", "SET CONSTRAINTS ALL DEFERRED", []want{{Kind: KindSet, Command: "SET CONSTRAINTS"}}},
		{"show", "SHOW work_mem", []want{{Kind: KindShow, Command: "SHOW", Setting: "work_mem"}}},
		{"show all", "SHOW ALL", []want{{Kind: KindShow, Command: "SHOW", Setting: "all"}}},
		{"listen", "LISTEN jobs", []want{{Kind: KindListen, Command: "LISTEN"}}},
		{"unlisten", "UNLISTEN *", []want{{Kind: KindListen, Command: "UNLISTEN"}}},
		{"notify", "NOTIFY jobs, 'x'", []want{{Kind: KindNotify, Command: "NOTIFY"}}},
		{"vacuum", "VACUUM (ANALYZE) a, s.b", []want{{Kind: KindMaintenance, Command: "VACUUM", Reads: list("a", "s.b")}}},
		{"analyze", "ANALYZE a", []want{{Kind: KindMaintenance, Command: "ANALYZE", Reads: list("a")}}},
		{"reindex", "REINDEX INDEX CONCURRENTLY i", []want{{Kind: KindMaintenance, Command: "REINDEX", Reads: list("i")}}},
		{"cluster", "CLUSTER t USING i", []want{{Kind: KindMaintenance, Command: "CLUSTER", Reads: list("t")}}},
		{"checkpoint", "CHECKPOINT", []want{{Kind: KindMaintenance, Command: "CHECKPOINT"}}},
		{"load", "LOAD 'plugin'", []want{{Kind: KindUtility, Command: "LOAD", Opaque: true}}},
		{"discard", "DISCARD ALL", []want{{Kind: KindUtility, Command: "DISCARD ALL"}}},
		{"declare", "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", []want{{Kind: KindSelect, Command: "DECLARE CURSOR", Reads: list("t")}}},
		{"fetch", "FETCH 10 FROM c", []want{{Kind: KindUtility, Command: "FETCH"}}},
		{"move", "MOVE NEXT IN c", []want{{Kind: KindUtility, Command: "MOVE"}}},
		{"close", "CLOSE c", []want{{Kind: KindUtility, Command: "CLOSE CURSOR"}}},
		{"close all", "CLOSE ALL", []want{{Kind: KindUtility, Command: "CLOSE CURSOR ALL"}}},

		// Privileges.
		{"grant", "GRANT SELECT, UPDATE ON t, s.u TO bob", []want{{
			Kind: KindGrant, Command: "GRANT", Effects: []Effect{eff(ActionGrant, "table", "t"), eff(ActionGrant, "table", "s.u")}, Writes: list("s.u", "t"),
		}}},
		{"revoke", "REVOKE ALL ON ALL TABLES IN SCHEMA app FROM bob", []want{{
			Kind: KindGrant, Command: "REVOKE", Effects: []Effect{eff(ActionRevoke, "table", "app.*")}, Writes: list("app.*"),
		}}},
		{"grant on schema", "GRANT USAGE ON SCHEMA app TO bob", []want{{
			Kind: KindGrant, Command: "GRANT", Effects: []Effect{eff(ActionGrant, "schema", "app")},
		}}},
		{"grant on function", "GRANT EXECUTE ON FUNCTION f(int) TO bob", []want{{
			Kind: KindGrant, Command: "GRANT", Effects: []Effect{eff(ActionGrant, "function", "f")},
		}}},
		{"grant role", "GRANT admin TO bob", []want{{
			Kind: KindGrant, Command: "GRANT ROLE", Effects: []Effect{eff(ActionGrant, "role", "admin")},
		}}},
		{"revoke role", "REVOKE admin FROM bob", []want{{
			Kind: KindGrant, Command: "REVOKE ROLE", Effects: []Effect{eff(ActionRevoke, "role", "admin")},
		}}},
		{"default privileges", "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO bob", []want{{
			Kind: KindGrant, Command: "ALTER DEFAULT PRIVILEGES", Effects: []Effect{eff(ActionGrant, "table", "app.*")}, Writes: list("app.*"),
		}}},

		// Names.
		{"quoted names", `SELECT * FROM "Users", "my.schema"."T", MySchema.MyTable`, []want{{
			Kind: KindSelect, Command: "SELECT", Reads: list(`"Users"`, `"my.schema"."T"`, "myschema.mytable"),
		}}},
		{"quote in name", `SELECT * FROM "a""b"`, []want{{Kind: KindSelect, Command: "SELECT", Reads: list(`"a""b"`)}}},
		{"catalog name", `SELECT * FROM db.s.t`, []want{{Kind: KindSelect, Command: "SELECT", Reads: list("db.s.t")}}},
		{"alias is not a table", "SELECT x.a FROM t AS x FOR UPDATE OF x", []want{{Kind: KindSelect, Command: "SELECT", Reads: list("t"), Lock: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParse(t, tt.sql, tt.wants...)
		})
	}
}

// TestDDL covers CREATE, ALTER and DROP of the object types.
func TestDDL(t *testing.T) {
	tests := []struct {
		sql     string
		command string
		kind    Kind
		effects []Effect
		reads   []string
		writes  []string
		funcs   []string
		opaque  bool
		setting string
	}{
		{"CREATE TABLE s.t (id int PRIMARY KEY, o int REFERENCES other (id))", "CREATE TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "table", "s.t")}, list("other"), list("s.t"), nil, false, ""},
		{"CREATE TEMP TABLE t (LIKE src INCLUDING ALL)", "CREATE TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "table", "t")}, list("src"), list("t"), nil, false, ""},
		{"CREATE TABLE c () INHERITS (accounts)", "CREATE TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "table", "c"), eff(ActionAlter, "table", "accounts")}, nil, list("accounts", "c"), nil, false, ""},
		{"CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)", "CREATE TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "table", "p1"), eff(ActionAlter, "table", "p")}, nil, list("p", "p1"), nil, false, ""},
		{"CREATE UNLOGGED TABLE IF NOT EXISTS t (a int)", "CREATE TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "table", "t")}, nil, list("t"), nil, false, ""},
		{"CREATE FOREIGN TABLE ft (a int) SERVER srv", "CREATE FOREIGN TABLE", KindDDL,
			[]Effect{eff(ActionCreate, "foreign table", "ft")}, nil, list("ft"), nil, false, ""},
		{"CREATE VIEW v AS SELECT * FROM t WHERE f(a)", "CREATE VIEW", KindDDL,
			[]Effect{eff(ActionCreate, "view", "v")}, list("t"), list("v"), list("f"), false, ""},
		{"CREATE OR REPLACE VIEW v AS WITH d AS (SELECT 1) SELECT * FROM d", "CREATE VIEW", KindDDL,
			[]Effect{eff(ActionCreate, "view", "v")}, nil, list("v"), nil, false, ""},
		{"REFRESH MATERIALIZED VIEW CONCURRENTLY m", "REFRESH MATERIALIZED VIEW", KindDDL,
			[]Effect{eff(ActionRefresh, "materialized view", "m")}, nil, list("m"), nil, false, ""},
		{"CREATE INDEX CONCURRENTLY i ON s.t USING gin (lower(a)) WHERE b", "CREATE INDEX", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "index", Name: "s.i", Table: "s.t"}}, nil, list("s.i", "s.t"), list("lower"), false, ""},
		{"CREATE INDEX ON t (a)", "CREATE INDEX", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "index", Table: "t"}}, nil, list("t"), nil, false, ""},
		{"DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX", KindDrop,
			[]Effect{eff(ActionDrop, "index", "i")}, nil, list("i"), nil, false, ""},
		{"CREATE SEQUENCE s START 1", "CREATE SEQUENCE", KindDDL,
			[]Effect{eff(ActionCreate, "sequence", "s")}, nil, list("s"), nil, false, ""},
		{"ALTER SEQUENCE s RESTART WITH 10", "ALTER SEQUENCE", KindDDL,
			[]Effect{eff(ActionAlter, "sequence", "s")}, nil, list("s"), nil, false, ""},
		{"ALTER TABLE t ADD COLUMN c int DEFAULT f()", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "t")}, nil, list("t"), list("f"), false, ""},
		{"ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (o) REFERENCES other (id)", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "t")}, list("other"), list("t"), nil, false, ""},
		{"ALTER TABLE t ALTER COLUMN c TYPE int USING to_int(c)", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "t")}, nil, list("t"), list("to_int"), false, ""},
		{"ALTER TABLE p ATTACH PARTITION p2 FOR VALUES IN (2)", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "p"), eff(ActionAlter, "table", "p2")}, nil, list("p", "p2"), nil, false, ""},
		{"ALTER TABLE c INHERIT parent", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "c"), eff(ActionAlter, "table", "parent")}, nil, list("c", "parent"), nil, false, ""},
		{"ALTER TABLE t DISABLE ROW LEVEL SECURITY", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "t")}, nil, list("t"), nil, false, ""},
		{"ALTER INDEX i SET (fillfactor = 50)", "ALTER INDEX", KindDDL,
			[]Effect{eff(ActionAlter, "index", "i")}, nil, list("i"), nil, false, ""},
		{"ALTER VIEW v OWNER TO bob", "ALTER VIEW", KindDDL,
			[]Effect{eff(ActionAlter, "view", "v")}, nil, list("v"), nil, false, ""},
		{"ALTER TABLE s.t RENAME TO u", "ALTER TABLE", KindDDL,
			[]Effect{{Action: ActionRename, Object: "table", Name: "s.t", NewName: "s.u"}}, nil, list("s.t", "s.u"), nil, false, ""},
		{"ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE", KindDDL,
			[]Effect{{Action: ActionRename, Object: "column", Name: "a", Table: "t", NewName: "b"}}, nil, list("t"), nil, false, ""},
		{"ALTER TABLE t RENAME CONSTRAINT c TO d", "ALTER TABLE", KindDDL,
			[]Effect{{Action: ActionRename, Object: "table constraint", Name: "c", Table: "t", NewName: "d"}}, nil, list("t"), nil, false, ""},
		{"ALTER TRIGGER tr ON t RENAME TO tr2", "ALTER TRIGGER", KindDDL,
			[]Effect{{Action: ActionRename, Object: "trigger", Name: "tr", Table: "t", NewName: "tr2"}}, nil, list("t"), nil, false, ""},
		{"ALTER TABLE t SET SCHEMA archive", "ALTER TABLE", KindDDL,
			[]Effect{{Action: ActionAlter, Object: "table", Name: "t", NewName: "archive.t"}}, nil, list("archive.t", "t"), nil, false, ""},
		{"ALTER FUNCTION s.f(int) RENAME TO g", "ALTER FUNCTION", KindDDL,
			[]Effect{{Action: ActionRename, Object: "function", Name: "s.f", NewName: "s.g"}}, nil, nil, nil, false, ""},
		{"ALTER TYPE t RENAME ATTRIBUTE a TO b", "ALTER TYPE", KindDDL,
			[]Effect{{Action: ActionRename, Object: "attribute", Name: "t.a", NewName: "b"}}, nil, nil, nil, false, ""},
		{"ALTER DOMAIN d RENAME CONSTRAINT c TO e", "ALTER DOMAIN", KindDDL,
			[]Effect{{Action: ActionRename, Object: "domain constraint", Name: "d.c", NewName: "e"}}, nil, nil, nil, false, ""},
		{"ALTER DATABASE d RENAME TO e", "ALTER DATABASE", KindDDL,
			[]Effect{{Action: ActionRename, Object: "database", Name: "d", NewName: "e"}}, nil, nil, nil, false, ""},
		{"ALTER SCHEMA a OWNER TO bob", "ALTER SCHEMA", KindDDL,
			[]Effect{eff(ActionAlter, "schema", "a")}, nil, nil, nil, false, ""},
		{"ALTER FUNCTION f() SECURITY DEFINER", "ALTER FUNCTION", KindDDL,
			[]Effect{eff(ActionAlter, "function", "f")}, nil, nil, nil, false, ""},
		{"CREATE SCHEMA s CREATE TABLE t (a int) CREATE VIEW v AS SELECT * FROM secret", "CREATE SCHEMA", KindDDL,
			[]Effect{eff(ActionCreate, "schema", "s"), eff(ActionCreate, "table", "s.t"), eff(ActionCreate, "view", "s.v")}, list("secret"), list("s.t", "s.v"), nil, false, ""},
		{"CREATE SCHEMA AUTHORIZATION bob", "CREATE SCHEMA", KindDDL,
			[]Effect{eff(ActionCreate, "schema", "bob")}, nil, nil, nil, false, ""},
		{"DROP SCHEMA s CASCADE", "DROP SCHEMA", KindDrop,
			[]Effect{eff(ActionDrop, "schema", "s"), eff(ActionDrop, "table", "s.*")}, nil, list("s.*"), nil, false, ""},
		{"DROP SCHEMA s", "DROP SCHEMA", KindDrop,
			[]Effect{eff(ActionDrop, "schema", "s")}, nil, nil, nil, false, ""},
		{"CREATE FUNCTION f(a int DEFAULT g()) RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$", "CREATE FUNCTION", KindDDL,
			[]Effect{eff(ActionCreate, "function", "f")}, nil, nil, nil, false, ""},
		{"CREATE FUNCTION h() RETURNS int BEGIN ATOMIC DELETE FROM t; SELECT 1; END", "CREATE FUNCTION", KindDDL,
			[]Effect{eff(ActionCreate, "function", "h")}, nil, nil, nil, false, ""},
		{"CREATE PROCEDURE s.p() LANGUAGE sql AS 'SELECT 1'", "CREATE PROCEDURE", KindDDL,
			[]Effect{eff(ActionCreate, "procedure", "s.p")}, nil, nil, nil, false, ""},
		{"DROP FUNCTION f(int), g", "DROP FUNCTION", KindDrop,
			[]Effect{eff(ActionDrop, "function", "f"), eff(ActionDrop, "function", "g")}, nil, nil, nil, false, ""},
		{"DROP PROCEDURE p", "DROP PROCEDURE", KindDrop,
			[]Effect{eff(ActionDrop, "procedure", "p")}, nil, nil, nil, false, ""},
		{"CREATE TRIGGER tr BEFORE INSERT ON s.t FOR EACH ROW WHEN (NEW.a > 0) EXECUTE FUNCTION f()", "CREATE TRIGGER", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "trigger", Name: "tr", Table: "s.t"}}, nil, list("s.t"), nil, false, ""},
		{"DROP TRIGGER tr ON s.t", "DROP TRIGGER", KindDrop,
			[]Effect{{Action: ActionDrop, Object: "trigger", Name: "tr", Table: "s.t"}}, nil, list("s.t"), nil, false, ""},
		{"CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM u", "CREATE RULE", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "rule", Name: "r", Table: "t"}}, list("u"), list("t"), nil, false, ""},
		{"DROP RULE r ON t", "DROP RULE", KindDrop,
			[]Effect{{Action: ActionDrop, Object: "rule", Name: "r", Table: "t"}}, nil, list("t"), nil, false, ""},
		{"CREATE POLICY p ON t USING (owner = current_user AND visible(id))", "CREATE POLICY", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "policy", Name: "p", Table: "t"}}, nil, list("t"), list("visible"), false, ""},
		{"ALTER POLICY p ON t USING (true)", "ALTER POLICY", KindDDL,
			[]Effect{{Action: ActionAlter, Object: "policy", Name: "p", Table: "t"}}, nil, list("t"), nil, false, ""},
		{"DROP POLICY p ON t", "DROP POLICY", KindDrop,
			[]Effect{{Action: ActionDrop, Object: "policy", Name: "p", Table: "t"}}, nil, list("t"), nil, false, ""},
		{"CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f()", "CREATE EVENT TRIGGER", KindDDL,
			[]Effect{eff(ActionCreate, "event trigger", "et")}, nil, nil, nil, false, ""},
		{"CREATE TYPE mood AS ENUM ('sad', 'ok')", "CREATE TYPE", KindDDL,
			[]Effect{eff(ActionCreate, "type", "mood")}, nil, nil, nil, false, ""},
		{"CREATE TYPE pair AS (a int, b int)", "CREATE TYPE", KindDDL,
			[]Effect{eff(ActionCreate, "type", "pair")}, nil, nil, nil, false, ""},
		{"ALTER TYPE mood ADD VALUE 'happy'", "ALTER TYPE", KindDDL,
			[]Effect{eff(ActionAlter, "type", "mood")}, nil, nil, nil, false, ""},
		{"DROP TYPE mood", "DROP TYPE", KindDrop,
			[]Effect{eff(ActionDrop, "type", "mood")}, nil, nil, nil, false, ""},
		{"CREATE DOMAIN posint AS int CHECK (VALUE > 0)", "CREATE DOMAIN", KindDDL,
			[]Effect{eff(ActionCreate, "domain", "posint")}, nil, nil, nil, false, ""},
		{"CREATE AGGREGATE agg (int) (sfunc = int4pl, stype = int)", "CREATE AGGREGATE", KindDDL,
			[]Effect{eff(ActionCreate, "aggregate", "agg")}, nil, nil, nil, false, ""},
		{"CREATE EXTENSION IF NOT EXISTS pg_trgm", "CREATE EXTENSION", KindDDL,
			[]Effect{eff(ActionCreate, "extension", "pg_trgm")}, nil, nil, nil, true, ""},
		{"ALTER EXTENSION pg_trgm UPDATE", "ALTER EXTENSION", KindDDL,
			[]Effect{eff(ActionAlter, "extension", "pg_trgm")}, nil, nil, nil, true, ""},
		{"DROP EXTENSION pg_trgm", "DROP EXTENSION", KindDrop,
			[]Effect{eff(ActionDrop, "extension", "pg_trgm")}, nil, nil, nil, false, ""},
		{"CREATE DATABASE d", "CREATE DATABASE", KindDDL,
			[]Effect{eff(ActionCreate, "database", "d")}, nil, nil, nil, false, ""},
		{"DROP DATABASE IF EXISTS d", "DROP DATABASE", KindDrop,
			[]Effect{eff(ActionDrop, "database", "d")}, nil, nil, nil, false, ""},
		{"CREATE ROLE bob LOGIN PASSWORD 'x'", "CREATE ROLE", KindDDL,
			[]Effect{eff(ActionCreate, "role", "bob")}, nil, nil, nil, false, ""},
		{"CREATE USER alice", "CREATE ROLE", KindDDL,
			[]Effect{eff(ActionCreate, "role", "alice")}, nil, nil, nil, false, ""},
		{"ALTER ROLE bob SUPERUSER", "ALTER ROLE", KindDDL,
			[]Effect{eff(ActionAlter, "role", "bob")}, nil, nil, nil, false, ""},
		{"ALTER ROLE bob SET standard_conforming_strings = off", "ALTER ROLE", KindDDL,
			[]Effect{eff(ActionAlter, "role", "bob")}, nil, nil, nil, true, "standard_conforming_strings"},
		{"ALTER ROLE ALL SET work_mem = '1GB'", "ALTER ROLE", KindDDL,
			[]Effect{eff(ActionAlter, "role", "*")}, nil, nil, nil, false, "work_mem"},
		{"DROP ROLE bob, alice", "DROP ROLE", KindDrop,
			[]Effect{eff(ActionDrop, "role", "bob"), eff(ActionDrop, "role", "alice")}, nil, nil, nil, false, ""},
		{"DROP OWNED BY bob", "DROP OWNED", KindDrop,
			[]Effect{eff(ActionDrop, "owned", "bob")}, nil, nil, nil, false, ""},
		{"REASSIGN OWNED BY bob TO alice", "REASSIGN OWNED", KindDDL,
			[]Effect{eff(ActionAlter, "owned", "bob")}, nil, nil, nil, false, ""},
		{"ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM", KindDDL,
			[]Effect{eff(ActionAlter, "system", "work_mem")}, nil, nil, nil, false, "work_mem"},
		{"ALTER SYSTEM SET standard_conforming_strings = off", "ALTER SYSTEM", KindDDL,
			[]Effect{eff(ActionAlter, "system", "standard_conforming_strings")}, nil, nil, nil, true, "standard_conforming_strings"},
		{"ALTER DATABASE d SET search_path = x", "ALTER DATABASE", KindDDL,
			[]Effect{eff(ActionAlter, "database", "d")}, nil, nil, nil, false, "search_path"},
		{"COMMENT ON TABLE t IS 'x'", "COMMENT", KindDDL,
			[]Effect{eff(ActionComment, "table", "t")}, nil, list("t"), nil, false, ""},
		{"COMMENT ON COLUMN s.t.c IS 'x'", "COMMENT", KindDDL,
			[]Effect{{Action: ActionComment, Object: "column", Name: "c", Table: "s.t"}}, nil, list("s.t"), nil, false, ""},
		{"SECURITY LABEL ON TABLE t IS 'secret'", "SECURITY LABEL", KindDDL,
			[]Effect{eff(ActionLabel, "table", "t")}, nil, list("t"), nil, false, ""},
		{"CREATE PUBLICATION p FOR TABLE a, s.b", "CREATE PUBLICATION", KindDDL,
			[]Effect{eff(ActionCreate, "publication", "p")}, list("a", "s.b"), nil, nil, false, ""},
		{"CREATE PUBLICATION p FOR ALL TABLES", "CREATE PUBLICATION", KindDDL,
			[]Effect{eff(ActionCreate, "publication", "p")}, list("*"), nil, nil, false, ""},
		{"CREATE PUBLICATION p FOR TABLES IN SCHEMA app", "CREATE PUBLICATION", KindDDL,
			[]Effect{eff(ActionCreate, "publication", "p")}, list("app.*"), nil, nil, false, ""},
		{"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", "CREATE SUBSCRIPTION", KindDDL,
			[]Effect{eff(ActionCreate, "subscription", "s")}, nil, nil, nil, true, ""},
		{"DROP SUBSCRIPTION s", "DROP SUBSCRIPTION", KindDrop,
			[]Effect{eff(ActionDrop, "subscription", "s")}, nil, nil, nil, false, ""},
		{"CREATE SERVER srv FOREIGN DATA WRAPPER postgres_fdw", "CREATE SERVER", KindDDL,
			[]Effect{eff(ActionCreate, "server", "srv")}, nil, nil, nil, false, ""},
		{"CREATE USER MAPPING FOR bob SERVER srv OPTIONS (user 'x')", "CREATE USER MAPPING", KindDDL,
			[]Effect{eff(ActionCreate, "user mapping", "bob@srv")}, nil, nil, nil, false, ""},
		{"IMPORT FOREIGN SCHEMA remote FROM SERVER srv INTO local", "IMPORT FOREIGN SCHEMA", KindDDL,
			[]Effect{eff(ActionCreate, "foreign table", "local.*")}, nil, list("local.*"), nil, false, ""},
		{"CREATE TABLESPACE ts LOCATION '/data'", "CREATE TABLESPACE", KindDDL,
			[]Effect{eff(ActionCreate, "tablespace", "ts")}, nil, nil, nil, false, ""},
		{"DROP TABLESPACE ts", "DROP TABLESPACE", KindDrop,
			[]Effect{eff(ActionDrop, "tablespace", "ts")}, nil, nil, nil, false, ""},
		{"ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b", "ALTER TABLE", KindDDL,
			[]Effect{eff(ActionAlter, "table", "*")}, nil, list("*"), nil, false, ""},
		{"CREATE STATISTICS st ON a, b FROM t", "CREATE STATISTICS", KindDDL,
			[]Effect{{Action: ActionCreate, Object: "statistics", Name: "st", Table: "t"}}, list("t"), list("t"), nil, false, ""},
		{"CREATE CAST (text AS int) WITH FUNCTION f(text)", "CREATE CAST", KindDDL,
			[]Effect{eff(ActionCreate, "cast", "text AS pg_catalog.int4")}, nil, nil, nil, false, ""},
		{"DROP CAST (text AS int)", "DROP CAST", KindDrop,
			[]Effect{eff(ActionDrop, "cast", "text AS pg_catalog.int4")}, nil, nil, nil, false, ""},
		{"DROP OPERATOR CLASS c USING btree", "DROP OPERATOR CLASS", KindDrop,
			[]Effect{eff(ActionDrop, "operator class", "c")}, nil, nil, nil, false, ""},
		{"CREATE LANGUAGE plsample HANDLER plsample_call_handler", "CREATE LANGUAGE", KindDDL,
			[]Effect{eff(ActionCreate, "language", "plsample")}, nil, nil, nil, false, ""},
		// Without a handler, CREATE LANGUAGE installs the extension.
		{"CREATE LANGUAGE plsample", "CREATE EXTENSION", KindDDL,
			[]Effect{eff(ActionCreate, "extension", "plsample")}, nil, nil, nil, true, ""},
		{"DROP MATERIALIZED VIEW m", "DROP MATERIALIZED VIEW", KindDrop,
			[]Effect{eff(ActionDrop, "materialized view", "m")}, nil, list("m"), nil, false, ""},
		{"DROP VIEW v1, v2", "DROP VIEW", KindDrop,
			[]Effect{eff(ActionDrop, "view", "v1"), eff(ActionDrop, "view", "v2")}, nil, list("v1", "v2"), nil, false, ""},
		{"DROP SEQUENCE s", "DROP SEQUENCE", KindDrop,
			[]Effect{eff(ActionDrop, "sequence", "s")}, nil, list("s"), nil, false, ""},
		{"DROP TEXT SEARCH CONFIGURATION c", "DROP TEXT SEARCH CONFIGURATION", KindDrop,
			[]Effect{eff(ActionDrop, "text search configuration", "c")}, nil, nil, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			checkParse(t, tt.sql, want{
				Kind: tt.kind, Command: tt.command, Effects: tt.effects,
				Reads: tt.reads, Writes: tt.writes, Functions: tt.funcs, Opaque: tt.opaque, Setting: tt.setting,
			})
		})
	}
}

// TestRealistic covers statements as agents, drivers, psql and pgbench
// send them.
func TestRealistic(t *testing.T) {
	sel := func(reads, funcs []string) want {
		return want{Kind: KindSelect, Command: "SELECT", Reads: reads, Functions: funcs}
	}
	tests := []struct {
		sql  string
		want want
	}{
		// pgbench's TPC-B-like script.
		{"BEGIN;", want{Kind: KindTransaction, Command: "BEGIN"}},
		{"UPDATE pgbench_accounts SET abalance = abalance + -4123 WHERE aid = 48611;", want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "pgbench_accounts", true)}, Reads: list("pgbench_accounts"), Writes: list("pgbench_accounts")}},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 48611;", sel(list("pgbench_accounts"), nil)},
		{"UPDATE pgbench_tellers SET tbalance = tbalance + -4123 WHERE tid = 7;", want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "pgbench_tellers", true)}, Reads: list("pgbench_tellers"), Writes: list("pgbench_tellers")}},
		{"UPDATE pgbench_branches SET bbalance = bbalance + -4123 WHERE bid = 1;", want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "pgbench_branches", true)}, Reads: list("pgbench_branches"), Writes: list("pgbench_branches")}},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48611, -4123, CURRENT_TIMESTAMP);", want{Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "pgbench_history", false)}, Writes: list("pgbench_history")}},
		{"END;", want{Kind: KindTransaction, Command: "COMMIT"}},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 1;", sel(list("pgbench_accounts"), nil)},
		{"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1;", want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "pgbench_accounts", true)}, Reads: list("pgbench_accounts"), Writes: list("pgbench_accounts")}},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, CURRENT_TIMESTAMP);", want{Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "pgbench_history", false)}, Writes: list("pgbench_history")}},
		// pgbench -i.
		{"drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", want{Kind: KindDrop, Command: "DROP TABLE",
			Effects: []Effect{eff(ActionDrop, "table", "pgbench_accounts"), eff(ActionDrop, "table", "pgbench_branches"), eff(ActionDrop, "table", "pgbench_history"), eff(ActionDrop, "table", "pgbench_tellers")},
			Writes:  list("pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers")}},
		{"create table pgbench_history(tid int,bid int,aid int,delta int,mtime timestamp,filler char(22))", want{Kind: KindDDL, Command: "CREATE TABLE",
			Effects: []Effect{eff(ActionCreate, "table", "pgbench_history")}, Writes: list("pgbench_history")}},
		{"truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", want{Kind: KindTruncate, Command: "TRUNCATE TABLE",
			Effects: []Effect{eff(ActionTruncate, "table", "pgbench_accounts"), eff(ActionTruncate, "table", "pgbench_branches"), eff(ActionTruncate, "table", "pgbench_history"), eff(ActionTruncate, "table", "pgbench_tellers")},
			Writes:  list("pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers")}},
		{"copy pgbench_accounts from stdin with (freeze on)", want{Kind: KindCopy, Command: "COPY",
			Effects: []Effect{tab(ActionInsert, "pgbench_accounts", false)}, Writes: list("pgbench_accounts"),
			Copy: &Copy{Direction: "from", Table: "pgbench_accounts", Stdio: true}}},
		{"insert into pgbench_branches(bid,bbalance) select bid, 0 from generate_series(1, 1) as bid", want{Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "pgbench_branches", false)}, Writes: list("pgbench_branches"), Functions: list("generate_series")}},
		{"vacuum analyze pgbench_branches", want{Kind: KindMaintenance, Command: "VACUUM", Reads: list("pgbench_branches")}},
		{"alter table pgbench_branches add primary key (bid)", want{Kind: KindDDL, Command: "ALTER TABLE",
			Effects: []Effect{eff(ActionAlter, "table", "pgbench_branches")}, Writes: list("pgbench_branches")}},
		{"alter table pgbench_tellers add constraint pgbench_tellers_bid_fkey foreign key (bid) references pgbench_branches", want{Kind: KindDDL, Command: "ALTER TABLE",
			Effects: []Effect{eff(ActionAlter, "table", "pgbench_tellers")}, Reads: list("pgbench_branches"), Writes: list("pgbench_tellers")}},

		// What drivers and ORMs send.
		{"SET application_name = 'agent'", want{Kind: KindSet, Command: "SET", Setting: "application_name"}},
		{"SELECT version()", sel(nil, list("version"))},
		{"SHOW TRANSACTION ISOLATION LEVEL", want{Kind: KindShow, Command: "SHOW", Setting: "transaction_isolation"}},
		{`SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."id" = $1 LIMIT $2`, sel(list("users"), nil)},
		{`INSERT INTO "orders" ("user_id","total","created_at") VALUES ($1,$2,$3) RETURNING "id"`, want{Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "orders", false)}, Writes: list("orders")}},
		{`UPDATE "orders" SET "status" = $1, "updated_at" = now() WHERE "orders"."id" = $2`, want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "orders", true)}, Reads: list("orders"), Writes: list("orders"), Functions: list("now")}},
		{`DELETE FROM "sessions" WHERE "expires_at" < now() - interval '1 day'`, want{Kind: KindDelete, Command: "DELETE",
			Effects: []Effect{tab(ActionDelete, "sessions", true)}, Reads: list("sessions"), Writes: list("sessions"), Functions: list("now")}},
		{"INSERT INTO kv (k, v) VALUES ('a', '1') ON CONFLICT (k) DO UPDATE SET v = excluded.v", want{Kind: KindInsert, Command: "INSERT",
			Effects: []Effect{tab(ActionInsert, "kv", false), tab(ActionUpdate, "kv", true)}, Reads: list("kv"), Writes: list("kv")}},
		{"SELECT id, name FROM products ORDER BY created_at DESC OFFSET 20 LIMIT 10", sel(list("products"), nil)},
		{"SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = 'NL' AND o.created_at > now() - interval '7 days'",
			sel(list("customers", "orders"), list("count", "now"))},
		{"SELECT date_trunc('day', created_at) AS d, sum(total) FROM orders GROUP BY 1 ORDER BY 1", sel(list("orders"), list("date_trunc", "sum"))},
		{"SELECT customer_id, rank() OVER (PARTITION BY region ORDER BY total DESC) FROM sales", sel(list("sales"), list("rank"))},
		{"SELECT data->>'name' FROM events WHERE data @> '{\"type\": \"login\"}' AND ts >= '2024-01-01'", sel(list("events"), nil)},
		{"SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE vip) AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = orders.id)",
			sel(list("customers", "orders", "refunds"), nil)},
		{"WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 hour') SELECT status, count(*) FROM recent GROUP BY status",
			sel(list("orders"), list("count", "now"))},
		{"SELECT * FROM generate_series(1, 10) g LEFT JOIN LATERAL (SELECT * FROM readings r WHERE r.slot = g LIMIT 1) x ON true",
			sel(list("readings"), list("generate_series"))},
		{"SELECT a FROM t1 UNION ALL SELECT b FROM t2 EXCEPT SELECT c FROM t3", sel(list("t1", "t2", "t3"), nil)},
		{"VALUES (1, 'one'), (2, 'two')", want{Kind: KindSelect, Command: "SELECT"}},
		{"TABLE audit_log", sel(list("audit_log"), nil)},
		{"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle'", sel(list("pg_stat_activity"), list("pg_terminate_backend"))},

		// What an agent exploring a database sends.
		{"SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
			sel(list("information_schema.tables"), nil)},
		{"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position",
			sel(list("information_schema.columns"), nil)},
		{"SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'",
			sel(list("pg_class", "pg_namespace"), list("pg_size_pretty", "pg_total_relation_size"))},
		// psql's \d users, first query.
		{`SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;`,
			sel(list("pg_catalog.pg_class", "pg_catalog.pg_namespace"), list("pg_catalog.pg_table_is_visible"))},
		{"EXPLAIN (FORMAT JSON) SELECT * FROM orders WHERE id = 1", want{Kind: KindExplain, Command: "EXPLAIN", Reads: list("orders"),
			Inner: &want{Kind: KindSelect, Command: "SELECT", Reads: list("orders")}}},
		{"EXPLAIN ANALYZE SELECT * FROM orders WHERE id = 1", want{Kind: KindExplain, Command: "EXPLAIN", Reads: list("orders"),
			Inner: &want{Kind: KindSelect, Command: "SELECT", Reads: list("orders")}}},

		// Migrations.
		{"ALTER TABLE users ADD COLUMN last_login timestamptz", want{Kind: KindDDL, Command: "ALTER TABLE",
			Effects: []Effect{eff(ActionAlter, "table", "users")}, Writes: list("users")}},
		{"CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (lower(email))", want{Kind: KindDDL, Command: "CREATE INDEX",
			Effects: []Effect{{Action: ActionCreate, Object: "index", Name: "users_email_idx", Table: "users"}}, Writes: list("users", "users_email_idx"), Functions: list("lower")}},
		{"CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", want{Kind: KindDDL, Command: "CREATE TABLE",
			Effects: []Effect{eff(ActionCreate, "table", "schema_migrations")}, Writes: list("schema_migrations"), Functions: list("now")}},
		{"DROP TABLE IF EXISTS tmp_import", want{Kind: KindDrop, Command: "DROP TABLE",
			Effects: []Effect{eff(ActionDrop, "table", "tmp_import")}, Writes: list("tmp_import")}},
		{"UPDATE users SET email = lower(email)", want{Kind: KindUpdate, Command: "UPDATE",
			Effects: []Effect{tab(ActionUpdate, "users", false)}, Reads: list("users"), Writes: list("users"), Functions: list("lower")}},
		{"DELETE FROM audit_log", want{Kind: KindDelete, Command: "DELETE",
			Effects: []Effect{tab(ActionDelete, "audit_log", false)}, Reads: list("audit_log"), Writes: list("audit_log")}},
		{"GRANT SELECT ON ALL TABLES IN SCHEMA public TO readonly", want{Kind: KindGrant, Command: "GRANT",
			Effects: []Effect{eff(ActionGrant, "table", "public.*")}, Writes: list("public.*")}},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d realistic statements", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			checkParse(t, tt.sql, tt.want)
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, sql := range []string{"", " \n\t", ";", ";;", "-- nothing", "/* nothing */", "/* a */ ; -- b"} {
		stmts, err := Parse(sql)
		if err != nil || len(stmts) != 0 {
			t.Errorf("Parse(%q) = %d statements, %v; want none, nil", sql, len(stmts), err)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT 1", list("SELECT 1")},
		{"  SELECT 1 ;  ", list("SELECT 1")},
		{"SELECT 1;SELECT 2", list("SELECT 1", "SELECT 2")},
		{"SELECT 1;\n-- next\nSELECT 'é';;\n\tUPDATE t SET a = 'x;y'\n", list("SELECT 1", "-- next\nSELECT 'é'", "UPDATE t SET a = 'x;y'")},
		{"/* c */ SELECT 1 /* d */; SELECT 2 -- e", list("/* c */ SELECT 1 /* d */", "SELECT 2 -- e")},
	}
	for _, tt := range tests {
		stmts, err := Parse(tt.sql)
		if err != nil {
			t.Fatalf("Parse(%q) error: %v", tt.sql, err)
		}
		var texts []string
		for _, s := range stmts {
			texts = append(texts, s.Text)
		}
		if !reflect.DeepEqual(texts, tt.want) {
			t.Errorf("Parse(%q) texts = %q, want %q", tt.sql, texts, tt.want)
		}
	}
}

func TestNormalizedFingerprint(t *testing.T) {
	a, err := Parse("SELECT * FROM t WHERE id = 1 AND name = 'x'")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("select * from t where id = 42 and name = 'y' -- other")
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT * FROM t WHERE id = $1 AND name = $2"; a[0].Normalized != want {
		t.Errorf("Normalized = %q, want %q", a[0].Normalized, want)
	}
	if a[0].Fingerprint == "" || a[0].Fingerprint != b[0].Fingerprint {
		t.Errorf("Fingerprints %q and %q, want equal and set", a[0].Fingerprint, b[0].Fingerprint)
	}
	c, err := Parse("SELECT * FROM u WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if c[0].Fingerprint == a[0].Fingerprint {
		t.Errorf("Fingerprint of a different statement is equal: %q", c[0].Fingerprint)
	}
	p, err := Parse("PREPARE p AS DELETE FROM t WHERE id = 5")
	if err != nil {
		t.Fatal(err)
	}
	if in := p[0].Inner; in == nil || in.Normalized != "DELETE FROM t WHERE id = $1" || in.Fingerprint == "" {
		t.Errorf("Parse(PREPARE ...).Inner = %+v, want normalized and fingerprinted", in)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		sql     string
		message string // substring
		pos     int    // for *SyntaxError
		limit   string // for *LimitError
	}{
		{"syntax", "SELEC 1", `syntax error at or near "SELEC"`, 1, ""},
		{"position in characters", "SELECT 'é' FRM t", `syntax error at or near "t"`, 16, ""},
		{"second statement", "SELECT 1; DROP TABLE", "syntax error at end of input", 21, ""},
		{"unterminated", "SELECT $$abc", "unterminated dollar-quoted string", 8, ""},
		{"nul", "SELECT 1\x00; DROP TABLE x", "NUL byte", 9, ""},
		{"invalid utf8", "SELECT 'a\xff'", "invalid byte sequence", 10, ""},
		{"too long", "SELECT '" + strings.Repeat("x", MaxQueryLen) + "'", "", 0, "query length"},
		{"too deep", "SELECT " + strings.Repeat("1+", 30000) + "1", "", 0, "nesting depth"},
		{"too deep union", "SELECT 1" + strings.Repeat(" UNION SELECT 1", 3000), "", 0, "nesting depth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := Parse(tt.sql)
			if err == nil {
				t.Fatalf("Parse(%.40q) = %d statements, want error", tt.sql, len(stmts))
			}
			if tt.limit != "" {
				var le *LimitError
				if !errors.As(err, &le) || le.Limit != tt.limit {
					t.Fatalf("Parse(%.40q) error = %v, want *LimitError for %q", tt.sql, err, tt.limit)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%.40q) error = %T %v, want *SyntaxError", tt.sql, err, err)
			}
			if !strings.Contains(se.Message, tt.message) || se.Position != tt.pos {
				t.Errorf("Parse(%.40q) error = %q at %d, want %q at %d", tt.sql, se.Message, se.Position, tt.message, tt.pos)
			}
		})
	}
}

// TestNesting checks that deep input is refused or parsed, never a crash
// (a crash takes the test binary down with it).
func TestNesting(t *testing.T) {
	shapes := map[string]func(n int) string{
		"plus":     func(n int) string { return "SELECT " + strings.Repeat("1+", n) + "1" },
		"concat":   func(n int) string { return "SELECT " + strings.Repeat("'a' || ", n) + "'a'" },
		"not":      func(n int) string { return "SELECT " + strings.Repeat("NOT ", n) + "true" },
		"cast":     func(n int) string { return "SELECT 1" + strings.Repeat("::int", n) },
		"collate":  func(n int) string { return "SELECT 'a'" + strings.Repeat(` COLLATE "C"`, n) },
		"union":    func(n int) string { return "SELECT 1, 2" + strings.Repeat(" UNION SELECT 1, 2", n) },
		"join":     func(n int) string { return "SELECT * FROM a" + strings.Repeat(" JOIN a ON x = 1 AND y = 2", n) },
		"subquery": func(n int) string { return strings.Repeat("SELECT (", n) + "1" + strings.Repeat(")", n) },
		"call":     func(n int) string { return "SELECT " + strings.Repeat("f(", n) + "1" + strings.Repeat(")", n) },
		"case": func(n int) string {
			return "SELECT " + strings.Repeat("CASE WHEN true THEN ", n) + "1" + strings.Repeat(" END", n)
		},
		"array": func(n int) string { return "SELECT " + strings.Repeat("ARRAY[", n) + "1" + strings.Repeat("]", n) },
		"in":    func(n int) string { return "SELECT " + strings.Repeat("1 IN (", n) + "1" + strings.Repeat(")", n) },
		"from": func(n int) string {
			return strings.Repeat("SELECT * FROM (", n) + "SELECT 1" + strings.Repeat(") s", n)
		},
		"with": func(n int) string {
			return strings.Repeat("WITH a AS (", n) + "SELECT 1" + strings.Repeat(") SELECT 1", n)
		},
		"do blocks": func(n int) string {
			return "DO $$" + strings.Repeat("BEGIN ", n) + "DELETE FROM t;" + strings.Repeat(" END;", n) + "$$"
		},
		"do ifs": func(n int) string {
			return "DO $$BEGIN " + strings.Repeat("IF true THEN ", n) + "PERFORM 1+1;" + strings.Repeat(" END IF;", n) + " END$$"
		},
		"do expression": func(n int) string {
			return "DO $$BEGIN PERFORM " + strings.Repeat("1+", n) + "1; END$$"
		},
		"wide in list": func(n int) string {
			return "SELECT * FROM t WHERE id IN (" + strings.Repeat("1, ", n) + "1)"
		},
		"wide and": func(n int) string { return "SELECT 1 WHERE " + strings.Repeat("a = 1 AND ", n) + "true" },
		"wide between": func(n int) string {
			return "SELECT 1 WHERE " + strings.Repeat("a + 1 BETWEEN b + 1 AND c + 1 AND ", n) + "true"
		},
		"wide case": func(n int) string {
			return "SELECT CASE " + strings.Repeat("WHEN x = 1 THEN 'a' || 'b' ", n) + "END"
		},
		"wide values": func(n int) string {
			return "INSERT INTO t VALUES " + strings.Repeat("(1, 'a' || 'b'), ", n) + "(1, 'c')"
		},
	}
	for name, shape := range shapes {
		for _, n := range []int{10, 300, 3000, 30000} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				sql := shape(n)
				if len(sql) > MaxQueryLen {
					t.Skip("longer than MaxQueryLen")
				}
				_, err := Parse(sql)
				var le *LimitError
				var se *SyntaxError
				if err != nil && !errors.As(err, &le) && !errors.As(err, &se) {
					t.Errorf("Parse(%s x %d) error = %v, want nil, *LimitError or *SyntaxError", name, n, err)
				}
				if strings.HasPrefix(name, "wide") && err != nil {
					t.Errorf("Parse(%s x %d) error = %v, want nil: width is not depth", name, n, err)
				}
				if n <= 100 && err != nil {
					t.Errorf("Parse(%s x %d) error = %v, want nil", name, n, err)
				}
			})
		}
	}
}

// TestDoTooDeep checks that a DO body too deep to analyse is opaque.
func TestDoTooDeep(t *testing.T) {
	sql := "DO $$" + strings.Repeat("BEGIN ", 3000) + "DELETE FROM t;" + strings.Repeat(" END;", 3000) + "$$"
	stmts, err := Parse(sql)
	if err != nil || len(stmts) != 1 || !stmts[0].Opaque {
		t.Errorf("Parse(DO with 3000 nested blocks) = %v, %v; want one opaque statement", stmts, err)
	}
}

// TestJSON checks the shape the policy input gets: lower-case keys, empty
// lists as [] rather than null.
func TestJSON(t *testing.T) {
	stmts, err := Parse("SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(stmts[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"kind":"select"`, `"effects":[]`, `"reads":[]`, `"writes":[]`, `"functions":[]`, `"opaque":false`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("json.Marshal(Parse(%q)) = %s, want it to contain %s", "SELECT 1", b, s)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := map[string]string{
		"users": "users", "_x1$": "_x1$", "Users": `"Users"`, "a.b": `"a.b"`, `a"b`: `"a""b"`,
		"1a": `"1a"`, "": `""`, "café": `"café"`, "a b": `"a b"`, "$a": `"$a"`,
	}
	for in, want := range tests {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %q, want %q", in, got, want)
		}
	}
}

var benchQueries = map[string]string{
	"select":  "SELECT abalance FROM pgbench_accounts WHERE aid = 48611",
	"update":  "UPDATE pgbench_accounts SET abalance = abalance + -4123 WHERE aid = 48611",
	"insert":  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48611, -4123, CURRENT_TIMESTAMP)",
	"join":    "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 20",
	"cte":     "WITH d AS (DELETE FROM t WHERE created < now() - interval '1 day' RETURNING *) INSERT INTO archive SELECT * FROM d",
	"do":      "DO $$ BEGIN DROP TABLE x; UPDATE y SET a = 1 WHERE b = 2; END $$",
	"explain": "EXPLAIN ANALYZE SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = 'NL'",
}

func BenchmarkParse(b *testing.B) {
	for name, q := range benchQueries {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseParallel(b *testing.B) {
	q := benchQueries["update"]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Parse(q); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkParseLarge(b *testing.B) {
	q := "INSERT INTO t (a, b, c) VALUES " + strings.Repeat("(1, 'some text', now()), ", 2000) + "(1, 'x', now())"
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrent runs Parse from several goroutines, for the race detector
// and pg_query's per-thread state.
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				for _, q := range benchQueries {
					if _, err := Parse(q); err != nil {
						t.Errorf("Parse(%q) error: %v", q, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestCopyFormat(t *testing.T) {
	tests := []struct {
		sql         string
		csv, binary bool
		delim       string
	}{
		{"COPY t TO STDOUT", false, false, ""},
		{"COPY t TO STDOUT WITH (FORMAT csv)", true, false, ""},
		{"COPY t TO STDOUT WITH CSV", true, false, ""},
		{"COPY t TO STDOUT (FORMAT binary)", false, true, ""},
		{"COPY t TO STDOUT WITH BINARY", false, true, ""},
		{"COPY t TO STDOUT (DELIMITER '|')", false, false, "|"},
		{"COPY t TO STDOUT DELIMITER ','", false, false, ","},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil || len(st) != 1 || st[0].Copy == nil {
			t.Fatalf("Parse(%q) = %+v, %v", tt.sql, st, err)
		}
		c := st[0].Copy
		if c.CSV != tt.csv || c.Binary != tt.binary || c.Delimiter != tt.delim {
			t.Errorf("Parse(%q).Copy = %+v, want csv %v binary %v delimiter %q", tt.sql, c, tt.csv, tt.binary, tt.delim)
		}
	}
}

func TestStatementCountLimit(t *testing.T) {
	_, err := Parse(strings.Repeat("SELECT 1;", MaxStatements+1))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "statement count" {
		t.Fatalf("Parse of %d statements = %v, want a statement count LimitError", MaxStatements+1, err)
	}
	if st, err := Parse(strings.Repeat("SELECT 1;", MaxStatements)); err != nil || len(st) != MaxStatements {
		t.Fatalf("Parse of %d statements = %d, %v", MaxStatements, len(st), err)
	}
}

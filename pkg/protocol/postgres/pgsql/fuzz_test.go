package pgsql

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics or crashes, that every
// statement's Text is part of the input, and that every relation an
// Effect names is in Writes. The committed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT 1; DROP TABLE x",
		"/* DROP TABLE x */ SELECT 1",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE b",
		"PREPARE p (int) AS DELETE FROM t WHERE id = $1; EXECUTE p(1); DEALLOCATE p",
		"DO $$ BEGIN DROP TABLE x; EXECUTE 'TRUNCATE y'; END $$",
		"COPY t (a, b) FROM STDIN WITH (FORMAT binary)",
		"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2",
		"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
		"CREATE SCHEMA s CREATE TABLE t (a int) CREATE VIEW v AS SELECT 1",
		"ALTER TABLE s.t RENAME TO u; ALTER TABLE t RENAME COLUMN a TO b",
		"GRANT SELECT ON ALL TABLES IN SCHEMA s TO r",
		`SELECT * FROM "A"."b""c" FOR UPDATE`,
		"SET standard_conforming_strings = off",
		"SELECT 'é' FRM t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := Parse(sql)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("Parse(%q) error: %v", sql, err)
			}
			return
		}
		for i := range stmts {
			s := &stmts[i]
			if s.Text == "" || !strings.Contains(sql, s.Text) {
				t.Errorf("Parse(%q)[%d].Text = %q, want a non-empty part of the input", sql, i, s.Text)
			}
			checkStatement(t, sql, s)
			if s.Inner != nil {
				checkStatement(t, sql, s.Inner)
			}
		}
	})
}

// checkStatement checks what must hold for any statement.
func checkStatement(t *testing.T, sql string, s *Statement) {
	t.Helper()
	if s.Kind == "" || s.Command == "" {
		t.Errorf("Parse(%q): statement %q has kind %q, command %q", sql, s.Text, s.Kind, s.Command)
	}
	for _, l := range [][]string{s.Reads, s.Writes, s.Functions} {
		if l == nil || !slices.IsSorted(l) || len(slices.Compact(slices.Clone(l))) != len(l) {
			t.Errorf("Parse(%q): statement %q: %q is not a sorted set", sql, s.Text, l)
		}
	}
	for _, e := range s.Effects {
		names := []string{e.Table}
		if isRelation(e.Object) {
			names = append(names, e.Name, e.NewName)
		}
		for _, n := range names {
			if n != "" && !slices.Contains(s.Writes, n) {
				t.Errorf("Parse(%q): statement %q: effect %+v names %q, not in Writes %q", sql, s.Text, e, n, s.Writes)
			}
		}
	}
}

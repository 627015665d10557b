package e2e

import (
	"strings"
	"testing"
)

func pgDaemon(t *testing.T, role string) (*daemon, *pgWorld) {
	t.Helper()
	w := remote(t)
	pw := postgresWorld(t)
	d := newDaemon(t, targetsYAML(w)+pw.pgTargets(role))
	return d, pw
}

// TestPostgresSelect: psql in a job reads through sluice (logged in
// upstream as sluice_app with SCRAM; the agent gave no password), and the
// default policy masks card numbers, SSNs and e-mail addresses in the
// rows it gets.
func TestPostgresSelect(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	out, errOut, code := d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-c", "SELECT id, name, email, card, ssn, note FROM customers ORDER BY id")
	if code != 0 {
		t.Fatalf("psql: exit %d: %s", code, errOut)
	}
	want := []string{
		"1|Alice|a****@example.com|[REDACTED:pan]|[REDACTED:us_ssn]|prefers email",
		"2|Bob|b**@example.org|[REDACTED:pan]|[REDACTED:us_ssn]|second card [REDACTED:pan] on file",
		"3|Carol|c****@example.net|||no card",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows through sluice:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	for _, secret := range []string{"4111", "5555-5555", "123-45-6789", "alice@", "378282246310005"} {
		if strings.Contains(out, secret) {
			t.Errorf("unmasked %q reached the agent", secret)
		}
	}
	d.waitLog("postgres session started", "database=shop")
}

// TestPostgresDenyDrop: on a production target DROP is refused with
// SQLSTATE 42501 and the policy's reason; the table is still there and
// the session goes on.
func TestPostgresDenyDrop(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	out, errOut, code := d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-v", "VERBOSITY=verbose",
		"-c", "DROP TABLE customers")
	if code == 0 {
		t.Fatalf("DROP TABLE allowed: %s", out)
	}
	want := `ERROR:  42501: sluice: DROP of table customers is not allowed on production target "pg"`
	if !strings.Contains(errOut, want) {
		t.Errorf("psql stderr:\n%s\nwant %q", errOut, want)
	}
	if n, err := w.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM customers"); err != nil || n != "3" {
		t.Fatalf("customers after the refused DROP: %q, %v", n, err)
	}
	// The same session keeps working after a refusal (ON_ERROR_STOP off).
	out, errOut, _ = d.job(tok, "nobody", w.pg.Bin("psql"), w.dsn("shop", "sslmode=disable"), "-X", "-A", "-t",
		"-c", "DROP TABLE customers", "-c", "SELECT count(*) FROM customers")
	if strings.TrimSpace(out) != "3" || !strings.Contains(errOut, "not allowed") {
		t.Errorf("session after a refusal: stdout %q stderr %q", out, errOut)
	}
	d.waitLog("statement refused", "kind=drop")
	// Not production: the same DROP of a scratch table is allowed.
	if _, err := w.pg.PsqlAs("sluice_app", "shop", "CREATE TABLE IF NOT EXISTS dropme (i int)"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.psql(w, tok, w.dsn6("shop", "sslmode=disable"), "-c", "DROP TABLE dropme"); code != 0 {
		t.Errorf("DROP on the dev target refused: %s", errOut)
	}
}

// TestPostgresHiddenWrites: a write hidden in a multi-statement string, a
// CTE, EXPLAIN ANALYZE, a comment or a DO block is seen and refused; none
// of it runs.
func TestPostgresHiddenWrites(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	tests := []struct {
		name, sql, want string
	}{
		{"multi-statement", "SELECT 1; DELETE FROM customers", "DELETE on customers without a WHERE clause"},
		{"cte", "WITH gone AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM gone", "DELETE on customers without a WHERE clause"},
		{"explain analyze", "EXPLAIN ANALYZE UPDATE customers SET name = 'x'", "UPDATE on customers without a WHERE clause"},
		{"comment", "/* SELECT 1; */ TRUNCATE customers", "TRUNCATE of table customers"},
		{"do block", "DO $$ BEGIN DELETE FROM customers; END $$", "DELETE on customers without a WHERE clause"},
		{"drop in select list", "SELECT 1 AS a; SELECT 2 AS b; DROP TABLE customers; SELECT 3", "DROP of table customers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-c", tt.sql)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("psql -c %q: exit %d stdout %q stderr %q; want refusal %q", tt.sql, code, out, errOut, tt.want)
			}
			if strings.TrimSpace(out) != "" {
				t.Errorf("part of a refused string ran: %q", out)
			}
		})
	}
	if n, err := w.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM customers WHERE name <> 'x'"); err != nil || n != "3" {
		t.Fatalf("customers changed by refused statements: %q, %v", n, err)
	}
}

// TestPostgresRefusalAbortsTransaction: inside a transaction block a
// refusal aborts the transaction as any PostgreSQL error would: later
// statements get 25P02 until ROLLBACK, and nothing of it is committed.
func TestPostgresRefusalAbortsTransaction(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	script := `BEGIN;
INSERT INTO scratch VALUES (1, 'in aborted tx');
DELETE FROM scratch;
SELECT 'after refusal';
ROLLBACK;
SELECT 'after rollback';
`
	out, errOut, _ := d.job(tok, "nobody", "sh", "-c",
		w.pg.Bin("psql")+" '"+w.dsn("shop", "sslmode=disable")+"' -X -A -t -v VERBOSITY=verbose <<'EOF'\n"+script+"EOF\n")
	if !strings.Contains(errOut, "42501: sluice: DELETE on scratch without a WHERE clause") {
		t.Errorf("no refusal in stderr:\n%s", errOut)
	}
	if !strings.Contains(errOut, "25P02: current transaction is aborted") {
		t.Errorf("statement after the refusal did not see an aborted transaction:\n%s", errOut)
	}
	if strings.Contains(out, "after refusal") || !strings.Contains(out, "after rollback") {
		t.Errorf("stdout %q: want only the statement after ROLLBACK", out)
	}
	if n, _ := w.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM scratch WHERE v = 'in aborted tx'"); n != "0" {
		t.Errorf("rows from the aborted transaction were committed: %s", n)
	}
}

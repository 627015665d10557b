package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestPostgresCopy: \copy out goes through masking (COPY TO STDOUT), \copy
// in writes through sluice.
func TestPostgresCopy(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	out, errOut, code := d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-c", `\copy (SELECT id, email, card FROM customers ORDER BY id) TO STDOUT`)
	if code != 0 {
		t.Fatalf("\\copy out: exit %d: %s", code, errOut)
	}
	want := "1\ta****@example.com\t[REDACTED:pan]\n2\tb**@example.org\t[REDACTED:pan]\n3\tc****@example.net\t\\N\n"
	if out != want {
		t.Errorf("\\copy out:\n%q\nwant\n%q", out, want)
	}
	out, errOut, code = d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-c", `\copy customers TO STDOUT WITH (FORMAT csv)`)
	if code != 0 || strings.Contains(out, "4111") || !strings.Contains(out, "[REDACTED:pan]") {
		t.Errorf("\\copy csv out: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := d.psql(w, tok, w.dsn("shop", "sslmode=disable"), "-c", `\copy customers TO STDOUT WITH (FORMAT binary)`); code == 0 || !strings.Contains(errOut, "binary format cannot be masked") {
		t.Errorf("binary COPY out: exit %d %q; want refusal", code, errOut)
	}
	// COPY FROM STDIN: the rows arrive.
	in := "10\tfrom copy\n11\tsecond\n"
	out, errOut, code = d.job(tok, "nobody", "sh", "-c", "printf '"+strings.ReplaceAll(in, "\t", "\\t")+"' | "+w.pg.Bin("psql")+" '"+w.dsn("shop", "sslmode=disable")+"' -X -v ON_ERROR_STOP=1 -c '\\copy scratch FROM STDIN'")
	if code != 0 || !strings.Contains(out, "COPY 2") {
		t.Fatalf("\\copy in: exit %d %q %q", code, out, errOut)
	}
	if n, _ := w.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM scratch WHERE id IN (10, 11)"); n != "2" {
		t.Errorf("rows copied in: %s, want 2", n)
	}
}

// TestPostgresCancel: Ctrl-C in psql sends a cancel request; sluice maps
// its key to the server's and the running pg_sleep is cancelled.
func TestPostgresCancel(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	start := time.Now()
	// psql is the job's only process; SIGINT after a moment is Ctrl-C.
	out, errOut, _ := d.job(tok, "nobody", "sh", "-c",
		w.pg.Bin("psql")+" '"+w.dsn("shop", "sslmode=disable")+"' -X -c 'SELECT pg_sleep(60)' & pid=$!; "+
			"while ! grep -q pg_sleep /proc/$pid/cmdline 2>/dev/null; do :; done; sleep 1; kill -INT $pid; wait $pid; echo exit=$?")
	if time.Since(start) > 30*time.Second {
		t.Fatalf("pg_sleep(60) was not cancelled (took %s)", time.Since(start))
	}
	if !strings.Contains(errOut, "canceling statement due to user request") {
		t.Errorf("psql after Ctrl-C: stdout %q stderr %q", out, errOut)
	}
}

// TestPostgresTLS: sslmode=require gets TLS from sluice; verify-full works
// once the agent trusts the host CA, and fails without it.
func TestPostgresTLS(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	caFile := filepath.Join(publicDir(t), "host-ca.pem")
	pem, errOut, code := d.sluice("ca")
	if code != 0 {
		t.Fatalf("sluice ca: %s", errOut)
	}
	if err := os.WriteFile(caFile, []byte(pem), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"sslmode=require", "sslmode=verify-full sslrootcert=" + caFile} {
		out, errOut, code := d.psql(w, tok, w.dsn("shop", mode), "-c", "SELECT 'tls ok'")
		if code != 0 || strings.TrimSpace(out) != "tls ok" {
			t.Errorf("%s: exit %d %q %q", mode, code, out, errOut)
		}
	}
	_, errOut, code = d.psql(w, tok, w.dsn("shop", "sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt"), "-c", "SELECT 1")
	if code == 0 || !strings.Contains(errOut, "certificate verify failed") {
		t.Errorf("verify-full without the host CA: exit %d %q; want a verification failure", code, errOut)
	}
	d.waitLog("postgres session started", "tls=true")
}

type pgOut struct {
	OK      bool       `json:"ok"`
	Code    string     `json:"code"`
	Err     string     `json:"err"`
	Rows    [][]string `json:"rows"`
	Steps   []pgOut    `json:"steps"`
	Traffic int        `json:"traffic"`
}

func (d *daemon) pgAgent(tok string, args ...string) pgOut {
	d.t.Helper()
	out, errOut, _ := d.job(tok, "nobody", append([]string{bins.agent}, args...)...)
	var r pgOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		d.t.Fatalf("agent %v: %q (stderr %q): %v", args[0], out, errOut, err)
	}
	return r
}

func (w *pgWorld) url(db string) string {
	return "postgres://agent@" + w.host.Addr4.String() + ":5432/" + db + "?sslmode=disable"
}

// TestPostgresPgxExtended: pgx's extended protocol through sluice: a
// pipeline (one Sync for several statements) with binary results, a
// refused statement in the middle failing on its own place, and binary
// columns masked (text columns in place; a bigint holding a card number
// nulled, since it cannot hold a marker).
func TestPostgresPgxExtended(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	r := d.pgAgent(tok, "pg", w.url("shop"), "SELECT id, email, card, pan, amount FROM customers c JOIN ledger l USING (id) WHERE c.id = $1", "1")
	if !r.OK || len(r.Rows) != 1 {
		t.Fatalf("pgx query: %+v", r)
	}
	want := []string{"1", "a****@example.com", "[REDACTED:pan]", "NULL", "10.5"}
	if strings.Join(r.Rows[0], "|") != strings.Join(want, "|") {
		t.Errorf("pgx row %q, want %q", r.Rows[0], want)
	}
	r = d.pgAgent(tok, "pg", w.url("shop"), "SELECT pan FROM ledger WHERE id = 2")
	if !r.OK || r.Rows[0][0] != "12345" {
		t.Errorf("a bigint that is no card number: %+v", r)
	}
	// A pipeline: every statement's Parse, Describe, Bind and Execute
	// in one go, one Sync at the end; binary results where pgx can.
	r = d.pgAgent(tok, "pgpipe", w.url("shop"),
		"SELECT count(*) FROM customers",
		"SELECT name, email FROM customers WHERE id = 2",
		"SELECT id, pan FROM ledger ORDER BY id")
	if !r.OK || len(r.Steps) != 3 || r.Steps[0].Rows[0][0] != "3" ||
		strings.Join(r.Steps[1].Rows[0], "|") != "Bob|b**@example.org" ||
		strings.Join(r.Steps[2].Rows[0], "|") != "1|NULL" || strings.Join(r.Steps[2].Rows[1], "|") != "2|12345" {
		t.Fatalf("pipeline: %+v", r)
	}
	// A refused statement in a pipeline: its Parse fails in place, as a
	// server error would; pgx then fails the batch before running any of
	// it, and the session stays usable.
	r = d.pgAgent(tok, "pgpipe", w.url("shop"),
		"INSERT INTO scratch VALUES (99, 'pipelined')",
		"DELETE FROM customers",
		"SELECT 'after'")
	if len(r.Steps) != 3 || r.Steps[1].OK || r.Steps[1].Code != "42501" || !strings.Contains(r.Steps[1].Err, "without a WHERE clause") {
		t.Fatalf("pipeline with a refused statement: %+v", r)
	}
	if !r.OK {
		t.Errorf("session unusable after the refused pipeline: %s", r.Err)
	}
	if n, _ := w.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM customers"); n != "3" {
		t.Errorf("customers after the pipeline: %s", n)
	}
}

// TestPostgresPgbench: pgbench's standard scripts, simple and prepared,
// run through sluice to the end without errors (its UPDATEs have WHERE
// clauses, so even the production target allows them).
func TestPostgresPgbench(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("bench-1", "ci", "10m")
	for _, args := range [][]string{
		{"-M", "simple", "-S"},
		{"-M", "prepared", "-S"},
		{"-M", "simple"},
		{"-M", "prepared"},
	} {
		argv := append([]string{w.pg.Bin("pgbench"), "-h", w.host.Addr4.String(), "-p", "5432", "-U", "agent", "-n", "-c", "4", "-t", "100"}, args...)
		argv = append(argv, "bench")
		out, errOut, code := d.job(tok, "nobody", argv...)
		if code != 0 || !strings.Contains(out, "number of failed transactions: 0") {
			t.Errorf("pgbench %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
}

// TestPostgresCredentialsNeverLeak: the password sluice logs in with is
// not in the job's environment, not in anything the server side sent the
// agent, not in sluice's logs or metrics.
func TestPostgresCredentialsNeverLeak(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	pw := w.passwords["sluice_app"]
	env, _, _ := d.job(tok, "nobody", "env")
	traffic := filepath.Join(publicDir(t), "traffic")
	_ = os.Chmod(filepath.Dir(traffic), 0o777)
	r := d.pgAgent(tok, "pgtraffic", w.url("shop"), traffic, "SELECT current_user, session_user")
	if !r.OK || r.Traffic == 0 {
		t.Fatalf("pgtraffic: %+v", r)
	}
	seen, err := os.ReadFile(traffic)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", d.metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for what, text := range map[string]string{
		"job environment": env, "server traffic seen by the agent": string(seen),
		"daemon log": d.Logs.String(), "metrics": string(metrics),
	} {
		if strings.Contains(text, pw) {
			t.Errorf("the upstream password appears in the %s", what)
		}
	}
	// The agent does learn which role it runs as upstream, through SQL;
	// that is a name, not a secret.
	if r.Rows[0][0] != "sluice_app" {
		t.Errorf("current_user = %q, want sluice_app", r.Rows[0][0])
	}
}

// TestPostgresUpstreamAuthAndTLS: sluice logs in with md5 and cleartext
// passwords as the server demands, and verifies the server's certificate
// when told to.
func TestPostgresUpstreamAuthAndTLS(t *testing.T) {
	w := remote(t)
	pw := postgresWorld(t)
	for _, role := range []string{"sluice_md5", "sluice_clear"} {
		t.Run(role, func(t *testing.T) {
			d := newDaemon(t, targetsYAML(w)+pw.pgTargets(role))
			tok := d.token("build-1", "ci", "10m")
			out, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", "SELECT current_user")
			if code != 0 || strings.TrimSpace(out) != role {
				t.Errorf("login as %s: exit %d %q %q", role, code, out, errOut)
			}
		})
	}
	t.Run("verify-full", func(t *testing.T) {
		targets := strings.Replace(pw.pgTargets("sluice_app"), "    labels: {env: production}\n",
			"    labels: {env: production}\n    tls: {mode: verify-full, ca_file: "+pw.pg.CAFile+"}\n", 1)
		d := newDaemon(t, targetsYAML(w)+targets)
		tok := d.token("build-1", "ci", "10m")
		out, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		if code != 0 || strings.TrimSpace(out) != "t" {
			t.Errorf("upstream verify-full: exit %d %q %q", code, out, errOut)
		}
	})
	t.Run("verify-full with the wrong CA", func(t *testing.T) {
		targets := strings.Replace(pw.pgTargets("sluice_app"), "    labels: {env: production}\n",
			"    labels: {env: production}\n    tls: {mode: verify-full, ca_file: /etc/ssl/certs/ca-certificates.crt}\n", 1)
		d := newDaemon(t, targetsYAML(w)+targets)
		tok := d.token("build-1", "ci", "10m")
		_, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", "SELECT 1")
		if code == 0 || !strings.Contains(errOut, `cannot reach target pg`) {
			t.Errorf("upstream with an unverifiable certificate: exit %d %q", code, errOut)
		}
	})
}

// TestPostgresRefusedConnections: refusals before any statement come as
// PostgreSQL FATAL errors psql prints: policy refusing the target,
// replication connections.
func TestPostgresRefusedConnections(t *testing.T) {
	w := remote(t)
	pw := postgresWorld(t)
	targets := strings.Replace(pw.pgTargets("sluice_app"), "    labels: {env: production}\n", "    labels: {env: production, allowed_groups: dba}\n", 1)
	d := newDaemon(t, targetsYAML(w)+targets)
	tok := d.token("build-1", "ci", "10m")
	_, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", "SELECT 1")
	if code == 0 || !strings.Contains(errOut, `FATAL:  sluice: target "pg" is restricted to groups dba`) {
		t.Errorf("refused by policy: exit %d %q", code, errOut)
	}
	// With sslmode=require the refusal still arrives, over TLS.
	_, errOut, code = d.psql(pw, tok, pw.dsn("shop", "sslmode=require"), "-c", "SELECT 1")
	if code == 0 || !strings.Contains(errOut, `restricted to groups dba`) {
		t.Errorf("refused by policy over TLS: exit %d %q", code, errOut)
	}
	_, errOut, code = d.psql(pw, tok, pw.dsn6("shop", "sslmode=disable replication=database"), "-c", "IDENTIFY_SYSTEM")
	if code == 0 || !strings.Contains(errOut, "replication connections are not allowed") {
		t.Errorf("replication: exit %d %q", code, errOut)
	}
}

// TestPostgresColumnMasking: column rules from an operator's policy file
// apply by the column a value comes from, whatever it is called in the
// result, in text and binary formats and in COPY; an expression over a
// covered table is masked too, a count is not.
func TestPostgresColumnMasking(t *testing.T) {
	w := remote(t)
	pw := postgresWorld(t)
	polDir := t.TempDir()
	for _, f := range []string{"sluice.rego", "postgres.rego"} {
		src, err := os.ReadFile(filepath.Join("../../policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(polDir, f), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	extra := `package sluice

mask contains {"column": "customers.note", "strategy": "hash"}

mask contains {"column": "*ssn*", "strategy": "null"}
`
	if err := os.WriteFile(filepath.Join(polDir, "columns.rego"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+"policy_dir: "+polDir+"\n")
	tok := d.token("build-1", "ci", "10m")
	q := func(sql string) string {
		t.Helper()
		out, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", sql)
		if code != 0 {
			t.Fatalf("psql -c %q: %s", sql, errOut)
		}
		return strings.TrimSpace(out)
	}
	plain := q("SELECT note, ssn FROM customers WHERE id = 1")
	parts := strings.Split(plain, "|")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "h:") || len(parts[0]) != 18 || parts[1] != "" {
		t.Fatalf("note and ssn: %q; want a pseudonym and NULL", plain)
	}
	if got := q("SELECT note AS n, ssn AS x FROM customers WHERE id = 1"); got != plain {
		t.Errorf("aliased columns: %q, want %q", got, plain)
	}
	if got := q("SELECT upper(note) FROM customers WHERE id = 1"); !strings.HasPrefix(got, "h:") {
		t.Errorf("expression over a covered table: %q, want it masked", got)
	}
	if got := q("SELECT count(*) FROM customers"); got != "3" {
		t.Errorf("count(*): %q", got)
	}
	if got := q("SELECT name FROM customers WHERE id = 1"); got != "Alice" {
		t.Errorf("uncovered column: %q", got)
	}
	// Binary format through pgx: the ssn column arrives as NULL.
	r := d.pgAgent(tok, "pg", pw.url("shop"), "SELECT ssn, note FROM customers WHERE id = $1", "2")
	if !r.OK || r.Rows[0][0] != "NULL" || !strings.HasPrefix(r.Rows[0][1], "h:") {
		t.Errorf("pgx binary: %+v", r)
	}
	out, errOut, code := d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", `\copy customers (id, note, ssn) TO STDOUT`)
	if code != 0 || !strings.Contains(out, "1\th:") || !strings.Contains(out, "\t\\N\n") || strings.Contains(out, "prefers") {
		t.Errorf("COPY with column rules: exit %d %q %q", code, out, errOut)
	}
}

// TestPostgresNoticesAndErrorsMasked: data echoed in notices and error
// details is masked like rows are.
func TestPostgresNoticesAndErrorsMasked(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	if _, err := w.pg.PsqlAs("sluice_app", "shop", "CREATE UNIQUE INDEX IF NOT EXISTS customers_email ON customers (email)"); err != nil {
		t.Fatal(err)
	}
	tok := d.token("build-1", "ci", "10m")
	_, errOut, _ := d.psql(w, tok, w.dsn6("shop", "sslmode=disable"),
		"-c", "DO $$ BEGIN RAISE NOTICE 'charging card %', '4111111111111111'; END $$")
	if !strings.Contains(errOut, "charging card [REDACTED:pan]") || strings.Contains(errOut, "4111") {
		t.Errorf("notice: %q", errOut)
	}
	_, errOut, code := d.psql(w, tok, w.dsn6("shop", "sslmode=disable"),
		"-c", "INSERT INTO customers (id, email) VALUES (99, 'alice@example.com')")
	if code == 0 || strings.Contains(errOut, "alice@") || !strings.Contains(errOut, "a****@example.com") {
		t.Errorf("unique violation detail: %q", errOut)
	}
	// LISTEN/NOTIFY payloads are data too.
	out, errOut, code := d.psql(w, tok, w.dsn6("shop", "sslmode=disable"),
		"-c", "LISTEN orders", "-c", "NOTIFY orders, 'paid with 5555-5555-5555-4444'", "-c", "SELECT 'done'")
	if code != 0 || !strings.Contains(out+errOut, `payload "paid with [REDACTED:pan]"`) || strings.Contains(out+errOut, "5555-5555") {
		t.Errorf("notification: exit %d %q %q", code, out, errOut)
	}
}

// TestPostgresLargeResultStreams: a result far larger than any buffer
// flows through row by row: the daemon's peak memory barely moves while
// 3 million masked rows (about 150 MB) pass.
func TestPostgresLargeResultStreams(t *testing.T) {
	d, w := pgDaemon(t, "sluice_app")
	tok := d.token("build-1", "ci", "10m")
	before := vmHWM(t, d.Pid())
	out, errOut, code := d.job(tok, "nobody", "sh", "-c",
		w.pg.Bin("psql")+" '"+w.dsn("shop", "sslmode=disable")+"' -X -A -t -c "+
			`"COPY (SELECT g, 'user' || g || '@example.com', 'note ' || g FROM generate_series(1, 3000000) g) TO STDOUT" | tail -1`)
	if code != 0 || out != "3000000\tu**********@example.com\tnote 3000000\n" {
		t.Fatalf("large COPY: exit %d, last row %q, %s", code, out, errOut)
	}
	after := vmHWM(t, d.Pid())
	t.Logf("sluiced peak RSS %d kB before, %d kB after", before, after)
	if after-before > 64<<10 {
		t.Errorf("peak RSS grew by %d kB while streaming: rows are being buffered", after-before)
	}
}

// vmHWM is a process's peak resident set size in kB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gate/sluice/test/testenv"
	"github.com/sluice-gate/sluice/test/testhost"
)

// pgWorld is a PostgreSQL server on its own remote host with the roles
// sluice logs in as (one per password method), a "shop" database with
// customer data to mask, and a pgbench database.
type pgWorld struct {
	host    *testhost.Host
	pg      *testhost.Postgres
	secrets string // directory of password files
	// passwords by role, to check they never leak.
	passwords map[string]string
}

var (
	thePG   shared[pgWorld]
	pgRoles = []string{"sluice_app", "sluice_md5", "sluice_clear"}
)

func postgresWorld(t *testing.T) *pgWorld {
	t.Helper()
	remote(t)
	testenv.Command(t, "pgbench")
	return thePG.get(t, "PostgreSQL", (*pgWorld).setup)
}

func (w *pgWorld) setup() error {
	var err error
	if w.host, err = testhost.New(hostPrefix, 3); err != nil {
		return err
	}
	atExit(func() { w.host.Close() })
	dir, err := os.MkdirTemp("", "sluice-e2e-pg-")
	if err != nil {
		return err
	}
	atExit(func() { os.RemoveAll(dir) })
	if w.pg, err = testhost.StartPostgres(w.host, filepath.Join(dir, "pg")); err != nil {
		return err
	}
	atExit(w.pg.Stop)
	w.secrets = filepath.Join(dir, "secrets")
	if err := os.Mkdir(w.secrets, 0o700); err != nil {
		return err
	}
	w.passwords = map[string]string{}
	var sql strings.Builder
	for _, role := range pgRoles {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		pw := "pw-" + hex.EncodeToString(b)
		w.passwords[role] = pw
		if err := os.WriteFile(filepath.Join(w.secrets, role), []byte(pw+"\n"), 0o600); err != nil {
			return err
		}
		enc, member := "scram-sha-256", ""
		switch role {
		case "sluice_md5":
			enc, member = "md5", " IN ROLE md5_login"
		case "sluice_clear":
			member = " IN ROLE password_login"
		}
		fmt.Fprintf(&sql, "SET password_encryption = '%s'; CREATE ROLE %s LOGIN PASSWORD '%s'%s;", enc, role, pw, member)
	}
	if _, err := w.pg.Psql("postgres", sql.String()); err != nil {
		return err
	}
	for _, db := range []string{"shop", "bench"} {
		if _, err := w.pg.Psql("postgres", "CREATE DATABASE "+db+" OWNER sluice_app"); err != nil {
			return err
		}
	}
	if _, err := w.pg.PsqlAs("sluice_app", "shop", `
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text, ssn text, note text);
INSERT INTO customers VALUES
 (1, 'Alice', 'alice@example.com', '4111 1111 1111 1111', '123-45-6789', 'prefers email'),
 (2, 'Bob', 'bob@example.org', '5555-5555-5555-4444', '234-56-7890', 'second card 378282246310005 on file'),
 (3, 'Carol', 'carol@example.net', NULL, NULL, 'no card');
CREATE TABLE scratch (id int, v text);
CREATE TABLE ledger (id bigint, amount numeric, pan bigint);
INSERT INTO ledger VALUES (1, 10.5, 4111111111111111), (2, 99.99, 12345);
GRANT ALL ON ALL TABLES IN SCHEMA public TO sluice_md5, sluice_clear;
`); err != nil {
		return err
	}
	init := w.pg.Command("pgbench", "-i", "-q", "-s", "1", "-U", "sluice_app", "bench")
	if out, err := init.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return nil
}

// pgTargets is target YAML for the PostgreSQL host: "pg" over IPv4,
// labelled production, and "pgdev" over IPv6, not.
func (w *pgWorld) pgTargets(role string) string {
	return fmt.Sprintf(`  - name: pg
    address: %s:5432
    protocol: postgres
    labels: {env: production}
    credentials: {username: %s, password_file: %s}
  - name: pgdev
    address: "[%s]:5432"
    protocol: postgres
    labels: {env: dev}
    credentials: {username: %s, password_file: %s}
`, w.host.Addr4, role, filepath.Join(w.secrets, role), w.host.Addr6, role, filepath.Join(w.secrets, role))
}

// psql runs the real psql in a job against dsn and returns its output.
func (d *daemon) psql(w *pgWorld, tok, dsn string, args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	argv := append([]string{w.pg.Bin("psql"), dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)
	return d.job(tok, "nobody", argv...)
}

func (w *pgWorld) dsn(db string, extra ...string) string {
	return strings.Join(append([]string{fmt.Sprintf("host=%s port=5432 dbname=%s user=agent", w.host.Addr4, db)}, extra...), " ")
}

func (w *pgWorld) dsn6(db string, extra ...string) string {
	return strings.Join(append([]string{fmt.Sprintf("host=%s port=5432 dbname=%s user=agent", w.host.Addr6, db)}, extra...), " ")
}

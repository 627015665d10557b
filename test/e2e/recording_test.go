package e2e

import (
	"path/filepath"

	"encoding/json"
	"filippo.io/age"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/recorder"
)

// backends are the session index stores every recording test runs with:
// the embedded SQLite, and PostgreSQL as a fleet would share it.
func backends(t *testing.T) map[string]string {
	t.Helper()
	pw := postgresWorld(t)
	db := fmt.Sprintf("index_%d", time.Now().UnixNano())
	if _, err := pw.pg.Psql("postgres", "CREATE DATABASE "+db+" OWNER sluice_app"); err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=5432 user=sluice_app password=%s dbname=%s sslmode=require", pw.host.Addr4, pw.passwords["sluice_app"], db)
	return map[string]string{
		"sqlite":   "",
		"postgres": "store: {driver: postgres, dsn: \"" + dsn + "\"}\n",
	}
}

func (d *daemon) sessions(t *testing.T, args ...string) []recorder.Entry {
	t.Helper()
	out, errOut, code := d.sluice(append([]string{"sessions", "--json", "--config", d.cfgPath}, args...)...)
	if code != 0 {
		t.Fatalf("sluice sessions: %s", errOut)
	}
	var list []recorder.Entry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("sessions --json %q: %v", out, err)
	}
	return list
}

// TestRecording: a psql session through sluice is recorded: the replay
// shows the statements, decisions and masked results; the chain verifies;
// a refused connection is recorded too; editing, deleting, reordering or
// truncating the file is detected and located.
func TestRecording(t *testing.T) {
	for name, storeYAML := range backends(t) {
		t.Run(name, func(t *testing.T) {
			w := remote(t)
			pw := postgresWorld(t)
			d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+storeYAML)
			tok := d.token("recorded-1", "ci", "10m")
			if _, errOut, code := d.job(tok, "nobody", pw.pg.Bin("psql"), pw.dsn("shop", "sslmode=disable"), "-X", "-A", "-t",
				"-c", "SELECT id, email, card FROM customers WHERE id = 1",
				"-c", "DROP TABLE customers",
				"-c", "INSERT INTO scratch VALUES (7, 'recorded')"); code != 0 || !strings.Contains(errOut, "not allowed") {
				// psql without ON_ERROR_STOP runs on past the refused DROP and exits 0.
				t.Fatalf("psql: exit %d %s", code, errOut)
			}
			// A refused connection: a port that is no target.
			d.agentOnce(tok, "nobody", "connect", w.web.Addr4.String()+":8080", "http")
			d.waitLog("connection refused", "outcome=unknown_target")

			var pg, refused *recorder.Entry
			waitFor(t, func() bool {
				for _, s := range d.sessions(t, "--sub", "recorded-1") {
					switch {
					case s.Target == "pg" && s.State == "closed":
						pg = &s
					case s.State == "refused":
						refused = &s
					}
				}
				return pg != nil && refused != nil
			}, "both sessions in the index")
			if pg.Requests < 4 || pg.Refusals != 1 || pg.Exe != pw.pg.Bin("psql") {
				t.Errorf("index entry %+v: want the connect and 3 statements, one refusal, psql", pg)
			}

			replay, errOut, code := d.sluice("replay", pg.ID, "--config", d.cfgPath)
			if code != 0 {
				t.Fatalf("replay: %s", errOut)
			}
			for _, want := range []string{"recorded-1", "SELECT id, email, card FROM customers WHERE id = 1", "a****@example.com",
				"[REDACTED:pan]", "DROP TABLE customers", "DROP of table customers is not allowed", "INSERT INTO scratch", "INSERT 0 1"} {
				if !strings.Contains(replay, want) {
					t.Errorf("replay lacks %q:\n%s", want, replay)
				}
			}
			if strings.Contains(replay, "4111") || strings.Contains(replay, "alice@") {
				t.Errorf("the recording holds unmasked data:\n%s", replay)
			}
			export, _, _ := d.sluice("export", pg.ID, "--config", d.cfgPath)
			if n := strings.Count(export, "\n"); n < 8 {
				t.Errorf("export has %d lines:\n%s", n, export)
			}
			if out, _, code := d.sluice("verify", pg.ID, refused.ID, "--config", d.cfgPath); code != 0 {
				t.Fatalf("verify of intact recordings: %s", out)
			}
			rep, _, _ := d.sluice("replay", refused.ID, "--config", d.cfgPath)
			if !strings.Contains(rep, "is not a configured target") {
				t.Errorf("refused connection's replay:\n%s", rep)
			}
			tamper(t, d, pg)
		})
	}
}

// tamper damages a copy of the recording in every way, verifying each.
func tamper(t *testing.T, d *daemon, s *recorder.Entry) {
	t.Helper()
	orig, err := os.ReadFile(s.File)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	cases := []struct {
		name  string
		edit  func() string
		where string
	}{
		{"flip a byte", func() string {
			b := []byte(orig)
			i := strings.Index(string(b), "DROP TABLE")
			b[i] = 'd'
			return string(b)
		}, "record"},
		{"drop a record", func() string { return strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), "") }, "record 3"},
		{"reorder records", func() string {
			l := append([]string{}, lines...)
			l[2], l[3] = l[3], l[2]
			return strings.Join(l, "")
		}, "record"},
		{"truncate", func() string { return strings.Join(lines[:len(lines)-2], "") }, "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(s.File, []byte(tc.edit()), 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, code := d.sluice("verify", s.ID, "--config", d.cfgPath)
			if code == 0 || !strings.Contains(out, "tampered") || !strings.Contains(out, tc.where) {
				t.Errorf("verify after %s: exit %d\n%s", tc.name, code, out)
			}
			if _, _, code := d.sluice("verify", "--all", "--config", d.cfgPath); code == 0 {
				t.Errorf("verify --all passed with a %s recording", tc.name)
			}
		})
	}
	if err := os.WriteFile(s.File, orig, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRecordingCrash: kill -9 of the daemon in the middle of a session.
// The recording verifies up to its last record and the session shows as
// interrupted after the restart; every INSERT the agent saw acknowledged is
// in it (writes are audit-critical: on disk before they went on).
func TestRecordingCrash(t *testing.T) {
	for name, storeYAML := range backends(t) {
		t.Run(name, func(t *testing.T) {
			w := remote(t)
			pw := postgresWorld(t)
			d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+storeYAML)
			tok := d.token("crash-1", "ci", "10m")
			marker := fmt.Sprintf("crash-%d", time.Now().UnixNano())
			script := fmt.Sprintf(`for i in $(seq 1 100000); do echo "INSERT INTO scratch VALUES ($i, '%s');"; done | %s '%s' -X -q -v ON_ERROR_STOP=1 -e`,
				marker, pw.pg.Bin("psql"), pw.dsn("shop", "sslmode=disable"))
			cmd := exec.Command(bins.sluice, "run", "--token-file", tok, "--user", "nobody", "--", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+d.socket)
			var out strings.Builder
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool {
				n, _ := pw.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM scratch WHERE v = '"+marker+"'")
				c, _ := strconv.Atoi(n)
				return c >= 50
			}, "inserts to flow")
			d.Kill()
			_ = cmd.Wait()
			// psql -e echoes each statement it sent; the acknowledged ones
			// are those the server committed.
			acked, _ := pw.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM scratch WHERE v = '"+marker+"'")
			d.start()
			var s *recorder.Entry
			for _, e := range d.sessions(t, "--sub", "crash-1") {
				if e.Target == "pg" {
					s = &e
				}
			}
			if s == nil || s.State != "interrupted" {
				t.Fatalf("session after the crash: %+v", s)
			}
			vout, _, code := d.sluice("verify", s.ID, "--config", d.cfgPath)
			if code != 0 || !strings.Contains(vout, "interrupted") {
				t.Fatalf("verify after the crash: exit %d %s", code, vout)
			}
			exp, _, _ := d.sluice("export", s.ID, "--config", d.cfgPath)
			recorded := strings.Count(exp, marker)
			n, _ := strconv.Atoi(acked)
			t.Logf("inserts committed %d, recorded requests %d", n, recorded)
			if recorded < n {
				t.Errorf("%d inserts were committed but only %d are in the recording", n, recorded)
			}
		})
	}
}

// TestRecordingRetention: recordings older than max_age go, then the
// oldest beyond max_bytes; every deletion is itself logged.
func TestRecordingRetention(t *testing.T) {
	for name, storeYAML := range backends(t) {
		t.Run(name, func(t *testing.T) {
			w := remote(t)
			pw := postgresWorld(t)
			d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+storeYAML+"recording: {max_age: 3s}\n")
			tok := d.token("retained-1", "ci", "10m")
			d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", "SELECT 1")
			var first recorder.Entry
			waitFor(t, func() bool {
				l := d.sessions(t, "--sub", "retained-1")
				if len(l) == 1 && l[0].State == "closed" {
					first = l[0]
					return true
				}
				return false
			}, "the session to close")
			// Let it age, then restart: retention runs at start.
			time.Sleep(time.Until(first.Start.Add(4 * time.Second)))
			d.Stop()
			d.start()
			waitFor(t, func() bool { return len(d.sessions(t, "--sub", "retained-1")) == 0 }, "retention")
			if _, err := os.Stat(first.File); !os.IsNotExist(err) {
				t.Errorf("recording %s still there: %v", first.File, err)
			}
			out, _, _ := d.sluice("sessions", "--deleted", "--config", d.cfgPath)
			if !strings.Contains(out, first.ID) || !strings.Contains(out, "older than 3s") {
				t.Errorf("deletion log:\n%s", out)
			}
		})
	}
}

// TestRecordingEncrypted: with an auditor's public key configured, the
// host writes recordings it cannot read back; they verify without the
// key, and replay with it.
func TestRecordingEncrypted(t *testing.T) {
	w := remote(t)
	pw := postgresWorld(t)
	auditor, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "auditor.key")
	if err := os.WriteFile(keyFile, []byte(auditor.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+"recording: {recipient: "+auditor.Recipient().String()+"}\n")
	tok := d.token("sealed-1", "ci", "10m")
	const stmt = "SELECT email FROM customers WHERE id = 2"
	d.psql(pw, tok, pw.dsn("shop", "sslmode=disable"), "-c", stmt)
	var s recorder.Entry
	waitFor(t, func() bool {
		l := d.sessions(t, "--sub", "sealed-1")
		if len(l) == 1 && l[0].State == "closed" {
			s = l[0]
			return true
		}
		return false
	}, "the session to close")
	raw, err := os.ReadFile(s.File)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "customers") || strings.Contains(string(raw), "@example.com") {
		t.Errorf("the encrypted recording holds the statement or results in clear:\n%s", raw)
	}
	if out, _, code := d.sluice("verify", s.ID, "--config", d.cfgPath); code != 0 {
		t.Errorf("verify without the key: exit %d %s", code, out)
	}
	if out, _, _ := d.sluice("replay", s.ID, "--config", d.cfgPath); strings.Contains(out, stmt) {
		t.Errorf("replay without the key shows the statement:\n%s", out)
	}
	out, errOut, code := d.sluice("replay", s.ID, "--identity", keyFile, "--config", d.cfgPath)
	if code != 0 || !strings.Contains(out, stmt) || !strings.Contains(out, "sealed-1") {
		t.Errorf("replay with the auditor's key: exit %d %s\n%s", code, errOut, out)
	}
}

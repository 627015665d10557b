package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/recorder"
)

// approvalPolicy copies the shipped policies into a directory, with the
// approval deadline shortened to ttl.
func approvalPolicy(t *testing.T, ttl string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"sluice.rego", "postgres.rego"} {
		src, err := os.ReadFile(filepath.Join("../../policies", f))
		if err != nil {
			t.Fatal(err)
		}
		src = []byte(strings.ReplaceAll(string(src), `"ttl": "15m"`, `"ttl": "`+ttl+`"`))
		if err := os.WriteFile(filepath.Join(dir, f), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type approvalsDaemon struct {
	*daemon
	pw       *pgWorld
	agent    string // agent token file (groups ci)
	alice    string // reviewer
	outsider string // authenticated, not a reviewer
	hook     *hookRecorder
}

// hookRecorder is the webhook receiver: the notifications it got.
type hookRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.msgs = append(h.msgs, string(b))
	h.mu.Unlock()
}

func (h *hookRecorder) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.msgs, "\n")
}

func newApprovalsDaemon(t *testing.T, ttl string) *approvalsDaemon {
	t.Helper()
	w := remote(t)
	pw := postgresWorld(t)
	hook := &hookRecorder{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	d := newDaemon(t, targetsYAML(w)+pw.pgTargets("sluice_app")+
		"policy_dir: "+approvalPolicy(t, ttl)+"\napprovals: {webhook: "+srv.URL+"}\n")
	return &approvalsDaemon{
		daemon: d, pw: pw, hook: hook,
		agent:    d.token("build-7", "ci", "30m"),
		alice:    d.token("alice", "reviewers", "30m"),
		outsider: d.token("mallory", "ci", "30m"),
	}
}

// heldPsql starts psql in a job running sql against the production
// target; it returns when the statement is held, with the request's id.
func (a *approvalsDaemon) heldPsql(t *testing.T, sql string) (string, *exec.Cmd, *strings.Builder) {
	t.Helper()
	args := []string{"run", "--token-file", a.agent, "--user", "nobody", "--",
		a.pw.pg.Bin("psql"), a.pw.dsn("shop", "sslmode=disable"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", sql}
	cmd := exec.Command(bins.sluice, args...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+a.socket)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var id string
	waitFor(t, func() bool {
		for _, r := range a.list(t, a.alice, "") {
			if r["operation"] == sql && r["status"] == "pending" {
				id = r["id"].(string)
				return true
			}
		}
		return false
	}, "the statement to be held")
	return id, cmd, &out
}

func (a *approvalsDaemon) list(t *testing.T, tok, flags string) []map[string]any {
	t.Helper()
	args := []string{"approvals", "list", "--json", "--token-file", tok}
	if flags != "" {
		args = append(args, flags)
	}
	out, errOut, code := a.sluice(args...)
	if code != 0 {
		t.Fatalf("sluice approvals list: %s", errOut)
	}
	var rs []map[string]any
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("approvals list --json: %q: %v", out, err)
	}
	return rs
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("held client did not finish")
		return -1
	}
}

// TestApprovalApprove: DDL on production waits in the live connection;
// the reviewer sees it (statement, process, requester), approves, and the
// statement runs exactly once. Self-approval and non-reviewers are
// refused; notifications went out.
func TestApprovalApprove(t *testing.T) {
	a := newApprovalsDaemon(t, "15m")
	table := fmt.Sprintf("held_%d", time.Now().UnixNano())
	sql := "CREATE TABLE " + table + " (i int)"
	id, cmd, out := a.heldPsql(t, sql)

	rs := a.list(t, a.alice, "")
	if len(rs) != 1 || rs[0]["target"] != "pg" || rs[0]["requester"] != "build-7" || rs[0]["status"] != "pending" {
		t.Fatalf("list --json: %+v", rs)
	}
	show, _, _ := a.sluice("approvals", "show", id, "--token-file", a.alice)
	if !strings.Contains(show, "/usr/lib/postgresql/15/bin/psql") || !strings.Contains(show, sql) {
		t.Errorf("show lacks the process or the statement:\n%s", show)
	}
	if n, _ := a.pw.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM pg_class WHERE relname = '"+table+"'"); n != "0" {
		t.Fatalf("held statement ran before approval")
	}
	// The agent's own identity, even with the reviewers group, and an
	// identity without it, are refused.
	self := a.token("build-7", "reviewers", "10m")
	if _, errOut, code := a.sluice("approvals", "approve", id, "--token-file", self); code == 0 || !strings.Contains(errOut, "own request") {
		t.Errorf("self-approval: exit %d %q", code, errOut)
	}
	if _, errOut, code := a.sluice("approvals", "approve", id, "--token-file", a.outsider); code == 0 || !strings.Contains(errOut, "not a reviewer") {
		t.Errorf("approval by a non-reviewer: exit %d %q", code, errOut)
	}
	start := time.Now()
	if o, errOut, code := a.sluice("approvals", "approve", id, "--token-file", a.alice, "--reason", "schema change planned"); code != 0 {
		t.Fatalf("approve: %s %s", o, errOut)
	}
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("psql after approval: exit %d: %s", code, out)
	}
	t.Logf("approval to completion: %s", time.Since(start))
	if n, _ := a.pw.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM pg_class WHERE relname = '"+table+"'"); n != "1" {
		t.Errorf("approved table exists %s times", n)
	}
	// The recording holds the approval: who, when, why.
	var sess []recorder.Entry
	waitFor(t, func() bool {
		sess = a.sessions(t, "--sub", "build-7", "--target", "pg")
		return len(sess) == 1 && sess[0].State == "closed"
	}, "the session in the index")
	replay, _, _ := a.sluice("replay", sess[0].ID, "--config", a.cfgPath)
	for _, want := range []string{sql, "approval " + id, "approved by alice", "schema change planned", "decided"} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay lacks %q:\n%s", want, replay)
		}
	}
	waitFor(t, func() bool { return strings.Contains(a.hook.all(), "is approved by alice") }, "the decision notification")
	if hooks := a.hook.all(); !strings.Contains(hooks, "build-7 wants to run on pg") || !strings.Contains(hooks, "/approvals/#"+id) {
		t.Errorf("notifications:\n%s", hooks)
	}
}

// TestApprovalDenyAndTimeout: a denial reaches the agent as PostgreSQL's
// 42501 with the reviewer's reason; an unanswered request is denied at its
// deadline.
func TestApprovalDenyAndTimeout(t *testing.T) {
	a := newApprovalsDaemon(t, "3s")
	id, cmd, out := a.heldPsql(t, "CREATE INDEX ON customers (name)")
	if _, errOut, code := a.sluice("approvals", "deny", id, "--token-file", a.alice); code == 0 || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("deny without a reason: %d %q", code, errOut)
	}
	if _, errOut, code := a.sluice("approvals", "deny", id, "--token-file", a.alice, "--reason", "use the migration pipeline"); code != 0 {
		t.Fatalf("deny: %s", errOut)
	}
	if code := waitExit(t, cmd); code == 0 || !strings.Contains(out.String(), "42501: sluice: denied by alice: use the migration pipeline") {
		t.Errorf("denied psql: exit %d %s", code, out)
	}

	_, cmd, out = a.heldPsql(t, "CREATE INDEX ON customers (email)")
	start := time.Now()
	if code := waitExit(t, cmd); code == 0 || !strings.Contains(out.String(), "approval timed out") {
		t.Errorf("unanswered request: exit %d %s", code, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("deadline of 3s took %s", d)
	}
	statuses := map[string]int{}
	for _, r := range a.list(t, a.alice, "--all") {
		statuses[r["status"].(string)]++
	}
	if statuses["denied"] != 1 || statuses["expired"] != 1 {
		t.Errorf("outcomes %v, want one denied and one expired", statuses)
	}
}

// TestApprovalAPIUnreachableFromJobs: a process in a job cannot use the
// approvals API, through the socket or over loopback TCP, whatever token
// it holds.
func TestApprovalAPIUnreachableFromJobs(t *testing.T) {
	a := newApprovalsDaemon(t, "15m")
	_, errOut, _ := a.job(a.agent, "", "sh", "-c",
		"SLUICE_SOCKET="+a.socket+" "+bins.sluice+" approvals list --token-file "+a.alice)
	if !strings.Contains(errOut, "inside a sluice job") {
		t.Errorf("approvals CLI inside a job: %q", errOut)
	}
	r := a.agentOnce(a.agent, "nobody", "connect", fmt.Sprintf("127.0.0.1:%d", a.apiPort), "http")
	if r.OK {
		t.Errorf("a job reached the approvals API over TCP: %+v", r)
	}
}

// TestApprovalAbandonedAfterRestart: when the daemon dies with a request
// held, the agent's connection ends, and the restarted daemon shows the
// request as abandoned; it is not lost.
func TestApprovalAbandonedAfterRestart(t *testing.T) {
	a := newApprovalsDaemon(t, "15m")
	id, cmd, out := a.heldPsql(t, "CREATE TABLE never_approved (i int)")
	a.Kill()
	if code := waitExit(t, cmd); code == 0 {
		t.Errorf("held psql survived the daemon: %s", out)
	}
	a.start()
	var got map[string]any
	for _, r := range a.list(t, a.alice, "--all") {
		if r["id"] == id {
			got = r
		}
	}
	if got == nil || got["status"] != "abandoned" || got["operation"] != "CREATE TABLE never_approved (i int)" {
		t.Errorf("request after restart: %+v", got)
	}
}

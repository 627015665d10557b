package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestRunDropsPrivilegesAndReturnsStatus: --user runs the command as that
// user with no_new_privs, and sluice run exits with the command's status.
func TestRunDropsPrivilegesAndReturnsStatus(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("build-1", "ci", "10m")
	out, errOut, code := d.job(tok, "nobody", "sh", "-c", `id -u; grep NoNewPrivs /proc/self/status; grep CapBnd /proc/self/status; cat /proc/self/cgroup | grep '^0::'; exit 7`)
	if code != 7 {
		t.Fatalf("exit status %d, want 7 (stderr %q)", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "65534" || !strings.HasSuffix(lines[1], "1") {
		t.Fatalf("job output %q: want uid 65534 and NoNewPrivs 1", out)
	}
	if !strings.Contains(lines[3], "/"+d.cgroup+"/job-") {
		t.Errorf("job cgroup %q, want below /%s", lines[3], d.cgroup)
	}
	if _, _, code := d.job(tok, "nobody", "/nonexistent/cmd"); code != 127 {
		t.Errorf("missing command: exit %d, want 127", code)
	}
}

// TestJobCgroupRemovedWhenDone: when the last process of a job exits, its
// cgroup and binding go away.
func TestJobCgroupRemovedWhenDone(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("build-1", "ci", "10m")
	a := d.startAgent(tok, "nobody")
	if r := a.do("connect", w.web.Addr4.String()+":80", "http"); !r.OK {
		t.Fatalf("agent connect: %+v", r)
	}
	st := d.status()
	if len(st.Jobs) != 1 || st.Jobs[0].Procs != 1 {
		t.Fatalf("status jobs = %+v, want one job with one process", st.Jobs)
	}
	dir := filepath.Join(st.CgroupMount, st.Jobs[0].Cgroup)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("job cgroup: %v", err)
	}
	a.close()
	d.waitLog("job ended", "job="+st.Jobs[0].ID)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("job cgroup %s still there after the job ended (%v)", dir, err)
	}
	if n := len(d.status().Jobs); n != 0 {
		t.Errorf("%d jobs listed after the job ended", n)
	}
}

// TestExpiredBindingRefused: once the token a job enrolled with expires,
// new connections from the job are refused (the job itself runs on).
func TestExpiredBindingRefused(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("short-lived", "ci", "3s")
	a := d.startAgent(tok, "nobody")
	addr := w.web.Addr4.String() + ":80"
	if r := a.do("connect", addr, "http"); !r.OK || !strings.HasPrefix(r.Response, "HTTP/1.1 200") {
		t.Fatalf("connect before expiry = %+v", r)
	}
	exp := d.status().Jobs[0].Expiry
	// Wait for the token's lifetime to pass (this is the behaviour under
	// test, not synchronisation), then try again.
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	if r := a.do("connect", addr, "http"); r.OK {
		t.Fatalf("connect after expiry = %+v, want refusal", r)
	}
	d.waitLog("connection refused", "outcome=expired", "subject=short-lived")
	if !d.status().Jobs[0].Expired {
		t.Error("status does not show the job as expired")
	}
}

// TestFailClosedAfterKill: with the daemon killed (-9), an enrolled job's
// connects fail instead of going around the gate; a restarted daemon
// serves the same job again without re-enrollment.
func TestFailClosedAfterKill(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("build-1", "ci", "10m")
	a := d.startAgent(tok, "nobody")
	addr := w.web.Addr4.String() + ":80"
	start, _ := w.nginx.AccessLines()
	if r := a.do("connect", addr, "http"); !r.OK {
		t.Fatalf("connect with daemon up = %+v", r)
	}
	// nginx logs a request after its response is out.
	var before []string
	waitFor(t, func() bool { before, _ = w.nginx.AccessLines(); return len(before) > len(start) }, "nginx to log the request")

	d.Kill()
	for _, target := range []string{addr, "[" + w.web.Addr6.String() + "]:80"} {
		r := a.do("connect", target, "http")
		if r.OK || r.Errno != "ECONNREFUSED" {
			t.Errorf("connect to %s with the daemon dead = %+v, want ECONNREFUSED", target, r)
		}
	}
	after, _ := w.nginx.AccessLines()
	if len(after) != len(before) {
		t.Errorf("nginx saw %d requests while the daemon was dead", len(after)-len(before))
	}

	d.start()
	if r := a.do("connect", addr, "http"); !r.OK || !strings.HasPrefix(r.Response, "HTTP/1.1 200") {
		t.Fatalf("connect after restart = %+v", r)
	}
	line := d.waitLog("program attached", "program=connect4")
	if !strings.Contains(d.Logs.String()[strings.LastIndex(d.Logs.String(), "program=connect4"):], "reused=true") {
		t.Errorf("restarted daemon did not reuse the pinned link: %s", line)
	}
	if n := len(d.status().Jobs); n != 1 {
		t.Errorf("%d jobs after restart, want the one that was enrolled", n)
	}
}

// TestAPIRefusesJobs: nothing inside a job may use the API: no token
// minting, no re-enrollment under another identity, even as root.
func TestAPIRefusesJobs(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("build-1", "ci", "10m")
	other := d.token("admin", "ops", "10m")
	script := fmt.Sprintf(`SLUICE_SOCKET=%s %s token --sub x; echo "token=$?"; SLUICE_SOCKET=%s %s run --token-file %s -- true; echo "run=$?"`,
		d.socket, bins.sluice, d.socket, bins.sluice, other)
	out, errOut, _ := d.job(tok, "", "sh", "-c", script) // as root
	if !strings.Contains(out, "token=1") || !strings.Contains(out, "run=1") {
		t.Fatalf("API calls from inside a job: %q (stderr %q), want both refused", out, errOut)
	}
	if !strings.Contains(errOut, "inside a sluice job") {
		t.Errorf("stderr %q, want the reason", errOut)
	}
	if got := d.metric(`sluice_api_refused_total{reason="in_job"}`); got != 2 {
		t.Errorf("in_job refusals = %v, want 2", got)
	}
	// The loopback HTTP API is not a target: unreachable from a job.
	r := d.agentOnce(tok, "nobody", "connect", fmt.Sprintf("127.0.0.1:%d", d.apiPort), "http")
	if r.OK {
		t.Errorf("job reached the loopback API: %+v", r)
	}
}

// TestPolicyReload: a policy file added to policy_dir takes effect without
// a restart; a broken one is refused and the previous policy stays.
func TestPolicyReload(t *testing.T) {
	w := remote(t)
	polDir := t.TempDir()
	src, err := os.ReadFile("../../policies/sluice.rego")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "sluice.rego"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, targetsYAML(w)+"policy_dir: "+polDir+"\n")
	tok := d.token("build-1", "ci", "10m")
	url := fmt.Sprintf("http://%s/", w.web.Addr4)
	if _, _, code := d.job(tok, "nobody", "curl", "-sS", "--max-time", "10", url); code != 0 {
		t.Fatal("curl before the policy change failed")
	}
	rev := d.status().Policy.Revision

	extra := `package sluice

deny contains "curl is not allowed to reach env=test targets" if {
	input.target.labels.env == "test"
	input.process.comm == "curl"
}
`
	if err := os.WriteFile(filepath.Join(polDir, "no-curl.rego"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.status().Policy.Revision != rev }, "policy reload after a file change")
	if _, _, code := d.job(tok, "nobody", "curl", "-sS", "--max-time", "10", url); code == 0 {
		t.Fatal("curl allowed after a policy forbade it")
	}
	d.waitLog("connection refused", "curl is not allowed")
	if r := d.agentOnce(tok, "nobody", "connect", w.web.Addr4.String()+":80", "http"); !r.OK {
		t.Errorf("the agent (not curl) was refused: %+v", r)
	}

	// A syntax error: reload fails, the previous policy keeps working.
	rev = d.status().Policy.Revision
	if err := os.WriteFile(filepath.Join(polDir, "broken.rego"), []byte("package sluice\ndeny contains"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(sighup); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.status().ReloadError != "" }, "reload error reported")
	if got := d.status().Policy.Revision; got != rev {
		t.Errorf("policy revision changed to %s after a broken reload", got)
	}
	if _, _, code := d.job(tok, "nobody", "curl", "-sS", "--max-time", "10", url); code == 0 {
		t.Error("broken reload dropped the deny rule")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfigReload: a target added to the configuration file is reachable
// after SIGHUP, without restarting the daemon or the job.
func TestConfigReload(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	tok := d.token("build-1", "ci", "10m")
	a := d.startAgent(tok, "nobody")
	dst := w.web.Addr4.String() + ":8080"
	if r := a.do("connect", dst, "http"); r.OK {
		t.Fatalf("connect to %s before it is a target = %+v", dst, r)
	}
	cfg, err := os.ReadFile(d.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, fmt.Sprintf("  - {name: late, address: \"%s\", protocol: tcp}\n", dst)...)
	if err := os.WriteFile(d.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(sighup); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(d.status().Targets) == 4 }, "the new target after SIGHUP")
	if r := a.do("connect", dst, "http"); !r.OK || !strings.HasPrefix(r.Response, "HTTP/1.1 200") {
		t.Fatalf("connect to %s after reload = %+v", dst, r)
	}
}

// TestUnboundCgroupRefused: a process that lands in a cgroup below the
// agents cgroup without enrollment is steered like a job, and refused
// because no identity is bound to it.
func TestUnboundCgroupRefused(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	dir := filepath.Join(d.status().Cgroup, "rogue")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	script := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec %s connect %s:80 http`, dir, bins.agent, w.web.Addr4)
	out, _ := exec.Command("sh", "-c", script).Output()
	r := parseResult(t, string(out))
	if r.OK {
		t.Fatalf("unbound cgroup reached a target: %+v", r)
	}
	d.waitLog("connection refused", "outcome=unbound", "comm=agent")
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/client"
	"github.com/sluice-gate/sluice/test/testdaemon"
	"github.com/sluice-gate/sluice/test/testenv"
	"github.com/sluice-gate/sluice/test/testhost"
)

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers fn to run after all tests (fixtures shared by tests).
func atExit(fn func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, fn)
}

func runCleanups() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

// shared is a fixture the tests that use it share: set up on first use
// (setup registers its own teardown with atExit).
type shared[T any] struct {
	once sync.Once
	v    T
	err  error
}

// skipFixture, returned by a setup, skips the tests that need the
// fixture instead of failing them.
type skipFixture string

func (s skipFixture) Error() string { return string(s) }

// get sets the fixture up, once, and fails or skips t if that did not
// work.
func (s *shared[T]) get(t *testing.T, what string, setup func(*T) error) *T {
	t.Helper()
	s.once.Do(func() { s.err = setup(&s.v) })
	var skip skipFixture
	if errors.As(s.err, &skip) {
		t.Skip(string(skip))
	}
	if s.err != nil {
		t.Fatalf("set up %s: %v", what, s.err)
	}
	return &s.v
}

// world is the remote side shared by all tests.
type world struct {
	web   *testhost.Host // nginx on 80, 8080, 8081
	nginx *testhost.Nginx
	dns   *testhost.Host // a UDP responder on :53
}

var theWorld shared[world]

// remote returns the shared remote hosts, creating them on first use.
func remote(t *testing.T) *world {
	t.Helper()
	testenv.Kernel(t)
	testenv.Netns(t)
	testenv.Command(t, "nginx", "curl")
	return theWorld.get(t, "remote hosts", (*world).setup)
}

func (w *world) setup() error {
	var err error
	if w.web, err = testhost.New(hostPrefix, 1); err != nil {
		return err
	}
	atExit(func() { w.web.Close() })
	dir, err := os.MkdirTemp("", "sluice-e2e-nginx-")
	if err != nil {
		return err
	}
	atExit(func() { os.RemoveAll(dir) })
	if w.nginx, err = testhost.StartNginx(w.web, dir, 80, 8080, 8081); err != nil {
		return err
	}
	atExit(w.nginx.Stop)
	if err := w.nginx.WriteFile("index.html", []byte("hello from the remote host\n")); err != nil {
		return err
	}
	if w.dns, err = testhost.New(hostPrefix, 2); err != nil {
		return err
	}
	atExit(func() { w.dns.Close() })
	return startUDPEcho(w.dns, 53)
}

// startUDPEcho answers every datagram on port with "pong", inside h.
func startUDPEcho(h *testhost.Host, port int) error {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(h.Addr4.String(), strconv.Itoa(port)))
		return err
	})
	if err != nil {
		return err
	}
	atExit(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("pong"), from)
		}
	}()
	return nil
}

// freePort returns a TCP port free on both 127.0.0.1 and ::1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testdaemon.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon is a private sluiced for one test.
type daemon struct {
	*testdaemon.Daemon
	t           *testing.T
	dir         string
	cfgPath     string
	socket      string
	cgroup      string
	proxyPort   int
	metricsPort int
	apiPort     int
}

// newDaemon writes a configuration (extra is appended YAML) and starts
// sluiced with it.
func newDaemon(t *testing.T, extra string, opts ...func(*daemon)) *daemon {
	t.Helper()
	dir := t.TempDir()
	// Jobs run as nobody must reach the CA bundle next to the socket.
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	_ = os.Chmod(dir, 0o755)
	d := &daemon{
		t:           t,
		dir:         dir,
		cfgPath:     filepath.Join(dir, "sluice.yaml"),
		socket:      filepath.Join(dir, "sluice.sock"),
		cgroup:      fmt.Sprintf("sluice-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
		proxyPort:   freePort(t),
		metricsPort: freePort(t),
		apiPort:     freePort(t),
	}
	for _, o := range opts {
		o(d)
	}
	cfg := fmt.Sprintf(`state_dir: %s/state
api_socket: %s
api_listen: 127.0.0.1:%d
proxy_port: %d
metrics_listen: 127.0.0.1:%d
cgroup: %s
log: {level: debug, format: text}
`, dir, d.socket, d.apiPort, d.proxyPort, d.metricsPort, d.cgroup) + extra
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Daemon = testdaemon.New(bins.dir, d.cfgPath, d.socket)
	t.Cleanup(d.cleanup)
	d.start()
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	if err := d.Start(); err != nil {
		d.t.Fatalf("%v\n%s", err, d.Logs.String())
	}
}

func (d *daemon) cleanup() {
	d.Stop()
	// Detach the programs and remove the cgroups, as an operator would.
	if out, err := d.Uninstall(); err != nil {
		d.t.Logf("uninstall: %v\n%s", err, out)
	}
	if d.t.Failed() {
		d.t.Logf("sluiced log:\n%s", d.Logs.String())
	}
}

// waitLog waits until the daemon's log contains all of the given strings on
// one line, and returns that line.
func (d *daemon) waitLog(substrs ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(d.Logs.String(), "\n") {
			all := true
			for _, s := range substrs {
				if !strings.Contains(line, s) {
					all = false
					break
				}
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no log line with %q\n%s", substrs, d.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sluice runs the CLI against this daemon.
func (d *daemon) sluice(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	stdout, stderr, code, err := d.Sluice(args...)
	if err != nil {
		d.t.Fatalf("run sluice %v: %v", args, err)
	}
	return stdout, stderr, code
}

// token mints a token and writes it to a file, returning the path.
func (d *daemon) token(sub, groups, ttl string, extra ...string) string {
	d.t.Helper()
	args := append([]string{"token", "--sub", sub, "--groups", groups, "--ttl", ttl}, extra...)
	out, errOut, code := d.sluice(args...)
	if code != 0 {
		d.t.Fatalf("sluice token: exit %d: %s", code, errOut)
	}
	return d.tokenFile(strings.TrimSpace(out))
}

func (d *daemon) tokenFile(tok string) string {
	d.t.Helper()
	f, err := os.CreateTemp(d.dir, "token-*")
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(tok + "\n"); err != nil {
		d.t.Fatal(err)
	}
	return f.Name()
}

// job runs argv as an enrolled job (sluice run) and returns its output.
func (d *daemon) job(tokenFile, user string, argv ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	args := []string{"run", "--token-file", tokenFile}
	if user != "" {
		args = append(args, "--user", user)
	}
	args = append(append(args, "--"), argv...)
	return d.sluice(args...)
}

// status returns the daemon's status.
func (d *daemon) status() api.Status {
	d.t.Helper()
	st, err := client.New(d.socket).Status(context.Background())
	if err != nil {
		d.t.Fatalf("status: %v", err)
	}
	return st
}

// metric returns the value of one series, e.g.
// `sluice_connections_total{outcome="allowed",target="web"}` (0 if absent).
func (d *daemon) metric(series string) float64 {
	d.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", d.metricsPort))
	if err != nil {
		d.t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if name, val, ok := strings.Cut(line, " "); ok && name == series {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				d.t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// agentResult is what test/agent prints.
type agentResult struct {
	OK       bool   `json:"ok"`
	Errno    string `json:"errno"`
	Err      string `json:"err"`
	Peer     string `json:"peer"`
	Local    string `json:"local"`
	Response string `json:"response"`
}

func parseResult(t *testing.T, line string) agentResult {
	t.Helper()
	var r agentResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &r); err != nil {
		t.Fatalf("agent output %q: %v", line, err)
	}
	return r
}

// agentOnce runs one agent command as a job.
func (d *daemon) agentOnce(tokenFile, user string, args ...string) agentResult {
	d.t.Helper()
	out, errOut, _ := d.job(tokenFile, user, append([]string{bins.agent}, args...)...)
	if out == "" {
		d.t.Fatalf("agent %v printed nothing; stderr: %s", args, errOut)
	}
	return parseResult(d.t, out)
}

// agentProc is a long-running job (agent serve) driven line by line.
type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	errb *bytes.Buffer
}

// startAgent enrolls a long-running agent; it keeps its job across daemon
// restarts.
func (d *daemon) startAgent(tokenFile, user string) *agentProc {
	d.t.Helper()
	args := []string{"run", "--token-file", tokenFile}
	if user != "" {
		args = append(args, "--user", user)
	}
	args = append(args, "--", bins.agent, "serve")
	cmd := exec.Command(bins.sluice, args...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+d.socket)
	in, err := cmd.StdinPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	var eb bytes.Buffer
	cmd.Stderr = &eb
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	a := &agentProc{t: d.t, cmd: cmd, in: in, out: bufio.NewReader(out), errb: &eb}
	d.t.Cleanup(a.close)
	return a
}

// do sends one command and returns its result.
func (a *agentProc) do(args ...string) agentResult {
	a.t.Helper()
	if _, err := fmt.Fprintln(a.in, strings.Join(args, " ")); err != nil {
		a.t.Fatalf("agent: %v (stderr: %s)", err, a.errb)
	}
	line, err := a.out.ReadString('\n')
	if err != nil {
		a.t.Fatalf("agent: %v (stderr: %s)", err, a.errb)
	}
	return parseResult(a.t, line)
}

func (a *agentProc) close() {
	a.in.Close()
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
}

// targetsYAML is the standard target list for the shared world.
func targetsYAML(w *world) string {
	return fmt.Sprintf(`dns: [%s:53]
targets:
  - name: web
    address: %s:80
    protocol: tcp
    labels: {env: test}
  - name: web6
    address: "[%s]:80"
    protocol: tcp
  - name: restricted
    address: %s:8081
    protocol: tcp
    labels: {allowed_groups: ops}
`, w.dns.Addr4, w.web.Addr4, w.web.Addr6, w.web.Addr4)
}

// publicDir is a temporary directory every user can read: jobs run as
// nobody.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sluice-e2e-pub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

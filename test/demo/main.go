// Command demo shows sluice working end to end on this machine (`make
// demo`, as root): it creates a throwaway remote host in a network
// namespace running nginx, starts sluiced on the embedded defaults with
// that host as its only targets, enrolls an agent with a token from the
// embedded issuer, and lets an unmodified curl reach the host through
// sluice, then shows two connections that are refused (one by policy, one
// because the destination is no target). It prints what happened and
// cleans everything up.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gate/sluice/pkg/client"
	"github.com/sluice-gate/sluice/test/testhost"
)

func main() {
	bin := flag.String("bin", "bin", "directory with sluiced and sluice")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: run as root (it loads BPF programs, creates cgroups and a network namespace)")
		os.Exit(1)
	}
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	bin, dir, socket string
}

func say(format string, args ...any) { fmt.Printf("\n\033[1m== "+format+"\033[0m\n", args...) }

func run(binDir string) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	d := &demo{bin: bin, dir: dir, socket: filepath.Join(dir, "sluice.sock")}

	say("1. A remote host: network namespace sld-200 at 198.18.200.2, running nginx")
	testhost.CleanupStale("sld")
	host, err := testhost.New("sld", 200)
	if err != nil {
		return err
	}
	defer host.Close()
	ng, err := testhost.StartNginx(host, filepath.Join(dir, "nginx"), 80, 8443, 22)
	if err != nil {
		return err
	}
	defer ng.Stop()
	_ = ng.WriteFile("index.html", []byte("hello from the remote host, through sluice\n"))

	say("2. sluiced on the embedded defaults, with two targets")
	cfg := fmt.Sprintf(`# Embedded defaults, except for private paths and ports so the demo
# cannot collide with an installed sluiced.
state_dir: %[1]s/state
api_socket: %[2]s
api_listen: 127.0.0.1:%[3]d
proxy_port: %[4]d
metrics_listen: 127.0.0.1:%[5]d
cgroup: sluice-demo
log: {format: text}
targets:
  - name: web
    address: %[6]s:80
    protocol: tcp
  - name: admin
    address: %[6]s:8443
    protocol: tcp
    labels: {allowed_groups: ops}   # the default policy keeps others out
`, dir, d.socket, freePort(), freePort(), freePort(), host.Addr4)
	cfgPath := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	fmt.Print(cfg)
	logs := &logBuffer{}
	daemon := exec.Command(filepath.Join(bin, "sluiced"), "--config", cfgPath)
	daemon.Stdout, daemon.Stderr = logs, logs
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		_ = daemon.Wait()
		out, _ := exec.Command(filepath.Join(bin, "sluice"), "uninstall", "--config", cfgPath).CombinedOutput()
		say("7. Clean up")
		fmt.Print(string(out))
	}()
	if err := waitReady(d.socket); err != nil {
		return fmt.Errorf("%w\n%s", err, logs.String())
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)

	say("3. A token for the agent, from sluiced's embedded OIDC issuer")
	tok, err := d.sluice("token", "--sub", "demo-agent", "--groups", "ci", "--ttl", "10m")
	if err != nil {
		return err
	}
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		return err
	}
	fmt.Printf("$ sluice token --sub demo-agent --groups ci\n%s...\n", tok[:40])

	say("4. The agent, unmodified curl in an enrolled job, reaches the allowed target")
	d.job(tokFile, "curl", "-sS", "--max-time", "5", fmt.Sprintf("http://%s/", host.Addr4))
	if lines, err := ng.AccessLines(); err == nil && len(lines) > 0 {
		fmt.Printf("nginx saw: %s   (from the host side: sluice's own connection)\n", lines[len(lines)-1])
	}

	say("5. Refused: policy keeps group ci out of the admin target; port 22 is no target at all")
	d.job(tokFile, "curl", "-sS", "--max-time", "5", fmt.Sprintf("http://%s:8443/", host.Addr4))
	d.job(tokFile, "curl", "-sS", "--max-time", "5", fmt.Sprintf("http://%s:22/", host.Addr4))
	fmt.Println("\nsluiced's decisions:")
	for _, l := range logs.decisions(3) {
		fmt.Println("  " + trimLog(l))
	}

	say("6. sluice status")
	st, _ := d.sluice("status")
	fmt.Print(st)
	return nil
}

// trimLog drops the timestamp and the noisiest keys from a log line.
func trimLog(l string) string {
	var keep []string
	for _, f := range strings.Fields(l) {
		if strings.HasPrefix(f, "time=") || strings.HasPrefix(f, "component=") || strings.HasPrefix(f, "conn=") {
			continue
		}
		keep = append(keep, f)
	}
	return strings.Join(keep, " ")
}

func (d *demo) sluice(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(d.bin, "sluice"), args...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+d.socket)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("sluice %s: %s", args[0], ee.Stderr)
		}
		return "", err
	}
	return strings.TrimSpace(string(out)) + "\n", nil
}

// job runs argv in an enrolled job as nobody and prints it like a shell.
func (d *demo) job(tokFile string, argv ...string) {
	fmt.Printf("$ sluice run --token-file token --user nobody -- %s\n", strings.Join(argv, " "))
	args := append([]string{"run", "--token-file", tokFile, "--user", "nobody", "--"}, argv...)
	cmd := exec.Command(filepath.Join(d.bin, "sluice"), args...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+d.socket)
	out, _ := cmd.CombinedOutput()
	fmt.Print(string(out))
	fmt.Printf("(exit status %d)\n", cmd.ProcessState.ExitCode())
}

// logBuffer collects the daemon's log; the exec package writes to it from
// its own goroutine.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// decisions waits (up to 5s) for n connection decisions in the log.
func (l *logBuffer) decisions(n int) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []string
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		for sc.Scan() {
			if t := sc.Text(); strings.Contains(t, "connection allowed") || strings.Contains(t, "connection refused") {
				out = append(out, t)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitReady(socket string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.New(socket).Status(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sluiced did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

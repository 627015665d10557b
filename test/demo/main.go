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
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/test/testdaemon"
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
	daemon           *testdaemon.Daemon
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
	var ports [3]int
	for i := range ports {
		if ports[i], err = testdaemon.FreePort(); err != nil {
			return err
		}
	}
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
`, dir, d.socket, ports[0], ports[1], ports[2], host.Addr4)
	cfgPath := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	fmt.Print(cfg)
	d.daemon = testdaemon.New(bin, cfgPath, d.socket)
	if err := d.daemon.Start(); err != nil {
		return fmt.Errorf("%w\n%s", err, d.daemon.Logs.String())
	}
	defer func() {
		d.daemon.Stop()
		out, _ := d.daemon.Uninstall()
		say("7. Clean up")
		fmt.Print(out)
	}()

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
	for _, l := range decisions(d.daemon.Logs, 3) {
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
	out, errOut, code, err := d.daemon.Sluice(args...)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("sluice %s: %s", args[0], errOut)
	}
	return strings.TrimSpace(out) + "\n", nil
}

// job runs argv in an enrolled job as nobody and prints it like a shell.
func (d *demo) job(tokFile string, argv ...string) {
	fmt.Printf("$ sluice run --token-file token --user nobody -- %s\n", strings.Join(argv, " "))
	out, errOut, code, err := d.daemon.Sluice(append([]string{"run", "--token-file", tokFile, "--user", "nobody", "--"}, argv...)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(out, errOut)
	fmt.Printf("(exit status %d)\n", code)
}

// decisions waits (up to 5s) for n connection decisions in the log.
func decisions(l *testdaemon.LogBuffer, n int) []string {
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

// Command bench measures what sluice costs a connection (`make bench`): in
// one run, against the same remote host (a network namespace with a small
// TCP server), the same client binary runs once directly and once as an
// enrolled job through sluice, and the results are printed side by side:
//
//   - connection set-up: connect + one byte each way, per connection
//     (p50, p90, p99, mean over many connections);
//   - bulk transfer: bytes/s of a large download through the splice.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/test/testdaemon"
	"github.com/sluice-gate/sluice/test/testhost"
)

const (
	pingPort = 9000
	bulkPort = 9001
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		clientMain(os.Args[2:])
		return
	}
	bin := flag.String("bin", "bin", "directory with sluiced and sluice")
	conns := flag.Int("conns", 2000, "connections for the set-up measurement")
	bulk := flag.Int64("bulk", 2<<30, "bytes per bulk transfer")
	pgSeconds := flag.Int("pgbench-seconds", 10, "seconds per pgbench run (0 skips PostgreSQL)")
	webSeconds := flag.Int("http-seconds", 10, "seconds per HTTP load run (0 skips HTTP)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: run as root")
		os.Exit(1)
	}
	if err := run(*bin, *conns, *bulk, *pgSeconds, *webSeconds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is what the client prints.
type result struct {
	Setup []int64 `json:"setup_ns,omitempty"` // per connection
	Bytes int64   `json:"bytes,omitempty"`
	Nanos int64   `json:"nanos,omitempty"`
}

func clientMain(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server address")
	mode := fs.String("mode", "setup", "setup, bulk or http")
	n := fs.Int("n", 1000, "connections (setup)")
	url := fs.String("url", "", "URL (http)")
	caFile := fs.String("ca", "", "CA file to trust besides the system roots (http)")
	conns := fs.Int("conns", 8, "connections (http)")
	seconds := fs.Int("seconds", 10, "duration (http)")
	_ = fs.Parse(args)
	var r result
	var err error
	switch *mode {
	case "http":
		wr, err := webLoad(*url, *caFile, *conns, time.Duration(*seconds)*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(wr)
		return
	case "setup":
		r, err = setup(*addr, *n)
	case "bulk":
		r, err = download(*addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func setup(addr string, n int) (result, error) {
	var r result
	b := []byte{'p'}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return r, err
		}
		if _, err := c.Write(b); err != nil {
			return r, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return r, err
		}
		r.Setup = append(r.Setup, int64(time.Since(t0)))
		_, _ = c.Read(b) // the server's close
		c.Close()
	}
	return r, nil
}

func download(addr string) (result, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	t0 := time.Now()
	n, err := io.Copy(io.Discard, c)
	return result{Bytes: n, Nanos: int64(time.Since(t0))}, err
}

// serve runs the remote side inside the host: an echo of one byte per
// connection on pingPort (then close), and bulk bytes then close on
// bulkPort.
func serve(h *testhost.Host, bulk int64) (func(), error) {
	var ping, blk net.Listener
	err := h.Do(func() (err error) {
		if ping, err = net.Listen("tcp", net.JoinHostPort(h.Addr4.String(), strconv.Itoa(pingPort))); err != nil {
			return err
		}
		blk, err = net.Listen("tcp", net.JoinHostPort(h.Addr4.String(), strconv.Itoa(bulkPort)))
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ping.Accept()
			if err != nil {
				return
			}
			// One byte back, then the server closes first: its
			// TIME_WAIT stays in the host's namespace. Were the client
			// (or, through sluice, the daemon dialing upstream) the
			// active closer, thousands of TIME_WAIT sockets to the one
			// destination would make every later connect() search the
			// ephemeral port range, and the measurement would be of
			// that search.
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					return
				}
				_, _ = c.Write(b)
			}()
		}
	}()
	chunk := make([]byte, 256<<10)
	go func() {
		for {
			c, err := blk.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for left := bulk; left > 0; {
					n := int64(len(chunk))
					if left < n {
						n = left
					}
					if _, err := c.Write(chunk[:n]); err != nil {
						return
					}
					left -= n
				}
			}()
		}
	}()
	return func() { ping.Close(); blk.Close() }, nil
}

func run(binDir string, conns int, bulk int64, pgSeconds, webSeconds int) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	testhost.CleanupStale("slb")
	h, err := testhost.New("slb", 100)
	if err != nil {
		return err
	}
	defer h.Close()
	stop, err := serve(h, bulk)
	if err != nil {
		return err
	}
	defer stop()

	var web *webBench
	if webSeconds > 0 {
		if web, err = startWebBench(h, filepath.Join(dir, "web")); err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
		defer web.stop()
	}

	var pgb *pgBench
	if pgSeconds > 0 {
		if pgb, err = startPGBench(dir); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		defer pgb.stop()
	}

	socket := filepath.Join(dir, "sluice.sock")
	proxyPort, err := testdaemon.FreePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`state_dir: %[1]s/state
api_socket: %[2]s
api_listen: ""
issuer: {url: "http://sluice-bench"}
proxy_port: %[3]d
metrics_listen: "127.0.0.1:19464"
pprof: true
cgroup: sluice-bench
log: {level: warn}
targets:
  - {name: ping, address: "%[4]s:%[5]d", protocol: tcp}
  - {name: bulk, address: "%[4]s:%[6]d", protocol: tcp}
`, dir, socket, proxyPort, h.Addr4, pingPort, bulkPort)
	if pgb != nil {
		cfg += pgb.targets()
	}
	if web != nil {
		cfg += web.targets()
	}
	cfgPath := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	daemon := testdaemon.New(bin, cfgPath, socket)
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("%w\n%s", err, daemon.Logs.String())
	}
	defer func() {
		daemon.Stop()
		_, _ = daemon.Uninstall()
	}()
	tok, errOut, code, err := daemon.Sluice("token", "--sub", "bench", "--ttl", "1h")
	if err != nil || code != 0 {
		return fmt.Errorf("mint token: %v %s", err, errOut)
	}
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		return err
	}

	direct := func(args ...string) *exec.Cmd { return exec.Command(self, append([]string{"client"}, args...)...) }
	gated := func(args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, "sluice"), append([]string{"run", "--token-file", tokFile, "--", self, "client"}, args...)...)
		c.Env = append(os.Environ(), "SLUICE_SOCKET="+socket)
		return c
	}
	pingAddr := fmt.Sprintf("-addr=%s:%d", h.Addr4, pingPort)
	bulkAddr := fmt.Sprintf("-addr=%s:%d", h.Addr4, bulkPort)
	n := fmt.Sprintf("-n=%d", conns)

	// Warm both paths (page cache, policy caches, ARP), then measure.
	for _, mk := range []func(...string) *exec.Cmd{direct, gated} {
		if _, err := measure(mk(pingAddr, "-mode=setup", "-n=50")); err != nil {
			return err
		}
	}
	fmt.Printf("sluice bench: %d connections for set-up, %d MiB per bulk transfer, kernel %s\n\n", conns, bulk>>20, kernel())
	sd, err := measure(direct(pingAddr, "-mode=setup", n))
	if err != nil {
		return err
	}
	sg, err := measure(gated(pingAddr, "-mode=setup", n))
	if err != nil {
		return err
	}
	fmt.Println("connection set-up (connect + 1-byte round trip)")
	fmt.Printf("  %-8s %10s %10s %10s %10s\n", "", "p50", "p90", "p99", "mean")
	pd, pg := stats(sd.Setup), stats(sg.Setup)
	fmt.Printf("  %-8s %10s %10s %10s %10s\n", "direct", pd[0], pd[1], pd[2], pd[3])
	fmt.Printf("  %-8s %10s %10s %10s %10s\n", "sluice", pg[0], pg[1], pg[2], pg[3])
	fmt.Printf("  %-8s %10.2fx %9.2fx %9.2fx %9.2fx\n", "ratio", ratio(pg[0], pd[0]), ratio(pg[1], pd[1]), ratio(pg[2], pd[2]), ratio(pg[3], pd[3]))
	fmt.Printf("  added per connection (p50): %s\n\n", pg[0]-pd[0])

	fmt.Println("bulk transfer (download, best of 3)")
	bd, err := bestOf(3, func() *exec.Cmd { return direct(bulkAddr, "-mode=bulk") })
	if err != nil {
		return err
	}
	bg, err := bestOf(3, func() *exec.Cmd { return gated(bulkAddr, "-mode=bulk") })
	if err != nil {
		return err
	}
	fmt.Printf("  direct  %8.0f MiB/s\n", bd)
	fmt.Printf("  sluice  %8.0f MiB/s\n", bg)
	fmt.Printf("  ratio   %8.2f (sluice / direct)\n", bg/bd)
	if web != nil {
		if err := runWeb(web, self, gated, webSeconds); err != nil {
			return err
		}
	}
	// setupGated measures set-up through sluice: p50, and the daemon's
	// CPU time per connection.
	setupGated := func() (time.Duration, time.Duration, error) {
		cpu0, err := cpuTime(daemon.Pid())
		if err != nil {
			return 0, 0, err
		}
		r, err := measure(gated(pingAddr, "-mode=setup", n))
		if err != nil {
			return 0, 0, err
		}
		cpu1, err := cpuTime(daemon.Pid())
		return stats(r.Setup)[0], (cpu1 - cpu0) / time.Duration(len(r.Setup)), err
	}
	if pgb == nil {
		return recordingCost(daemon, cfgPath, cfg, setupGated, nil, nil, 0)
	}

	fmt.Printf("\npgbench select-only (-S, scale 10, %ds per run; through sluice: policy per statement, default masking)\n", pgSeconds)
	fmt.Printf("  %-8s %-7s %10s %10s %7s %10s %10s %10s %9s   %s\n", "mode", "clients", "tps direct", "tps sluice", "ratio", "lat direct", "lat sluice", "p50 added", "tcp ratio", "(tcp: the same through sluice as an opaque tcp target)")
	gatedPG := func(argv ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, "sluice"), append([]string{"run", "--token-file", tokFile, "--"}, argv...)...)
		c.Env = append(os.Environ(), "SLUICE_SOCKET="+socket)
		return c
	}
	directPG := func(argv ...string) *exec.Cmd {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = os.Environ()
		return c
	}
	for _, mode := range []string{"simple", "prepared"} {
		for _, clients := range []int{1, 8} {
			v4, v6 := pgb.host.Addr4.String(), pgb.host.Addr6.String()
			rd, err := pgb.run(directPG, v4, clients, mode, pgSeconds)
			if err != nil {
				return err
			}
			rg, err := pgb.run(gatedPG, v4, clients, mode, pgSeconds)
			if err != nil {
				return err
			}
			rt, err := pgb.run(gatedPG, v6, clients, mode, pgSeconds)
			if err != nil {
				return err
			}
			fmt.Printf("  %-8s %-7d %10.0f %10.0f %7.2f %8.3fms %8.3fms %8.0fµs %9.2f\n", mode, clients, rd.tps, rg.tps, rg.tps/rd.tps,
				rd.latency, rg.latency, float64(rg.p50-rd.p50)/float64(time.Microsecond), rt.tps/rd.tps)
		}
	}
	return recordingCost(daemon, cfgPath, cfg, setupGated, pgb, gatedPG, pgSeconds)
}

// recordingCost measures with session recording on (the daemon as
// configured) and then off (restarted without it): connection set-up, and
// pgbench through sluice, with what each recorded statement cost in time
// and bytes.
func recordingCost(daemon *testdaemon.Daemon, cfgPath, cfg string, setup func() (time.Duration, time.Duration, error), pgb *pgBench, gated func(...string) *exec.Cmd, seconds int) error {
	type load struct {
		script  string // pgbench builtin
		clients int
		perTx   int // statements per transaction
	}
	var loads []load
	if pgb != nil {
		loads = []load{{"select-only", 1, 1}, {"select-only", 8, 1}, {"tpcb-like", 1, 7}, {"tpcb-like", 8, 7}}
	}
	on := make([]pgResult, len(loads))
	stmts := make([]int, len(loads))
	sizes := make([]int64, len(loads))
	setupOn, cpuOn, err := setup()
	if err != nil {
		return err
	}
	for i, l := range loads {
		n0, b0, err := recorded(daemon, cfgPath)
		if err != nil {
			return err
		}
		if on[i], err = pgb.runScript(gated, pgb.host.Addr4.String(), l.clients, l.script, seconds); err != nil {
			return err
		}
		n1, b1, err := recorded(daemon, cfgPath)
		if err != nil {
			return err
		}
		stmts[i], sizes[i] = n1-n0, b1-b0
	}
	daemon.Stop()
	if err := os.WriteFile(cfgPath, []byte(cfg+"recording: {enabled: false}\n"), 0o644); err != nil {
		return err
	}
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("restart without recording: %w\n%s", err, daemon.Logs.String())
	}
	setupOff, cpuOff, err := setup()
	if err != nil {
		return err
	}
	fmt.Printf("\nsession recording on vs off (the daemon restarted without it)\n")
	fmt.Printf("  connection set-up p50: %s on, %s off: recording adds %s per connection\n", setupOn, setupOff, setupOn-setupOff)
	fmt.Printf("  daemon CPU per connection: %s on, %s off\n", cpuOn, cpuOff)
	if pgb == nil {
		return nil
	}
	fmt.Printf("  pgbench through sluice, %ds per run, simple protocol; writes are recorded durably (fsync) before they go on\n", seconds)
	fmt.Printf("  %-12s %-7s %10s %10s %7s %14s %14s\n", "script", "clients", "tps on", "tps off", "ratio", "added/stmt", "bytes/stmt")
	for i, l := range loads {
		off, err := pgb.runScript(gated, pgb.host.Addr4.String(), l.clients, l.script, seconds)
		if err != nil {
			return err
		}
		// Time per statement, from the transaction rate of each client.
		added := (float64(l.clients)/on[i].tps - float64(l.clients)/off.tps) / float64(l.perTx) * 1e6
		perStmt := float64(0)
		if stmts[i] > 0 {
			perStmt = float64(sizes[i]) / float64(stmts[i])
		}
		fmt.Printf("  %-12s %-7d %10.0f %10.0f %7.2f %12.0fµs %14.0f\n", l.script, l.clients, on[i].tps, off.tps, on[i].tps/off.tps, added, perStmt)
	}
	return nil
}

// recorded sums the recorded statements and recording bytes in the index.
func recorded(daemon *testdaemon.Daemon, cfgPath string) (stmts int, bytes int64, err error) {
	out, errOut, code, err := daemon.Sluice("sessions", "--json", "--target", "bench-db", "--config", cfgPath)
	if err != nil || code != 0 {
		return 0, 0, fmt.Errorf("sluice sessions: %v %s", err, errOut)
	}
	var list []struct {
		Requests int   `json:"requests"`
		Bytes    int64 `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return 0, 0, err
	}
	for _, s := range list {
		stmts += s.Requests
		bytes += s.Bytes
	}
	return stmts, bytes, nil
}

func measure(cmd *exec.Cmd) (result, error) {
	var r result
	err := measureJSON(cmd, &r)
	return r, err
}

// measureJSON runs a client and decodes what it prints into v.
func measureJSON(cmd *exec.Cmd, v any) error {
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("client output %.200q: %w", out, err)
	}
	return nil
}

func bestOf(n int, mk func() *exec.Cmd) (float64, error) {
	best := 0.0
	for i := 0; i < n; i++ {
		r, err := measure(mk())
		if err != nil {
			return 0, err
		}
		mibs := float64(r.Bytes) / (1 << 20) / (float64(r.Nanos) / 1e9)
		if mibs > best {
			best = mibs
		}
	}
	return best, nil
}

// stats returns p50, p90, p99 and mean.
func stats(ns []int64) [4]time.Duration {
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum int64
	for _, v := range s {
		sum += v
	}
	q := func(p float64) time.Duration {
		return time.Duration(s[int(p*float64(len(s)-1))]).Round(time.Microsecond / 10)
	}
	return [4]time.Duration{q(0.5), q(0.9), q(0.99), time.Duration(sum / int64(len(s))).Round(time.Microsecond / 10)}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// cpuTime is the user and system CPU time of a process so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) start at ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ
}

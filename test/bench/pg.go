package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/test/testhost"
)

var sslmode = os.Getenv("BENCH_SSLMODE")

// pgBench is the PostgreSQL part of `make bench`: pgbench's select-only
// script against a real server in a network namespace, directly and
// through sluice (policy evaluated for every statement), in one run.
type pgBench struct {
	host     *testhost.Host
	pg       *testhost.Postgres
	password string
	pwFile   string
}

func startPGBench(dir string) (*pgBench, error) {
	if _, err := testhost.PostgresBin(); err != nil {
		return nil, err
	}
	h, err := testhost.New("slb", 101)
	if err != nil {
		return nil, err
	}
	pgDir := filepath.Join(dir, "pg")
	pg, err := testhost.StartPostgres(h, pgDir)
	if err != nil {
		h.Close()
		return nil, err
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	p := &pgBench{host: h, pg: pg, password: hex.EncodeToString(b), pwFile: filepath.Join(dir, "pg.pw")}
	if err := os.WriteFile(p.pwFile, []byte(p.password), 0o600); err != nil {
		p.stop()
		return nil, err
	}
	for _, sql := range []string{
		"CREATE ROLE bench LOGIN PASSWORD '" + p.password + "'",
		"CREATE DATABASE bench OWNER bench",
	} {
		if _, err := pg.Psql("postgres", sql); err != nil {
			p.stop()
			return nil, err
		}
	}
	init := pg.Command("pgbench", "-i", "-q", "-s", "10", "-U", "bench", "bench")
	if out, err := init.CombinedOutput(); err != nil {
		p.stop()
		return nil, fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return p, nil
}

func (p *pgBench) stop() {
	p.pg.Stop()
	p.host.Close()
}

// targets: the server as a postgres target on its IPv4 address, and as an
// opaque tcp target on its IPv6 address (the cost of the extra hop alone,
// without reading any SQL).
func (p *pgBench) targets() string {
	return fmt.Sprintf("  - {name: bench-db, address: \"%s:5432\", protocol: postgres, labels: {env: production}, tls: {mode: %s}, credentials: {username: bench, password_file: %s}}\n", p.host.Addr4, sslmodeOr("prefer"), p.pwFile) +
		fmt.Sprintf("  - {name: bench-raw, address: \"[%s]:5432\", protocol: tcp}\n", p.host.Addr6)
}

type pgResult struct {
	tps     float64
	latency float64 // mean, ms
	p50     time.Duration
}

var (
	tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latRE = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// run runs pgbench (through sluice when wrap is set) and reads its result;
// per-transaction logs give the median latency.
func (p *pgBench) run(wrap func(argv ...string) *exec.Cmd, host string, clients int, mode string, seconds int) (pgResult, error) {
	return p.pgbench(wrap, host, clients, seconds, "-S", "-M", mode)
}

// runScript runs one of pgbench's builtin scripts (select-only,
// tpcb-like) with the simple protocol.
func (p *pgBench) runScript(wrap func(argv ...string) *exec.Cmd, host string, clients int, script string, seconds int) (pgResult, error) {
	return p.pgbench(wrap, host, clients, seconds, "-b", script, "-M", "simple")
}

func (p *pgBench) pgbench(wrap func(argv ...string) *exec.Cmd, host string, clients, seconds int, load ...string) (pgResult, error) {
	logDir, err := os.MkdirTemp("", "sluice-pgbench-")
	if err != nil {
		return pgResult{}, err
	}
	defer os.RemoveAll(logDir)
	argv := append([]string{p.pg.Bin("pgbench"), "-h", host, "-p", "5432", "-U", "bench", "-n"}, load...)
	argv = append(argv, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(clients),
		"-T", strconv.Itoa(seconds), "-l", "--log-prefix", filepath.Join(logDir, "tx"), "bench")
	cmd := wrap(argv...)
	cmd.Env = append(cmd.Env, "PGPASSWORD="+p.password, "PGSSLMODE="+sslmodeOr("prefer"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgResult{}, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	var r pgResult
	if m := tpsRE.FindSubmatch(out); m != nil {
		r.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := latRE.FindSubmatch(out); m != nil {
		r.latency, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if r.tps == 0 {
		return r, fmt.Errorf("no tps in pgbench output:\n%s", out)
	}
	r.p50, err = medianLatency(logDir)
	return r, err
}

// medianLatency reads pgbench's per-transaction logs (the third field is
// the latency in microseconds).
func medianLatency(dir string) (time.Duration, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "tx*"))
	var lat []int64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			if v, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
				lat = append(lat, v)
			}
		}
		fh.Close()
	}
	if len(lat) == 0 {
		return 0, fmt.Errorf("no transactions logged")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return time.Duration(lat[len(lat)/2]) * time.Microsecond, nil
}

func sslmodeOr(def string) string {
	if sslmode != "" {
		return sslmode
	}
	return def
}

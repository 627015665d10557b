package testhost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-gate/sluice/pkg/ca"
)

// Postgres is a real PostgreSQL server (Debian's) running inside a Host.
type Postgres struct {
	Host *Host
	Dir  string // data directory
	// Socket is the directory of its unix socket: administration goes
	// through it from the host, the way an operator would.
	Socket string
	Port   int
	// CAFile verifies the server's TLS certificate (issued for the host's
	// addresses).
	CAFile string
	bin    string
	cred   *syscall.Credential
	cmd    *exec.Cmd
	exited chan error
}

// PostgresBin returns the directory holding initdb, postgres and pgbench.
func PostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("PostgreSQL server not installed (apt-get install postgresql)")
}

// StartPostgres initialises a cluster in dir and runs it in h on port 5432
// of both of h's addresses. Host connections authenticate by password:
// scram-sha-256 by default, md5 for members of the role md5_login,
// cleartext for members of password_login (both roles are created). TLS is
// on, with a certificate from a throwaway CA (CAFile).
func StartPostgres(h *Host, dir string) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := &Postgres{
		Host: h, Dir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "sock"), Port: 5432, bin: bin,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
	}
	for _, d := range []string{dir, p.Socket} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return nil, err
		}
	}
	// The parent of a t.TempDir is 0700 root; the server must reach dir.
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", p.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}

	// Server TLS material from a throwaway CA.
	caDir := filepath.Join(dir, "ca")
	c, err := ca.Load(caDir)
	if err != nil {
		return nil, err
	}
	leaf, err := c.Leaf(h.Addr4.String(), h.Addr6.String(), "postgres.test")
	if err != nil {
		return nil, err
	}
	p.CAFile = filepath.Join(caDir, ca.CertFile)
	_ = os.Chmod(caDir, 0o755)
	if err := writeLeaf(p.Dir, leaf, uid, gid); err != nil {
		return nil, err
	}

	conf := fmt.Sprintf(`
listen_addresses = '%s,%s'
port = %d
unix_socket_directories = '%s'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
log_destination = 'stderr'
logging_collector = off
log_connections = on
log_min_messages = warning
`, h.Addr4, h.Addr6, p.Port, p.Socket)
	if err := appendFile(filepath.Join(p.Dir, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	hba := `local all all trust
host all all 127.0.0.1/32 trust
host all +md5_login all md5
host all +password_login all password
host all all all scram-sha-256
`
	if err := os.WriteFile(filepath.Join(p.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	_ = os.Chown(filepath.Join(p.Dir, "pg_hba.conf"), uid, gid)

	p.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", p.Dir)
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGTERM}
	if err := h.Start(p.cmd); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := p.Psql("postgres", "SELECT 1"); err == nil {
			if _, err := p.Psql("postgres", "CREATE ROLE md5_login NOLOGIN; CREATE ROLE password_login NOLOGIN"); err != nil {
				p.Stop()
				return nil, err
			}
			return p, nil
		}
		select {
		case err := <-p.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, errors.New("postgres did not become ready")
		}
	}
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

// Psql runs SQL through the unix socket as the postgres superuser and
// returns psql's unaligned, tuples-only output.
func (p *Postgres) Psql(db, sql string) (string, error) {
	return p.PsqlAs("postgres", db, sql)
}

// PsqlAs is Psql as another role (local connections are trusted).
func (p *Postgres) PsqlAs(role, db, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(p.bin, "psql"), "-h", p.Socket, "-p", strconv.Itoa(p.Port), "-U", role, "-d", db,
		"-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PGCONNECT_TIMEOUT=5"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Bin returns the path of a PostgreSQL program (pgbench, psql, ...).
func (p *Postgres) Bin(name string) string { return filepath.Join(p.bin, name) }

// Command returns a command for a PostgreSQL program run as the server's
// user against the unix socket (PGHOST and PGPORT set).
func (p *Postgres) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PGHOST=" + p.Socket, "PGPORT=" + strconv.Itoa(p.Port)}
	return cmd
}

// Log returns the server's log so far.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(p.Dir), "postgres.log"))
	return string(b)
}

// Stop shuts the server down (fast mode) and waits for it.
func (p *Postgres) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	Terminate(p.cmd.Process, syscall.SIGINT, p.exited, 15*time.Second)
}

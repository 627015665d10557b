package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Store is the open database.
type Store struct {
	DB     *sql.DB
	driver string
}

// Config says which database to use.
type Config struct {
	// Driver is "sqlite" (default: one host) or "postgres" (a fleet
	// sharing the approvals queue and the session index).
	Driver string
	// DSN is the SQLite file or the PostgreSQL connection string.
	DSN string
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	switch {
	case c.Driver != SQLite && c.Driver != Postgres:
		return fmt.Errorf("store: driver %q: want sqlite or postgres", c.Driver)
	case c.DSN == "":
		return errors.New("store: no dsn")
	}
	return nil
}

// Open opens the database and brings its schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		db  *sql.DB
		err error
	)
	switch cfg.Driver {
	case SQLite:
		// WAL: readers never wait for the writer. synchronous=NORMAL:
		// a commit is in the WAL file when it returns, so a crash of the
		// daemon loses nothing, but it reaches the disk at the next
		// checkpoint, so a power loss can roll back the last commits.
		// An fsync per commit would cost every connection two (its
		// index row opens and closes); what must survive a power loss
		// (audit-critical requests, approval decisions) is fsynced in
		// the session's recording instead, which is the audit trail.
		db, err = sql.Open("sqlite", "file:"+cfg.DSN+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)")
		if err == nil {
			// SQLite has one writer; one connection keeps transactions
			// from interleaving.
			db.SetMaxOpenConns(1)
		}
	case Postgres:
		db, err = sql.Open("pgx", cfg.DSN)
		if err == nil {
			db.SetMaxOpenConns(8)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.SetConnMaxLifetime(0)
	s := &Store{DB: db, driver: cfg.Driver}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenSQLite opens the SQLite store in a file.
func OpenSQLite(ctx context.Context, file string) (*Store, error) {
	return Open(ctx, Config{Driver: SQLite, DSN: file})
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Driver is "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// Rebind rewrites a query written with ? placeholders for the driver
// ($1, $2, ... for PostgreSQL). Queries in sluice are written once, in
// the common subset of both dialects.
func (s *Store) Rebind(q string) string {
	if s.driver != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	inString := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inString = !inString
		case c == '?' && !inString:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(driver string) ([]migration, error) {
	dir := "migrations/" + driver
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		n := e.Name()
		num, rest, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || path.Ext(n) != ".sql" {
			return nil, fmt.Errorf("migration %q: want NNN_name.sql", n)
		}
		b, err := fs.ReadFile(migrations, dir+"/"+n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(rest, ".sql"), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: version %d missing", i+1)
		}
	}
	return out, nil
}

// migrate applies the migrations the database has not seen, each in a
// transaction. A database newer than this binary is refused: a downgrade
// must not guess.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.driver)
	if err != nil {
		return err
	}
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.driver == Postgres {
		// Daemons of a fleet may start together: one migrates, the
		// others wait for it.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7219042712)`); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("store schema version %d is newer than this sluiced (%d)", current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			m.version, m.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Version is the schema version in force.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

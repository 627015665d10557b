package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "sluice.db")
	s, err := OpenSQLite(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Version(ctx)
	if err != nil || v < 1 {
		t.Fatalf("Version = %d, %v", v, err)
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO approval_events (at, approval_id, event, actor, detail) VALUES ('t', 'a', 'requested', 'x', '{}')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT count(*) FROM approval_events`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after reopen: %d, %v", n, err)
	}
	if v2, _ := s.Version(ctx); v2 != v {
		t.Errorf("version changed on reopen: %d -> %d", v, v2)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "sluice.db")
	s, err := OpenSQLite(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (999, 'future', 'now')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenSQLite(ctx, file); err == nil {
		t.Fatal("Open of a database from a newer sluiced succeeded")
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgResult is printed by the pg commands.
type pgResult struct {
	OK      bool       `json:"ok"`
	Code    string     `json:"code,omitempty"`
	Err     string     `json:"err,omitempty"`
	Rows    [][]string `json:"rows,omitempty"`
	Steps   []pgResult `json:"steps,omitempty"`
	Traffic int        `json:"traffic,omitempty"` // bytes read from the server
}

func pgFail(err error) pgResult {
	r := pgResult{Err: err.Error()}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r.Code, r.Err = pe.Code, pe.Message
	}
	return r
}

// recorder keeps every byte the server sent, so a test can check what the
// agent could have seen on the wire.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func pgConnect(ctx context.Context, dsn string, traffic *bytes.Buffer) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if traffic != nil {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &recorder{Conn: c, buf: traffic}, nil
		}
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func rowsOf(rows pgx.Rows) ([][]string, error) {
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				row[i] = "NULL"
			case pgtype.Numeric:
				f, _ := x.Float64Value()
				row[i] = fmt.Sprint(f.Float64)
			default:
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// pgQuery runs one statement with the extended protocol (pgx prepares it
// and asks for binary results where it knows the types).
//
//	agent pg DSN SQL [ARG...]
func pgQuery(dsn, sql string, args []string) pgResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgConnect(ctx, dsn, nil)
	if err != nil {
		return pgFail(err)
	}
	defer conn.Close(ctx)
	anyArgs := make([]any, len(args))
	for i, a := range args {
		anyArgs[i] = a
	}
	rows, err := conn.Query(ctx, sql, anyArgs...)
	if err != nil {
		return pgFail(err)
	}
	out, err := rowsOf(rows)
	if err != nil {
		return pgFail(err)
	}
	return pgResult{OK: true, Rows: out}
}

// pgPipeline sends several statements in one pipeline (pgx batch: all
// Parse/Bind/Describe/Execute messages, then one Sync) and reports each.
// Statements come as arguments; a statement that fails does not stop the
// report of the others.
//
//	agent pgpipe DSN SQL...
func pgPipeline(dsn string, stmts []string) pgResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgConnect(ctx, dsn, nil)
	if err != nil {
		return pgFail(err)
	}
	defer conn.Close(ctx)
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s)
	}
	br := conn.SendBatch(ctx, b)
	res := pgResult{OK: true}
	for range stmts {
		rows, err := br.Query()
		if err != nil {
			res.Steps = append(res.Steps, pgFail(err))
			continue
		}
		out, err := rowsOf(rows)
		if err != nil {
			res.Steps = append(res.Steps, pgFail(err))
			continue
		}
		res.Steps = append(res.Steps, pgResult{OK: true, Rows: out})
	}
	if err := br.Close(); err != nil {
		res.Err = err.Error()
	}
	// The session must still be usable afterwards.
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		res.OK = false
		res.Err = fmt.Sprintf("session unusable after the pipeline: %v", err)
	}
	return res
}

// pgTraffic runs a query and writes every byte the server sent to file,
// then reports the query's result.
//
//	agent pgtraffic DSN FILE SQL
func pgTraffic(dsn, file, sql string) pgResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var traffic bytes.Buffer
	conn, err := pgConnect(ctx, dsn, &traffic)
	if err != nil {
		return pgFail(err)
	}
	rows, err := conn.Query(ctx, sql)
	var res pgResult
	if err != nil {
		res = pgFail(err)
	} else if out, err := rowsOf(rows); err != nil {
		res = pgFail(err)
	} else {
		res = pgResult{OK: true, Rows: out}
	}
	conn.Close(ctx)
	res.Traffic = traffic.Len()
	if err := os.WriteFile(file, traffic.Bytes(), 0o644); err != nil {
		return pgFail(err)
	}
	return res
}

func printPG(r pgResult) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

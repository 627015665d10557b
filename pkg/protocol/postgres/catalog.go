package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gate/sluice/pkg/protocol"
)

// Catalog lookups resolve what a RowDescription only gives as numbers
// (table OID, attribute number) to the names column masking rules use. They
// run on a side connection per target and database, as sluice's own login.
const (
	catalogTTL  = 5 * time.Minute
	catalogIdle = 5 * time.Minute
)

type relation struct {
	schema, name string
	cols         map[uint16]string // attnum → name
	fetched      time.Time
}

// qualified is schema.name.
func (r *relation) qualified() string { return r.schema + "." + r.name }

type catalogKey struct{ target, database string }

type catalogs struct {
	// mu guards m.
	mu sync.Mutex
	m  map[catalogKey]*catalog
}

func newCatalogs() *catalogs { return &catalogs{m: map[catalogKey]*catalog{}} }

type catalog struct {
	// mu guards everything below; lookups are serialized per catalog.
	mu       sync.Mutex
	conn     *pgconn.PgConn
	lastUsed time.Time
	rels     map[uint32]*relation
}

func (cs *catalogs) get(target, database string) *catalog {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	k := catalogKey{target, database}
	c, ok := cs.m[k]
	if !ok {
		c = &catalog{rels: map[uint32]*relation{}}
		cs.m[k] = c
	}
	return c
}

func (c *catalog) connect(ctx context.Context, s *protocol.Session, database string) error {
	if c.conn != nil && !c.conn.IsClosed() && time.Since(c.lastUsed) < catalogIdle {
		return nil
	}
	if c.conn != nil {
		_ = c.conn.Close(ctx)
		c.conn = nil
	}
	cfg, err := upstreamConfig(s, database, map[string]string{"application_name": "sluice catalog"}, 0)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

// relations resolves table OIDs (unknown ones are simply absent).
func (cs *catalogs) relations(ctx context.Context, s *protocol.Session, database string, oids []uint32) (map[uint32]*relation, error) {
	c := cs.get(s.Target.Name, database)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]*relation, len(oids))
	var missing []string
	for _, o := range oids {
		if r, ok := c.rels[o]; ok && time.Since(r.fetched) < catalogTTL {
			out[o] = r
		} else {
			missing = append(missing, strconv.FormatUint(uint64(o), 10))
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	if err := c.connect(ctx, s, database); err != nil {
		return nil, err
	}
	c.lastUsed = time.Now()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res := c.conn.ExecParams(qctx,
		`SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname
		   FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
		  WHERE c.oid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped`,
		[][]byte{[]byte("{" + strings.Join(missing, ",") + "}")}, nil, nil, nil).Read()
	if res.Err != nil {
		_ = c.conn.Close(ctx)
		c.conn = nil
		return nil, fmt.Errorf("catalog lookup: %w", res.Err)
	}
	now := time.Now()
	for _, row := range res.Rows {
		oid, _ := strconv.ParseUint(string(row[0]), 10, 32)
		attnum, _ := strconv.ParseUint(string(row[3]), 10, 16)
		r := c.rels[uint32(oid)]
		if r == nil || r.fetched != now {
			r = &relation{schema: string(row[1]), name: string(row[2]), cols: map[uint16]string{}, fetched: now}
			c.rels[uint32(oid)] = r
		}
		r.cols[uint16(attnum)] = string(row[4])
		out[uint32(oid)] = r
	}
	return out, nil
}

// columns returns the columns of a table named as in a statement, in
// attribute order, with the table's schema-qualified name.
func (cs *catalogs) columns(ctx context.Context, s *protocol.Session, database, table string) (string, []string, error) {
	c := cs.get(s.Target.Name, database)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connect(ctx, s, database); err != nil {
		return "", nil, err
	}
	c.lastUsed = time.Now()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res := c.conn.ExecParams(qctx,
		`SELECT n.nspname || '.' || c.relname, a.attname
		   FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
		  WHERE c.oid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		  ORDER BY a.attnum`,
		[][]byte{[]byte(table)}, nil, nil, nil).Read()
	if res.Err != nil {
		return "", nil, fmt.Errorf("catalog lookup of %s: %w", table, res.Err)
	}
	var name string
	var cols []string
	for _, row := range res.Rows {
		name = string(row[0])
		cols = append(cols, string(row[1]))
	}
	return name, cols, nil
}

package postgres

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
	"github.com/sluice-gate/sluice/pkg/recorder"
	"github.com/sluice-gate/sluice/pkg/target"
)

func encode(msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	var b []byte
	for _, m := range msgs {
		b, _ = m.Encode(b)
	}
	return b
}

// FuzzStartup feeds arbitrary start-up packets: the handler answers or
// closes, never panics, never waits past its deadline.
func FuzzStartup(f *testing.F) {
	f.Add(encode(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "a", "database": "b"}}))
	f.Add(encode(&pgproto3.GSSEncRequest{}, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "a", "_pq_.x": "1"}}))
	f.Add(encode(&pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}}))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0})
	h := newTestHandler(f)
	s := testSession()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			_, _ = a.Write(data)
			_ = a.Close()
		}()
		go io.Copy(io.Discard, a)
		done := make(chan struct{})
		go func() {
			defer close(done)
			st, err := h.negotiate(s, b)
			if err == nil && st.msg == nil && st.cancel == nil {
				t.Errorf("negotiate(%x) succeeded with nothing", data)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("negotiate(%x) hangs", data)
		}
		b.Close()
	})
}

// FuzzClientMessages runs the client side of the relay on arbitrary
// message streams, with the target side discarding what it is sent: no
// input may panic it, and refusals must come back as protocol errors.
func FuzzClientMessages(f *testing.F) {
	f.Add(encode(&pgproto3.Query{String: "SELECT 1; DROP TABLE t"}))
	f.Add(encode(&pgproto3.Parse{Name: "s", Query: "DELETE FROM t"}, &pgproto3.Bind{PreparedStatement: "s"},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Query{String: "COPY t TO STDOUT (FORMAT binary)"}, &pgproto3.Terminate{}))
	f.Add(encode(&pgproto3.FunctionCall{Function: 42}))
	f.Add(encode(&pgproto3.CopyData{Data: []byte("1\t2\n")}, &pgproto3.CopyDone{}))
	f.Add([]byte{'Q', 0, 0, 0, 4})
	f.Add([]byte{'Q', 0x7f, 0, 0, 0})
	h := newTestHandler(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ca, cb := net.Pipe()
		ua, ub := net.Pipe()
		go io.Copy(io.Discard, ca)
		go io.Copy(io.Discard, ub)
		c := testConn(h, cb, ua)
		go func() {
			_, _ = ca.Write(data)
			_ = ca.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.fromClient(ctx)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("fromClient(%x) hangs", data)
		}
		ua.Close()
		cb.Close()
	})
}

// FuzzMaskRow masks arbitrary rows under arbitrary descriptions: never a
// panic, NULL stays NULL, and with a detector on, no card number survives
// in a text column.
func FuzzMaskRow(f *testing.F) {
	f.Add(uint32(25), int16(0), []byte("card 4111 1111 1111 1111"))
	f.Add(uint32(3802), int16(1), []byte("\x01{\"pan\": \"4111111111111111\"}"))
	f.Add(uint32(20), int16(1), []byte{0, 14, 155, 212, 109, 69, 248, 71})
	f.Add(uint32(1700), int16(1), []byte{0, 4, 0, 3, 0, 0, 0, 0, 0, 41, 4, 87, 4, 87, 4, 87})
	f.Add(uint32(1009), int16(1), []byte("\x00\x00\x00\x01"))
	rules, _ := mask.ParseRules([]map[string]any{
		{"detector": "pan", "strategy": "redact"},
		{"detector": "email", "strategy": "partial"},
		{"column": "*secret*", "strategy": "hash"},
	})
	m, err := mask.New(rules, []byte("k"))
	if err != nil {
		f.Fatal(err)
	}
	c := &conn{h: newTestHandler(f), log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, oid uint32, format int16, v []byte) {
		fields := []pgproto3.FieldDescription{
			{Name: []byte("a"), DataTypeOID: oid, Format: format},
			{Name: []byte("secret"), DataTypeOID: oid, Format: format},
			{Name: []byte("n"), DataTypeOID: oid, Format: format},
		}
		p := c.newRowPlan(m, fields, nil)
		row := &pgproto3.DataRow{Values: [][]byte{append([]byte(nil), v...), append([]byte(nil), v...), nil}}
		var st mask.Stats
		p.maskRow(row, &st)
		if row.Values[2] != nil {
			t.Fatal("NULL became a value")
		}
		if textual[oid] || (format == 0 && oid >= firstUserOID) {
			if out, hits := m.Text(nil, row.Values[0], nil); hits > 0 && row.Values[0] != nil {
				t.Fatalf("masked %q still has %d detector hits: %q", v, hits, out)
			}
		}
		if _, err := row.Encode(nil); err != nil {
			t.Fatalf("masked row does not encode: %v", err)
		}
	})
}

func newTestHandler(tb testing.TB) *Handler {
	tb.Helper()
	h, err := New(Config{CA: testCA(tb), MaskKey: []byte("test-key"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// testConn is a relay over the given pipes, with a policy that allows
// everything but DELETE and masks card numbers.
func testConn(h *Handler, client, up net.Conn) *conn {
	s := testSession()
	c := &conn{
		h: h, s: s, log: s.Log,
		client: client, be: pgproto3.NewBackend(client, client),
		up: up, fe: pgproto3.NewFrontend(up, up),
		database: "db", poison: `SELECT 1 FROM "sluice"."refused_x"`,
		stmts: map[string]*prepared{}, portals: map[string]*portal{},
		sqlNamed: map[string]*pgsql.Statement{}, maskers: mask.NewCache(h.cfg.MaskKey),
		masked: map[string]uint64{},
	}
	c.be.SetMaxBodyLen(1 << 20)
	c.scs.Store("on")
	c.encoding.Store("UTF8")
	return c
}

func testSession() *protocol.Session {
	set, _ := target.NewSet(context.Background(), []config.Target{{Name: "db", Address: "198.18.0.2:5432", Protocol: "postgres"}}, nil)
	s := &protocol.Session{ID: "test", Log: slog.New(slog.DiscardHandler), Target: set.All()[0], Rec: recorder.Discard{}}
	s.Conn.Origin.Dst = netip.MustParseAddrPort("198.18.0.2:5432")
	s.Authorize = func(_ context.Context, op policy.Operation) (policy.Decision, error) {
		d := policy.Decision{Allow: true, Mask: []map[string]any{{"detector": "pan", "strategy": "redact"}}}
		if op.Fields["kind"] == "delete" {
			d.Deny = []string{"no deletes"}
		}
		return d, nil
	}
	return s
}

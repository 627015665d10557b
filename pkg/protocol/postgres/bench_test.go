package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
)

// BenchmarkMaskRows measures DataRow masking on a wide result (20 text
// columns of customer-like data), the way rows flow through the relay:
// per row, mask then encode. MB/s is of row payload.
func BenchmarkMaskRows(b *testing.B) {
	fields := make([]pgproto3.FieldDescription, 20)
	for i := range fields {
		fields[i] = pgproto3.FieldDescription{Name: []byte(fmt.Sprintf("c%d", i)), DataTypeOID: pgtype.TextOID}
	}
	fields[3].Name = []byte("email")
	fields[7].Name = []byte("card_number")
	values := [][]byte{
		[]byte("Alice Example"), []byte("42 Main Street, Springfield"), []byte("2024-01-15"),
		[]byte("alice@example.com"), []byte("order 918273 shipped"), []byte("+1 415 555 2671"),
		[]byte("premium"), []byte("4111 1111 1111 1111"), []byte("no notes"), []byte("DE"),
	}
	row := &pgproto3.DataRow{Values: make([][]byte, 20)}
	size := 0
	for i := range row.Values {
		row.Values[i] = values[i%len(values)]
		size += len(row.Values[i])
	}
	cases := []struct {
		name  string
		rules []map[string]any
	}{
		{"column rules", []map[string]any{
			{"column": "email", "strategy": "partial"}, {"column": "card_*", "strategy": "redact"},
		}},
		{"all detectors", []map[string]any{{"detector": "*", "strategy": "redact"}}},
		{"default policy", []map[string]any{
			{"detector": "pan", "strategy": "redact"}, {"detector": "us_ssn", "strategy": "redact"},
			{"detector": "email", "strategy": "partial"},
		}},
	}
	c := &conn{h: newTestHandler(b), log: slog.New(slog.DiscardHandler)}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			rules, err := mask.ParseRules(tc.rules)
			if err != nil {
				b.Fatal(err)
			}
			m, err := mask.New(rules, []byte("k"))
			if err != nil {
				b.Fatal(err)
			}
			plan := c.newRowPlan(m, fields, nil)
			var st mask.Stats
			buf := make([]byte, 0, 4096)
			work := &pgproto3.DataRow{Values: make([][]byte, len(row.Values))}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(work.Values, row.Values)
				plan.maskRow(work, &st)
				buf, _ = work.Encode(buf[:0])
			}
		})
	}
}

// BenchmarkJudge is the per-statement decision for a request that needs no
// approval, with and without an approval service wired in: the approval
// path must cost nothing (same time, same allocations) when policy does
// not ask for it.
func BenchmarkJudge(b *testing.B) {
	stmts, err := pgsql.Parse("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
	if err != nil {
		b.Fatal(err)
	}
	for _, withApprover := range []bool{false, true} {
		name := "without approver"
		if withApprover {
			name = "with approver"
		}
		b.Run(name, func(b *testing.B) {
			c := testConn(newTestHandler(b), nil, nil)
			d := policy.Decision{Allow: true, Mask: []map[string]any{{"detector": "pan", "strategy": "redact"}}}
			c.s.Authorize = func(context.Context, policy.Operation) (policy.Decision, error) { return d, nil }
			if withApprover {
				c.s.Approve = func(context.Context, policy.Operation, policy.Decision) (protocol.Verdict, error) {
					b.Fatal("approval asked for a request that needs none")
					return protocol.Verdict{}, nil
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if js, r := c.judge(ctx, "query", stmts, nil); r != nil || js[0].d.Approval.Required {
					b.Fatal("refused or held")
				}
			}
		})
	}
}

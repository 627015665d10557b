package record

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAppend appends a request and its result (a 10-row sample) per
// iteration, as a handler does for one statement.
func BenchmarkAppend(b *testing.B) {
	req := Request{
		ID: "r12", Action: "select", Text: "SELECT id, email, created_at FROM customers WHERE region = $1 LIMIT 10",
		Operation: map[string]any{"tables": []any{"customers"}, "statement": "select"},
		Decision:  Decision{Allowed: true, Mask: []map[string]any{{"column": "email", "strategy": "partial"}}},
		Started:   epoch,
	}
	s := newSample(DefaultResultCap)
	for i := range 10 {
		s.Add([]string{strconv.Itoa(i), "a***@example.com", "2026-03-01 10:00:00+00"})
	}
	res := Result{Request: "r12", Duration: 2 * time.Millisecond, Rows: 10, Bytes: 612, Tag: "SELECT 10",
		Masked: map[string]uint64{"email": 10}, Columns: []string{"id", "email", "created_at"}, RowsSample: s.Rows()}

	for _, bc := range []struct {
		name      string
		durable   bool
		encrypted bool
	}{
		{"durable=false", false, false},
		{"durable=true", true, false},
		{"durable=false/encrypted", false, true},
		{"durable=true/encrypted", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var opts Options
			if bc.encrypted {
				opts.Recipient = auditor(b).Recipient()
			}
			path := filepath.Join(b.TempDir(), "s")
			w, err := Create(path, pgHeader(), opts)
			if err != nil {
				b.Fatal(err)
			}
			var records int
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Append(KindRequest, req, bc.durable); err != nil {
					b.Fatal(err)
				}
				if _, err := w.Append(KindResult, res, bc.durable); err != nil {
					b.Fatal(err)
				}
				records += 2
			}
			elapsed := b.Elapsed()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(records), "ns/record")
			b.ReportMetric(float64(fi.Size())/float64(records+2), "B/record")
		})
	}
}

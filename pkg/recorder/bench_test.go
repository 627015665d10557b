package recorder

import (
	"context"
	"testing"

	"github.com/sluice-gate/sluice/pkg/record"
)

// BenchmarkSession is what recording adds to every connection: open the
// recording and its index row, one note, close both (SQLite index).
func BenchmarkSession(b *testing.B) {
	f := newFixture(b)
	r := f.recorder(b, "run-1", 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h := header("pg", "build-7")
	b.ReportAllocs()
	for b.Loop() {
		s, err := r.Start(ctx, h)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Note("connection closed")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequest is what recording adds to a statement: its request
// and result records (not durable).
func BenchmarkRequest(b *testing.B) {
	f := newFixture(b)
	r := f.recorder(b, "run-1", 0, 0)
	s, err := r.Start(context.Background(), header("pg", "build-7"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		id, err := s.Request(record.Request{Action: "select", Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 4711", Decision: record.Decision{Allowed: true}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Result(record.Result{Request: id, Rows: 1, Tag: "SELECT 1"}); err != nil {
			b.Fatal(err)
		}
	}
}

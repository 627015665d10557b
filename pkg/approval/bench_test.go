package approval

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkApproveToRelease measures the time from a reviewer's Decide call
// to the held request's Hold returning (the moment the handler forwards the
// request to the target), with the real SQLite store (synchronous=FULL).
// It reports p50 and p99 over the iterations.
func BenchmarkApproveToRelease(b *testing.B) {
	st, _ := openStoreTB(b)
	s, err := New(context.Background(), Config{Store: &SQL{DB: st.DB}, Instance: "bench", Log: discard()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	alice := reviewer("alice", "reviewers")
	var lat []time.Duration
	ch, stop := s.Subscribe()
	defer stop()
	for b.Loop() {
		op, d := ddl("CREATE TABLE t (i int)")
		released := make(chan time.Time, 1)
		go func() {
			_, _ = s.Hold(ctx, session("build-1"), op, d)
			released <- time.Now()
		}()
		var id string
		for r := range ch {
			if r.Status == Pending {
				id = r.ID
				break
			}
		}
		start := time.Now()
		if _, err := s.Decide(ctx, id, alice, Decision{Approve: true}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-released).Sub(start))
		// Drain the decision event.
		<-ch
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

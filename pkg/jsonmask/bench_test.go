package jsonmask

import (
	"io"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/mask"
)

const (
	listHead = `{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"48213"},"items":[`
	listTail = "]}\n"
)

// appendObject appends the i-th item of a wide list resembling what a
// REST or Kubernetes API returns: ids, names, labels, timestamps, numbers,
// free text, an e-mail address and a phone number in every item, and a
// card number in every fourth. About 1 KiB.
func appendObject(b []byte, i int) []byte {
	n := int64(i)
	b = append(b, `{"metadata":{"name":"customer-`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","namespace":"billing","uid":"7c9e6679-7425-40de-944b-`...)
	b = strconv.AppendInt(b, 100000000000+n, 10)
	b = append(b, `","resourceVersion":"`...)
	b = strconv.AppendInt(b, 7*n+48213, 10)
	b = append(b, `","creationTimestamp":"2024-05-01T12:34:56Z","labels":{"app.kubernetes.io/name":"crm","tier":"backend"}},`...)
	b = append(b, `"spec":{"customer":{"name":"Jane Doe","email":"jane.doe`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `@example.com","phone":"+1 415 555 `...)
	b = strconv.AppendInt(b, 1000+n%9000, 10)
	if i%4 == 0 {
		b = append(b, `","card":"4111 1111 1111 1111",`...)
	} else {
		b = append(b, `","card":"tok_`...)
		b = strconv.AppendInt(b, 31*n, 36)
		b = append(b, `",`...)
	}
	b = append(b, `"address":{"street":"1 Main St","city":"Springfield","zip":"62704","country":"US"}},`...)
	b = append(b, `"orders":[{"id":`...)
	b = strconv.AppendInt(b, 13*n, 10)
	b = append(b, `,"amount":19.99,"currency":"USD","items":3,"shipped":true},{"id":`...)
	b = strconv.AppendInt(b, 13*n+1, 10)
	b = append(b, `,"amount":5.5,"currency":"EUR","items":1,"shipped":false}],`...)
	b = append(b, `"notes":"customer asked about the delayed shipment, see ticket INC-`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `; worker v1.2.3 at 192.168.1.10 retried twice on 2024-05-02","active":true,"score":0.87,"tags":["vip","newsletter"]},`...)
	b = append(b, `"status":{"phase":"Active","balance":1234.56,"lastLogin":"2024-06-01T08:00:00Z","conditions":[{"type":"Ready","status":"True"}]}}`...)
	return b
}

// wideList returns a list document of n items.
func wideList(n int) string {
	b := []byte(listHead)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObject(b, i)
	}
	return string(append(b, listTail...))
}

// benchMaskers are the rule sets the benchmark report quotes.
func benchMaskers(tb testing.TB) map[string]*mask.Masker {
	paths := []map[string]any{
		{"path": "$.items[*].spec.customer.card", "strategy": "redact"},
		{"path": "$.items[*].spec.customer.email", "strategy": "partial"},
		{"path": "$..phone", "strategy": "hash"},
	}
	return map[string]*mask.Masker{
		"none":      mustMasker(tb),
		"paths":     mustMasker(tb, paths...),
		"detectors": mustMasker(tb, map[string]any{"detector": "*", "strategy": "redact"}),
		"both":      mustMasker(tb, append(paths, map[string]any{"detector": "*", "strategy": "redact"})...),
	}
}

// BenchmarkMask reports JSON masking throughput on one core, for a wide
// list written in 32 KiB chunks as an HTTP body arrives. Besides MB/s by
// the clock it reports cpu-MB/s, by the process's CPU time, which stays
// meaningful on a busy machine.
func BenchmarkMask(b *testing.B) {
	doc := []byte(wideList(8 << 10)) // about 8 MiB
	ms := benchMaskers(b)
	for _, name := range []string{"none", "paths", "detectors", "both"} {
		m := ms[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			var st mask.Stats
			cpu0 := cpuTime()
			for b.Loop() {
				w := New(io.Discard, m, Options{Stats: &st})
				for rest := doc; len(rest) > 0; {
					n := min(len(rest), 32<<10)
					if _, err := w.Write(rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)*float64(len(doc))/1e6/cpu.Seconds(), "cpu-MB/s")
			}
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

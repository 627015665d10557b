package jsonmask

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"testing"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// memWriter counts what it is given, checks that masking happened, and
// samples the heap every sampleEvery bytes.
type memWriter struct {
	n, next  int64
	peak     uint64
	masked   bool
	lastTail []byte
}

const sampleEvery = 8 << 20

func (m *memWriter) Write(p []byte) (int, error) {
	m.n += int64(len(p))
	if !m.masked && bytes.Contains(p, []byte(`"card":"[REDACTED]"`)) {
		m.masked = true
	}
	if m.n >= m.next {
		m.next = m.n + sampleEvery
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.peak = max(m.peak, ms.HeapAlloc)
	}
	m.lastTail = append(m.lastTail[:0], p[max(0, len(p)-16):]...)
	return len(p), nil
}

// TestStreamMemory streams a 200 MB list through a Writer, as an HTTP
// body arrives, and checks that the heap stays small and flat: the Writer
// holds a token and a path, never the document.
func TestStreamMemory(t *testing.T) {
	size := int64(200 << 20)
	switch {
	case raceEnabled:
		// The race detector makes it 50 times slower, and allocates.
		size = 4 << 20
	case testing.Short():
		size = 20 << 20
	}
	m := benchMaskers(t)["both"]

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// Generate the list without allocating per item, so that the heap
		// measures the Writer, not the test.
		bw := bufio.NewWriterSize(pw, 64<<10)
		bw.WriteString(listHead)
		var item []byte
		written := int64(len(listHead))
		for i := 0; written < size; i++ {
			item = item[:0]
			if i > 0 {
				item = append(item, ',')
			}
			item = appendObject(item, i)
			bw.Write(item)
			written += int64(len(item))
		}
		bw.WriteString(listTail)
		err := bw.Flush()
		pw.CloseWithError(err)
		done <- err
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	dst := &memWriter{}
	var st mask.Stats
	w := New(dst, m, Options{Stats: &st})
	buf := make([]byte, 32<<10)
	n, err := io.CopyBuffer(w, pr, buf)
	if err != nil {
		t.Fatalf("copy after %d bytes: %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("generator: %v", err)
	}

	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(dst.peak) - int64(before.HeapAlloc)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("streamed %d MB in, %d MB out; heap before %d KiB, peak growth %d KiB; allocated %d KiB in %d objects over the run; stats %v",
		n>>20, dst.n>>20, before.HeapAlloc>>10, growth>>10, allocated>>10, after.Mallocs-before.Mallocs, st.Map())
	if !dst.masked || !bytes.HasSuffix(dst.lastTail, []byte(listTail)) {
		t.Errorf("output has no masked card or does not end the list (tail %q)", dst.lastTail)
	}
	if c := st.Map()["path:$.items[*].spec.customer.card"]; c == 0 {
		t.Errorf("Stats = %v, want cards counted", st.Map())
	}
	// The pipe, the copy buffer, the generator and the output buffer take
	// a few hundred KiB; the limit leaves room for the runtime, not for
	// anything that grows with the input.
	if growth > 4<<20 {
		t.Errorf("heap grew by %d KiB while streaming %d MB, want under 4 MiB", growth>>10, n>>20)
	}
	if allocated > 8<<20 && !raceEnabled {
		t.Errorf("allocated %d KiB while streaming %d MB, want under 8 MiB: something allocates per item", allocated>>10, n>>20)
	}
}

// TestNoAllocs checks that masking an item of a long list, once the
// Writer is warm, allocates nothing: memory cannot grow with the stream.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for name, m := range benchMaskers(t) {
		var st mask.Stats
		w := New(io.Discard, m, Options{Stats: &st})
		if _, err := w.Write([]byte(listHead)); err != nil {
			t.Fatal(err)
		}
		item := appendObject(nil, 4)
		item = append(appendObject(append(item, ','), 5), ',')
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := w.Write(item); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Write(item) = %v allocations, want 0", name, allocs)
		}
	}
}

// TestWideListValid checks the benchmark's input and output.
func TestWideListValid(t *testing.T) {
	doc := wideList(20)
	if !json.Valid([]byte(doc)) {
		t.Fatal("wideList is not valid JSON")
	}
	for name, m := range benchMaskers(t) {
		out, err := run(m, doc, Options{})
		if err != nil || !json.Valid([]byte(out)) {
			t.Errorf("%s: mask(wideList) = %v, valid %v", name, err, json.Valid([]byte(out)))
		}
		if name != "none" && out == doc {
			t.Errorf("%s: mask(wideList) changed nothing", name)
		}
	}
}

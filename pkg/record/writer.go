package record

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
)

var _ io.Closer = (*Writer)(nil)

// Options configure a Writer.
type Options struct {
	// ResultCap bounds the rows sample of each Result, in encoded bytes
	// (see Sample). 0 means DefaultResultCap; at most MaxResultCap.
	ResultCap int
	// Recipient, if not nil, encrypts every record's data but the
	// header's and the end record's to it (the auditor's public key,
	// typically an *age.X25519Recipient).
	Recipient age.Recipient
	// Now is the clock for record times. Nil means time.Now.
	Now func() time.Time
}

// Validate reports whether the options can be used.
func (o Options) Validate() error {
	if o.ResultCap < 0 || o.ResultCap > MaxResultCap {
		return fmt.Errorf("result cap %d: want 0 to %d bytes", o.ResultCap, MaxResultCap)
	}
	return nil
}

// Writer appends records to one recording. It is safe for concurrent use:
// both directions of a connection may append.
type Writer struct {
	now       func() time.Time
	aead      cipher.AEAD // nil: not encrypted
	resultCap int
	f         *os.File
	dir       string

	// syncMu guards durable (a durable Append happened) and dirSynced
	// (the directory entry is on disk).
	syncMu    sync.Mutex
	durable   bool
	dirSynced bool

	// closing is held shared by each Append for its whole length (write
	// and fsync) and exclusively by Close, so that Close neither closes
	// the file under an fsync in flight nor seals it before a record
	// whose seq was already handed out.
	closing  sync.RWMutex
	closed   bool  // guarded by closing
	closeErr error // guarded by closing

	// mu guards the fields below. Seq and prev are assigned and the line
	// is written under it, so lines reach the file in seq order.
	mu   sync.Mutex
	seq  uint64 // of the last record written
	last string // hash of the last record written
	size int64  // bytes of complete lines in the file
	err  error  // sticky: set by a failed write or fsync, and by Close
	buf  []byte // reused line buffer
}

// maxKeptBuf is the largest line buffer a Writer keeps between appends:
// a daemon holds one Writer per connection, and one large record should
// not pin a MiB for the connection's lifetime.
const maxKeptBuf = 64 << 10

// Create creates the recording at path, which must not exist, with mode
// 0600, and writes the header h. Create sets h.Version and h.Recorder, and
// h.Start from the clock when it is zero. The header is in the kernel when
// Create returns, so a crash of the process loses nothing; it reaches the
// disk, with the directory entry, at the first durable Append, so that a
// connection that never carries an audit-critical request costs no fsync.
func Create(path string, h Header, opts Options) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("create recording %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	w, err := NewWriter(f, path, h, opts)
	if err != nil {
		// O_EXCL made the file ours, so it can go: no header was
		// acknowledged, and a header-less file would only confuse an
		// audit.
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return w, nil
}

// NewWriter starts a recording in f, an empty file opened for appending
// that now lives at path (which the first durable Append makes durable in
// its directory), by writing the header h, as Create does. Files can so be
// created ahead of need. On error, f is left to the caller.
func NewWriter(f *os.File, path string, h Header, opts Options) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("create recording %s: %w", path, err)
	}
	w := &Writer{now: opts.Now, resultCap: opts.ResultCap}
	if w.now == nil {
		w.now = time.Now
	}
	if w.resultCap == 0 {
		w.resultCap = DefaultResultCap
	}
	h.Version = FormatVersion
	h.Recorder = Recorder{ResultCap: w.resultCap}
	if opts.Recipient != nil {
		aead, wrapped, err := newFileKey(opts.Recipient)
		if err != nil {
			return nil, fmt.Errorf("create recording %s: %w", path, err)
		}
		w.aead = aead
		h.Recorder.Encrypted = true
		h.Recorder.WrappedKey = wrapped
		p, err := json.Marshal(private{Claims: h.Identity.Claims, Cmdline: h.Process.Cmdline, Parents: h.Process.Parents})
		if err != nil {
			return nil, fmt.Errorf("create recording %s: header: %w", path, err)
		}
		if h.Private, err = seal(aead, 0, KindHeader, p); err != nil {
			return nil, fmt.Errorf("create recording %s: %w", path, err)
		}
		h.Identity.Claims, h.Process.Cmdline, h.Process.Parents = nil, nil, nil
	}
	t := w.now()
	if err := checkTime(t); err != nil {
		return nil, fmt.Errorf("create recording %s: %w", path, err)
	}
	if h.Start.IsZero() {
		h.Start = t
	}
	h.Start = h.Start.UTC()
	data, err := marshalData(h)
	if err != nil {
		return nil, fmt.Errorf("create recording %s: header: %w", path, err)
	}
	line := appendLine(nil, 0, t, KindHeader, Genesis, data)
	if len(line)+1 > MaxRecordSize {
		return nil, fmt.Errorf("create recording %s: header is %d bytes: %w", path, len(line)+1, ErrTooLarge)
	}
	hash := hashOf(line)
	line = append(line, '\n')
	if _, err := f.Write(line); err != nil {
		return nil, fmt.Errorf("create recording %s: %w", path, err)
	}
	w.f = f
	w.dir = filepath.Dir(path)
	w.last = hash
	w.size = int64(len(line))
	return w, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Append writes a record of kind (any kind but KindHeader and KindEnd)
// with data, a value that encodes to a JSON object (normally one of this
// package's data types), and returns its seq. The line is in the kernel
// when Append returns, so a crash of the process loses nothing; with
// durable set it is also on disk (fsync), so a power loss loses nothing
// either. Records larger than MaxRecordSize are refused with ErrTooLarge.
//
// If the fsync fails, the record was written but may not be on disk: its
// seq is returned with the error.
//
// A failed write or fsync leaves the Writer unusable (later calls return
// an error wrapping ErrClosed): the caller must treat the session as no
// longer recorded. The file then stays a well-formed, unsealed recording
// of what was written before.
func (w *Writer) Append(kind Kind, data any, durable bool) (uint64, error) {
	if kind == KindHeader || kind == KindEnd || !kind.valid() {
		return 0, fmt.Errorf("append %q: not a kind Append writes", kind)
	}
	body, err := marshalData(data)
	if err != nil {
		return 0, fmt.Errorf("append %s: %w", kind, err)
	}
	if len(body) > MaxRecordSize {
		return 0, fmt.Errorf("append %s: data is %d bytes: %w", kind, len(body), ErrTooLarge)
	}

	w.closing.RLock()
	defer w.closing.RUnlock()
	w.mu.Lock()
	seq, err := w.writeLocked(kind, body, w.now())
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// The fsync is outside mu so that other appends go on meanwhile; it
	// flushes every line written before it, and closing keeps the file
	// open until it returns.
	if durable {
		if err := w.sync(); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = fmt.Errorf("%w: fsync failed: %v", ErrClosed, err)
			}
			w.mu.Unlock()
			return seq, fmt.Errorf("sync record %d: %w", seq, err)
		}
	}
	return seq, nil
}

// sync flushes the file and, the first time, its directory entry.
func (w *Writer) sync() error {
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.durable = true
	if w.dirSynced {
		return nil
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.dirSynced = true
	return nil
}

// writeLocked encrypts (if configured) and writes one record. w.mu must be
// held.
func (w *Writer) writeLocked(kind Kind, body []byte, t time.Time) (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	seq := w.seq + 1
	if err := checkTime(t); err != nil {
		return 0, fmt.Errorf("append %s: %w", kind, err)
	}
	if w.aead != nil && kind != KindEnd {
		var err error
		if body, err = seal(w.aead, seq, kind, body); err != nil {
			return 0, fmt.Errorf("append %s: %w", kind, err)
		}
	}
	line := appendLine(w.buf[:0], seq, t, kind, w.last, body)
	if len(line)+1 > MaxRecordSize {
		return 0, fmt.Errorf("append %s: record is %d bytes: %w", kind, len(line)+1, ErrTooLarge)
	}
	hash := hashOf(line)
	line = append(line, '\n')
	if cap(line) <= maxKeptBuf {
		w.buf = line[:0]
	} else {
		w.buf = nil
	}
	n, err := w.f.Write(line)
	if err != nil {
		// Cut a partial line off, so the file stays a well-formed prefix
		// (best effort: the disk is already failing us).
		if n > 0 {
			w.f.Truncate(w.size)
		}
		w.err = fmt.Errorf("%w: write of record %d failed: %v", ErrClosed, seq, err)
		return 0, fmt.Errorf("write record %d: %w", seq, err)
	}
	w.seq = seq
	w.last = hash
	w.size += int64(n)
	return seq, nil
}

// Close writes the end record and closes the file; it fsyncs first when
// the recording holds a durable record, so that its seal is as durable as
// what it seals. It waits for
// appends in flight. Close is idempotent: later calls return the first
// call's result. If an earlier write failed, the file is closed unsealed
// and Close returns that error.
func (w *Writer) Close() error {
	w.closing.Lock()
	defer w.closing.Unlock()
	if w.closed {
		return w.closeErr
	}
	w.closed = true

	w.mu.Lock()
	var err error
	if w.err == nil {
		t := w.now()
		end := End{Records: w.seq + 1, LastHash: w.last, Time: t.UTC(), State: StateClosed}
		body, merr := marshalData(end)
		if merr != nil {
			err = merr
		} else {
			_, err = w.writeLocked(KindEnd, body, t)
		}
		w.syncMu.Lock()
		durable := w.durable
		w.syncMu.Unlock()
		if err == nil && durable {
			if serr := w.f.Sync(); serr != nil {
				err = fmt.Errorf("sync end record: %w", serr)
			}
		}
	} else {
		err = w.err
	}
	if w.err == nil {
		w.err = ErrClosed
	}
	w.mu.Unlock()

	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		w.closeErr = fmt.Errorf("close recording: %w", err)
	}
	return w.closeErr
}

// Position returns the seq and hash of the last record written: after
// Close, of the end record.
func (w *Writer) Position() (seq uint64, lastHash string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.last
}

// Size returns the bytes of complete records in the file.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Seal returns what an index should keep to check the file later with
// Verify: after Close, it covers the whole file.
func (w *Writer) Seal() Seal {
	seq, last := w.Position()
	return Seal{Records: int(seq) + 1, LastHash: last}
}

// NewSample returns an empty result sample bounded by the recording's
// result cap.
func (w *Writer) NewSample() *Sample { return newSample(w.resultCap) }

// checkTime refuses times RFC 3339 cannot express, which no reader would
// accept.
func checkTime(t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("clock says year %d", y)
	}
	return nil
}

// marshalData encodes a record's data. HTML escaping is off so that
// statements read as sent ("a < b", not "a \u003c b").
func marshalData(v any) ([]byte, error) {
	out, err := marshalValue(v)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0] != '{' {
		return nil, errors.New("data is not a JSON object")
	}
	return out, nil
}

// marshalValue is json.Marshal without HTML escaping.
func marshalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendLine appends the canonical encoding of a record, without the
// newline. It is the only encoder of lines: readers rebuild each line with
// it and insist on byte equality, so that every record has exactly one
// valid form.
func appendLine(b []byte, seq uint64, t time.Time, kind Kind, prev string, data []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":"`...)
	b = append(b, kind...)
	b = append(b, `","prev":"`...)
	b = append(b, prev...)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

package record

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"

	"filippo.io/age"
)

// LineError locates an error in a recording.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Read decodes the recording in r and calls fn with each record, in file
// order, until the end of r or until fn returns an error, which Read then
// returns as is. Records passed to fn stay valid after fn returns.
//
// If the recording is encrypted, id (when not nil) must open its file key,
// and then each record's data is decrypted; a record that does not
// decrypt stops Read with an error wrapping ErrDecrypt. With a nil id,
// encrypted records come with their envelope as Data and Encrypted set.
//
// Read decodes; it does not check the hash chain (that is Verify's job).
// It ignores an unterminated final line, which a crash in the middle of
// a write leaves and which was never acknowledged. Errors are *LineError
// and say where; a line longer than MaxRecordSize is refused, wrapping
// ErrTooLarge, without reading more of it than that.
func Read(r io.Reader, id age.Identity, fn func(Record) error) error {
	lr := newLineReader(r)
	var (
		encrypted bool
		aead      cipher.AEAD
	)
	for {
		b, torn, err := lr.next()
		if err == io.EOF || torn {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := parseLine(b)
		if err != nil {
			return &LineError{Line: lr.line, Err: fmt.Errorf("not a record: %w", err)}
		}
		if lr.line == 1 {
			h, err := parseHeader(rec)
			if err != nil {
				return &LineError{Line: lr.line, Err: err}
			}
			encrypted = h.Recorder.Encrypted
			if encrypted && id != nil {
				if aead, err = openFileKey(h.Recorder.WrappedKey, id); err != nil {
					return &LineError{Line: lr.line, Err: err}
				}
				if h.Private != nil {
					if rec.Data, err = openHeader(aead, h); err != nil {
						return &LineError{Line: lr.line, Err: err}
					}
				}
			}
		} else if encrypted && rec.Kind != KindHeader && rec.Kind != KindEnd {
			if aead == nil {
				if _, err := parseEnvelope(rec.Data); err != nil {
					return &LineError{Line: lr.line, Err: fmt.Errorf("record %d: %w", rec.Seq, err)}
				}
				rec.Encrypted = true
			} else {
				pt, err := open(aead, rec.Seq, rec.Kind, rec.Data)
				if err != nil {
					return &LineError{Line: lr.line, Err: fmt.Errorf("record %d: %w", rec.Seq, err)}
				}
				if !json.Valid(pt) || pt[0] != '{' {
					return &LineError{Line: lr.line, Err: fmt.Errorf("record %d: decrypted data is not a JSON object", rec.Seq)}
				}
				rec.Data = pt
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// errStop ends a Read early on behalf of an iterator's consumer.
var errStop = errors.New("stop")

// Records returns the records of r as an iterator, as Read decodes them.
// A decoding error is yielded last, with a zero Record.
func Records(r io.Reader, id age.Identity) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		err := Read(r, id, func(rec Record) error {
			if !yield(rec, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(Record{}, err)
		}
	}
}

// openHeader returns the header data with its private fields decrypted
// and back in their places.
func openHeader(aead cipher.AEAD, h Header) ([]byte, error) {
	pt, err := open(aead, 0, KindHeader, h.Private)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var p private
	if err := json.Unmarshal(pt, &p); err != nil {
		return nil, fmt.Errorf("header: private fields: %w", err)
	}
	h.Identity.Claims, h.Process.Cmdline, h.Process.Parents, h.Private = p.Claims, p.Cmdline, p.Parents, nil
	return json.Marshal(h)
}

// parseHeader checks that rec is a header this package can read.
func parseHeader(rec Record) (Header, error) {
	var h Header
	if rec.Kind != KindHeader {
		return h, fmt.Errorf("record %d is %q, want a header: not the start of a recording", rec.Seq, rec.Kind)
	}
	if err := json.Unmarshal(rec.Data, &h); err != nil {
		return h, fmt.Errorf("header: %w", err)
	}
	if h.Version != FormatVersion {
		return h, fmt.Errorf("header: format version %d, want %d", h.Version, FormatVersion)
	}
	return h, nil
}

// line is the JSON shape of a record.
type line struct {
	Seq  uint64          `json:"seq"`
	T    string          `json:"t"`
	Kind Kind            `json:"kind"`
	Prev string          `json:"prev"`
	Data json.RawMessage `json:"data"`
}

// parseLine decodes one line (without its newline). Only the canonical
// encoding is accepted: the line must be byte for byte what appendLine
// makes of its fields, so there are no unknown, repeated, reordered or
// differently-cased fields and no second way to write the same record.
func parseLine(b []byte) (Record, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Record{}, err
	}
	if !l.Kind.valid() {
		return Record{}, fmt.Errorf("unknown kind %s", quote(string(l.Kind)))
	}
	if !isHash(l.Prev) {
		return Record{}, fmt.Errorf("prev %s is not a hex SHA-256", quote(l.Prev))
	}
	t, err := time.Parse(time.RFC3339Nano, l.T)
	if err != nil {
		return Record{}, fmt.Errorf("time %s is not RFC 3339", quote(l.T))
	}
	if len(l.Data) == 0 || l.Data[0] != '{' {
		return Record{}, errors.New("data is not a JSON object")
	}
	if !bytes.Equal(appendLine(make([]byte, 0, len(b)), l.Seq, t, l.Kind, l.Prev, l.Data), b) {
		return Record{}, errors.New("not in canonical form")
	}
	return Record{
		Seq:  l.Seq,
		Time: t.UTC(),
		Kind: l.Kind,
		Prev: l.Prev,
		Data: l.Data,
		Hash: hashOf(b),
	}, nil
}

// hashOf is the hash of a line as it appears in prev: lowercase hex
// SHA-256.
func hashOf(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// quote quotes a value from the input for an error message, clipped:
// messages are kept, and a line may be a MiB long.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lineReader splits a recording into lines of at most MaxRecordSize
// bytes, newline included, holding at most that much in memory.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	line int // number of the line last returned, 1-based
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline; the slice is valid
// until the following call. An unterminated final line is returned with
// torn set. At the end of the input next returns io.EOF; an over-long
// line is a *LineError wrapping ErrTooLarge, read errors are *LineError.
func (lr *lineReader) next() (b []byte, torn bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		if len(lr.buf)+len(frag) > MaxRecordSize {
			return nil, false, &LineError{Line: lr.line + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, MaxRecordSize)}
		}
		lr.buf = append(lr.buf, frag...)
		switch err {
		case nil:
			lr.line++
			return lr.buf[:len(lr.buf)-1], false, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			lr.line++
			return lr.buf, true, nil
		default:
			return nil, false, &LineError{Line: lr.line + 1, Err: fmt.Errorf("read: %w", err)}
		}
	}
}

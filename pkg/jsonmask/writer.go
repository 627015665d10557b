package jsonmask

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// Defaults for Options.
const (
	// DefaultMaxToken is large enough for any realistic field (a
	// certificate bundle, an embedded document) and small enough that a
	// few concurrent responses cannot exhaust memory.
	DefaultMaxToken = 1 << 20
	// DefaultMaxDepth is what encoding/json and the Kubernetes API
	// server's decoder allow.
	DefaultMaxDepth = 10000
)

// Options tune a Writer. The zero value is ready to use.
type Options struct {
	// MaxToken bounds the bytes of one string or number (as written, with
	// escapes) that the Writer holds to mask it; longer values a rule
	// could cover are replaced whole (see the package documentation).
	// Zero or less means DefaultMaxToken.
	MaxToken int
	// MaxDepth bounds the nesting of objects and arrays; deeper input
	// stops the Writer with a *DepthError. Zero or less means
	// DefaultMaxDepth.
	MaxDepth int
	// Stats, if not nil, counts masked values per path rule and matches
	// per detector. The Writer updates it from Write and Close only, so
	// the caller reads it after Close or between calls.
	Stats *mask.Stats
}

// SyntaxError reports input that is not JSON.
type SyntaxError struct {
	Offset int64 // input bytes before the offending one
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("json at byte %d: %s", e.Offset, e.Msg)
}

// DepthError reports nesting beyond Options.MaxDepth.
type DepthError struct {
	Offset int64 // input bytes before the '{' or '[' one level too deep
	Limit  int
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("json at byte %d: nesting exceeds the limit of %d", e.Offset, e.Limit)
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("jsonmask: write after close")

const (
	// outBuf is how much output a Writer gathers before passing it on;
	// longer runs of unchanged input go to dst directly.
	outBuf = 32 << 10
	// keyLimit is the longest key, as written, kept to follow paths. An
	// escape takes at most six bytes per decoded byte, so a longer key
	// decodes to more than mask.MaxPathName bytes and matches only
	// wildcards: it is not kept, and longKey stands in for it.
	keyLimit = 6 * (mask.MaxPathName + 1)
	// keepScratch is the largest scratch buffer kept between tokens.
	keepScratch = 64 << 10
)

var longKey = make([]byte, mask.MaxPathName+1)

// oversize counts values replaced for their length when no path rule
// covers them, that is, values only detectors would have inspected.
var oversize = mask.Rule{Name: "jsonmask:oversize", Strategy: mask.Redact}

var (
	litTrue  = []byte("true")
	litFalse = []byte("false")
	litNull  = []byte("null")
)

// state says what the tokenizer expects next.
type state uint8

const (
	sTop      state = iota // between top-level values
	sValue                 // a value, after ':' or an array's ','
	sArrFirst              // a value or ']', after '['
	sObjFirst              // a key or '}', after '{'
	sObjKey                // a key, after an object's ','
	sColon                 // ':' after a key
	sAfter                 // ',' or the closing bracket, after a value in a container
	sStr                   // inside a string
	sEsc                   // after '\' in a string
	sHex                   // inside \uXXXX; hex digits still to come in Writer.hex
	sNeg                   // after a number's '-'
	sZero                  // after a number's leading 0
	sInt                   // in a number's integer digits
	sDot                   // after a number's '.'
	sFrac                  // in a number's fraction digits
	sE                     // after a number's 'e'
	sESign                 // after the exponent's sign
	sExp                   // in the exponent's digits
	sLit                   // inside true, false or null
)

// Writer masks the JSON written to it and writes the result to its
// destination. It is not safe for concurrent use.
type Writer struct {
	dst      io.Writer
	m        *mask.Masker
	st       *mask.Stats
	paths    *mask.PathWalker // nil without path rules
	detect   bool             // whether any detector is on
	maxToken int
	maxDepth int

	state state
	stack []byte // '{' or '[' per open container
	off   int64  // input bytes before the current Write's
	err   error  // sticky: bad input, or closed
	werr  error  // sticky: from dst

	// Positions in the current Write's input.
	mark int // unchanged input from mark on is still to be emitted
	ts   int // the current token's bytes start at ts

	// The token being read.
	key     bool      // the string is an object key
	holding bool      // the token is withheld until masked
	capture bool      // the token's bytes are collected in tok
	covered bool      // a path rule covers the value
	rule    mask.Rule // the covering rule
	tok     []byte    // collected bytes from earlier Writes
	tokLen  int       // bytes of the token so far, collected or not
	limit   int       // tok holds at most limit bytes
	hex     int       // hex digits still expected in \uXXXX
	lit     []byte    // the literal being read
	litPos  int       // its bytes read so far

	out     []byte // output not yet written to dst
	dec     []byte // a decoded string
	scratch []byte // a masked value
}

var _ io.WriteCloser = (*Writer)(nil)

// New returns a Writer masking with m onto dst. A nil m masks nothing:
// the Writer then only checks that its input is JSON. Close does not close
// dst.
func New(dst io.Writer, m *mask.Masker, opts Options) *Writer {
	if m == nil {
		m, _ = mask.New(nil, nil)
	}
	w := &Writer{
		dst:      dst,
		m:        m,
		st:       opts.Stats,
		detect:   m.Detects(),
		maxToken: opts.MaxToken,
		maxDepth: opts.MaxDepth,
	}
	if w.maxToken <= 0 {
		w.maxToken = DefaultMaxToken
	}
	if w.maxDepth <= 0 {
		w.maxDepth = DefaultMaxDepth
	}
	if m.HasPaths() {
		w.paths = m.PathWalker()
	}
	return w
}

// Write masks p, which continues the input of earlier Writes, and writes
// every token it completes to dst. Bad input, or an error from dst, stops
// the Writer: Write returns the error, and so does every later call.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	w.mark, w.ts = 0, 0
	i := w.scan(p, 0)
	if w.err != nil {
		// Pass on what came before the bad byte: a valid prefix.
		if !w.holding {
			w.emit(p[w.mark:i])
		}
		w.flush()
		return i, w.err
	}
	if w.capture {
		w.collect(p[w.ts:])
	}
	if !w.holding {
		w.emit(p[w.mark:])
	}
	w.mark, w.ts = 0, 0
	w.off += int64(len(p))
	w.flush()
	if w.werr != nil {
		return 0, w.werr
	}
	return len(p), nil
}

// Close checks that the input ended after a complete value and writes
// what is left. It does not close dst.
func (w *Writer) Close() error {
	if w.err == ErrClosed {
		return nil
	}
	if err := w.failed(); err != nil {
		return err
	}
	if len(w.stack) == 0 {
		switch w.state {
		case sZero, sInt, sFrac, sExp:
			// A top-level number ends with the input.
			if w.holding {
				w.maskNumber(w.take(nil))
			}
			w.endValue()
		}
	}
	if w.state != sTop {
		w.fail(0, "unexpected end of JSON input")
	}
	w.flush()
	if err := w.failed(); err != nil {
		return err
	}
	w.err = ErrClosed
	return nil
}

func (w *Writer) failed() error {
	if w.err != nil {
		return w.err
	}
	return w.werr
}

// scan consumes p from i on, until its end or an error, and returns where
// it stopped.
func (w *Writer) scan(p []byte, i int) int {
	for i < len(p) {
		if w.err != nil || w.werr != nil {
			return i
		}
		c := p[i]
		switch w.state {
		case sStr:
			if i = plainRun(p, i); i == len(p) {
				return i
			}
			switch p[i] {
			case '"':
				w.endString(p, i)
			case '\\':
				w.state = sEsc
			default:
				return w.fail(i, "invalid character %s in string literal", quoteChar(p[i]))
			}
			i++
			continue
		case sEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				w.state = sStr
			case 'u':
				w.state, w.hex = sHex, 4
			default:
				return w.fail(i, "invalid character %s in string escape code", quoteChar(c))
			}
			i++
			continue
		case sHex:
			if !isHex(c) {
				return w.fail(i, "invalid character %s in \\u hexadecimal character escape", quoteChar(c))
			}
			if w.hex--; w.hex == 0 {
				w.state = sStr
			}
			i++
			continue
		case sLit:
			if c != w.lit[w.litPos] {
				return w.fail(i, "invalid character %s in literal %s (expecting %s)", quoteChar(c), w.lit, quoteChar(w.lit[w.litPos]))
			}
			if w.litPos++; w.litPos == len(w.lit) {
				w.endLiteral(i)
			}
			i++
			continue
		case sNeg:
			switch {
			case c == '0':
				w.state = sZero
			case isDigit(c):
				w.state = sInt
			default:
				return w.fail(i, "invalid character %s in numeric literal", quoteChar(c))
			}
			i++
			continue
		case sInt, sFrac, sExp:
			for i < len(p) && isDigit(p[i]) {
				i++
			}
			if i == len(p) {
				return i
			}
			c = p[i]
			fallthrough
		case sZero:
			switch {
			case c == '.' && (w.state == sZero || w.state == sInt):
				w.state = sDot
			case (c == 'e' || c == 'E') && w.state != sExp:
				w.state = sE
			default:
				// The number ended before c, which is looked at again.
				w.endNumber(p, i)
				continue
			}
			i++
			continue
		case sDot:
			if !isDigit(c) {
				return w.fail(i, "invalid character %s after decimal point in numeric literal", quoteChar(c))
			}
			w.state = sFrac
			i++
			continue
		case sE:
			if c == '+' || c == '-' {
				w.state = sESign
				i++
				continue
			}
			fallthrough
		case sESign:
			if !isDigit(c) {
				return w.fail(i, "invalid character %s in exponent of numeric literal", quoteChar(c))
			}
			w.state = sExp
			i++
			continue
		}

		// Between tokens.
		if space[c] {
			for i++; i < len(p) && space[p[i]]; i++ {
			}
			continue
		}
		switch w.state {
		case sTop, sValue:
			i = w.beginValue(p, i)
			continue
		case sArrFirst:
			if c == ']' {
				i = w.closeContainer(i)
			} else {
				i = w.beginValue(p, i)
			}
			continue
		case sObjFirst:
			if c == '}' {
				i = w.closeContainer(i)
				continue
			}
			fallthrough
		case sObjKey:
			if c != '"' {
				return w.fail(i, "invalid character %s looking for beginning of object key string", quoteChar(c))
			}
			w.beginKey(i)
			i++
			continue
		case sColon:
			if c != ':' {
				return w.fail(i, "invalid character %s after object key", quoteChar(c))
			}
			w.state = sValue
			i++
			continue
		}
		// sAfter: the stack is not empty, or the state would be sTop.
		top := w.stack[len(w.stack)-1]
		switch {
		case c == ',' && top == '{':
			w.state = sObjKey
			i++
		case c == ',':
			w.state = sValue
			i++
		case c == '}' && top == '{', c == ']' && top == '[':
			i = w.closeContainer(i)
		case top == '{':
			return w.fail(i, "invalid character %s after object key:value pair", quoteChar(c))
		default:
			return w.fail(i, "invalid character %s after array element", quoteChar(c))
		}
	}
	return i
}

// beginValue starts the value whose first byte is p[i].
func (w *Writer) beginValue(p []byte, i int) int {
	c := p[i]
	n := len(w.stack)
	if w.paths != nil {
		if n > 0 && w.stack[n-1] == '[' {
			w.paths.EnterElement()
		}
		w.rule, w.covered = w.paths.Rule()
	}
	inspect := w.covered || w.detect
	switch c {
	case '"':
		w.state, w.key = sStr, false
		if inspect {
			w.hold(p, i, i+1)
		}
		return i + 1
	case '{', '[':
		if n >= w.maxDepth {
			w.err = &DepthError{Offset: w.off + int64(i), Limit: w.maxDepth}
			return i
		}
		w.stack = append(w.stack, c)
		w.state = sObjFirst
		if c == '[' {
			w.state = sArrFirst
		}
		return i + 1
	case 't':
		w.lit = litTrue
	case 'f':
		w.lit = litFalse
	case 'n':
		w.lit = litNull
	default:
		switch {
		case c == '-':
			w.state = sNeg
		case c == '0':
			w.state = sZero
		case isDigit(c):
			w.state = sInt
		default:
			return w.fail(i, "invalid character %s looking for beginning of value", quoteChar(c))
		}
		if inspect {
			w.hold(p, i, i)
		}
		return i + 1
	}
	w.state, w.litPos = sLit, 1
	if w.covered && c != 'n' {
		w.emit(p[w.mark:i])
		w.holding = true
	}
	return i + 1
}

// hold withholds the value starting at p[at] from the output and collects
// its bytes from p[from] on, up to MaxToken.
func (w *Writer) hold(p []byte, at, from int) {
	w.emit(p[w.mark:at])
	w.holding = true
	w.startCapture(from, w.maxToken)
}

func (w *Writer) startCapture(from, limit int) {
	w.capture = true
	w.ts = from
	w.tok = w.tok[:0]
	w.tokLen = 0
	w.limit = limit
}

func (w *Writer) beginKey(i int) {
	w.state, w.key = sStr, true
	if w.paths != nil && w.paths.NeedsNames() {
		w.startCapture(i+1, keyLimit)
	}
}

// collect keeps the part of the token in this Write, if it fits.
func (w *Writer) collect(b []byte) {
	w.tokLen += len(b)
	if w.tokLen <= w.limit {
		w.tok = append(w.tok, b...)
	}
}

// take returns the whole token, ending with b; the caller checks tokLen
// against limit before using it. It stops collecting.
func (w *Writer) take(b []byte) []byte {
	w.capture = false
	if len(w.tok) == 0 {
		w.tokLen += len(b)
		return b
	}
	w.collect(b)
	return w.tok
}

// endString ends the string whose closing quote is p[i].
func (w *Writer) endString(p []byte, i int) {
	if w.key {
		w.state = sColon
		if w.paths == nil {
			return
		}
		if !w.capture {
			w.paths.EnterMember(nil)
			return
		}
		raw := w.take(p[w.ts:i])
		name := longKey
		if w.tokLen <= keyLimit {
			name = raw
			if bytes.IndexByte(raw, '\\') >= 0 {
				w.dec = decode(w.dec[:0], raw)
				name = w.dec
			}
		}
		w.paths.EnterMember(name)
		return
	}
	if w.holding {
		w.holding = false
		w.maskString(w.take(p[w.ts:i]))
		w.mark = i + 1
	}
	w.endValue()
}

// endNumber ends the number before p[i].
func (w *Writer) endNumber(p []byte, i int) {
	if w.holding {
		w.maskNumber(w.take(p[w.ts:i]))
		w.mark = i
	}
	w.endValue()
}

// endLiteral ends the literal whose last byte is at i.
func (w *Writer) endLiteral(i int) {
	if w.holding {
		w.apply(w.rule, w.lit)
		w.mark = i + 1
	}
	w.endValue()
}

func (w *Writer) closeContainer(i int) int {
	w.stack = w.stack[:len(w.stack)-1]
	w.endValue()
	return i + 1
}

// endValue follows a complete value.
func (w *Writer) endValue() {
	w.holding = false
	if len(w.stack) == 0 {
		w.state = sTop
		return
	}
	if w.paths != nil {
		w.paths.Leave()
	}
	w.state = sAfter
}

// maskString masks the string whose contents, as written, are raw.
func (w *Writer) maskString(raw []byte) {
	defer w.release()
	if w.tokLen > w.maxToken {
		w.replaceOversize()
		return
	}
	v := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		w.dec = decode(w.dec[:0], raw)
		v = w.dec
	}
	if w.covered {
		w.apply(w.rule, v)
		return
	}
	out, hits := w.m.Text(w.scratch[:0], v, w.st)
	if hits == 0 {
		w.out = append(w.out, '"')
		w.out = append(w.out, raw...)
		w.out = append(w.out, '"')
	} else {
		w.out = appendString(w.out, out)
		w.scratch = out[:0]
	}
	w.flushFull()
}

// maskNumber masks the number raw.
func (w *Writer) maskNumber(raw []byte) {
	defer w.release()
	if w.tokLen > w.maxToken {
		w.replaceOversize()
		return
	}
	if w.covered {
		w.apply(w.rule, raw)
		return
	}
	out, hits := w.m.Text(w.scratch[:0], raw, w.st)
	if hits == 0 {
		w.out = append(w.out, raw...)
	} else {
		w.out = appendString(w.out, out)
		w.scratch = out[:0]
	}
	w.flushFull()
}

// replaceOversize replaces a value too long to inspect.
func (w *Writer) replaceOversize() {
	r := oversize
	if w.covered {
		r = w.rule
		if r.Strategy != mask.Null {
			r.Strategy = mask.Redact
		}
	}
	w.apply(r, nil)
}

// apply masks the whole value v with r.
func (w *Writer) apply(r mask.Rule, v []byte) {
	out, null := w.m.Value(w.scratch[:0], v, r, w.st)
	if null {
		w.out = append(w.out, "null"...)
	} else {
		w.out = appendString(w.out, out)
		w.scratch = out[:0]
	}
	w.flushFull()
}

// release drops buffers that a long token grew, so that one long value
// does not pin memory for the rest of the stream.
func (w *Writer) release() {
	if cap(w.tok) > keepScratch {
		w.tok = nil
	}
	if cap(w.dec) > keepScratch {
		w.dec = nil
	}
	if cap(w.scratch) > keepScratch {
		w.scratch = nil
	}
}

// emit queues unchanged input for dst.
func (w *Writer) emit(b []byte) {
	if len(w.out)+len(b) <= outBuf {
		w.out = append(w.out, b...)
		return
	}
	w.flush()
	if len(b) >= outBuf {
		w.write(b)
		return
	}
	w.out = append(w.out, b...)
}

func (w *Writer) flushFull() {
	if len(w.out) >= outBuf {
		w.flush()
	}
}

func (w *Writer) flush() {
	if len(w.out) > 0 {
		w.write(w.out)
		w.out = w.out[:0]
	}
	if cap(w.out) > 4*outBuf {
		w.out = nil
	}
}

func (w *Writer) write(b []byte) {
	if w.werr != nil {
		return
	}
	if _, err := w.dst.Write(b); err != nil {
		w.werr = err
	}
}

func (w *Writer) fail(i int, format string, args ...any) int {
	w.err = &SyntaxError{Offset: w.off + int64(i), Msg: fmt.Sprintf(format, args...)}
	return i
}

// quoteChar formats c for an error message.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c >= 0x20 && c < 0x7f:
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

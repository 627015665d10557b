package remotecmd

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// maxControlPayload is RFC 6455 §5.5: control frames carry at most 125
// bytes and are never fragmented.
const maxControlPayload = 125

// scratchSize bounds the pieces that unmasked or decoded data is handed on
// in.
const scratchSize = 32 << 10

// messageSink receives the data messages of one direction, unmasked and
// with control frames removed.
type messageSink interface {
	start(op byte) error
	data(b []byte) error
	end() error
}

// wsReader follows one direction of a WebSocket connection frame by frame.
// It holds at most a frame header and one scratch buffer: payloads pass
// through in the pieces they arrive in.
type wsReader struct {
	sink messageSink
	off  int64

	hdr  [14]byte // frame header: 2 bytes, up to 8 of length, 4 of mask key
	hn   int      // header bytes held
	need int      // header bytes needed, once known

	inFrame bool // reading a payload
	op      byte
	fin     bool
	masked  bool
	key     [4]byte
	keyPos  int
	left    uint64 // payload bytes still to come

	inMessage bool // a data message is open
	closed    bool // a close frame was seen: the peer reads no further

	scratch []byte
}

func newWSReader(sink messageSink) *wsReader {
	return &wsReader{sink: sink, need: 2}
}

func (w *wsReader) offset() int64 { return w.off }

func (w *wsReader) feed(p []byte) error {
	for len(p) > 0 {
		if w.closed {
			// RFC 6455 §5.5.1: nothing may follow a close frame, and the
			// peer that read it stops reading.
			w.off += int64(len(p))
			return nil
		}
		if !w.inFrame {
			n := copy(w.hdr[w.hn:w.need], p)
			w.hn += n
			w.off += int64(n)
			p = p[n:]
			if w.hn < w.need {
				continue
			}
			if w.hn == 2 {
				w.need = 2 + extLen(w.hdr[1]&0x7f)
				if w.hdr[1]&0x80 != 0 {
					w.need += 4
				}
				if w.hn < w.need {
					continue
				}
			}
			if err := w.beginFrame(); err != nil {
				return err
			}
			continue
		}
		n := len(p)
		if uint64(n) > w.left {
			n = int(w.left)
		}
		if err := w.payload(p[:n]); err != nil {
			return err
		}
		w.left -= uint64(n)
		w.off += int64(n)
		p = p[n:]
		if w.left == 0 {
			if err := w.endFrame(); err != nil {
				return err
			}
		}
	}
	return nil
}

// extLen is the size of the extended payload length for a 7-bit length
// (RFC 6455 §5.2).
func extLen(len7 byte) int {
	switch len7 {
	case 126:
		return 2
	case 127:
		return 8
	}
	return 0
}

func (w *wsReader) beginFrame() error {
	b0, b1 := w.hdr[0], w.hdr[1]
	w.fin = b0&0x80 != 0
	w.op = b0 & 0x0f
	w.masked = b1&0x80 != 0
	h := w.hdr[2:w.hn]
	switch len7 := b1 & 0x7f; len7 {
	case 126:
		w.left = uint64(binary.BigEndian.Uint16(h))
		h = h[2:]
	case 127:
		w.left = binary.BigEndian.Uint64(h)
		h = h[8:]
		if w.left>>63 != 0 {
			return errors.New("websocket: 64-bit payload length with the top bit set")
		}
	default:
		w.left = uint64(len7)
	}
	if w.masked {
		copy(w.key[:], h)
		w.keyPos = 0
	}
	w.hn, w.need = 0, 2

	// No extension is negotiated on these connections (kubelet's
	// golang.org/x/net/websocket server supports none), so RSV bits are a
	// protocol error (RFC 6455 §5.2).
	if rsv := b0 & 0x70; rsv != 0 {
		return fmt.Errorf("websocket: reserved bits %#x set without an extension", rsv)
	}
	switch w.op {
	case opClose, opPing, opPong:
		if !w.fin {
			return errors.New("websocket: fragmented control frame")
		}
		if w.left > maxControlPayload {
			return fmt.Errorf("websocket: control frame of %d bytes: %w (%d)", w.left, ErrLimit, maxControlPayload)
		}
	case opContinuation:
		if !w.inMessage {
			return errors.New("websocket: continuation frame outside a message")
		}
	case opText, opBinary:
		if w.inMessage {
			return errors.New("websocket: new message inside a fragmented message")
		}
		w.inMessage = true
		if err := w.sink.start(w.op); err != nil {
			return err
		}
	default:
		return fmt.Errorf("websocket: reserved opcode %#x", w.op)
	}
	w.inFrame = true
	if w.left == 0 {
		return w.endFrame()
	}
	return nil
}

func (w *wsReader) payload(b []byte) error {
	if w.op >= opClose {
		return nil // only a close frame's arrival matters, not its payload
	}
	if !w.masked {
		return w.sink.data(b)
	}
	if w.scratch == nil {
		w.scratch = make([]byte, scratchSize)
	}
	for len(b) > 0 {
		n := min(len(b), len(w.scratch))
		w.keyPos = unmask(w.scratch[:n], b[:n], w.key, w.keyPos)
		if err := w.sink.data(w.scratch[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (w *wsReader) endFrame() error {
	w.inFrame = false
	switch w.op {
	case opClose:
		w.closed = true
		return nil
	case opPing, opPong:
		return nil
	}
	if !w.fin {
		return nil
	}
	w.inMessage = false
	return w.sink.end()
}

// unmask XORs src with the masking key starting at key[pos] into dst
// (RFC 6455 §5.3) and returns the key position after it. dst and src may
// be the same slice.
func unmask(dst, src []byte, key [4]byte, pos int) int {
	k := [4]byte{key[pos&3], key[(pos+1)&3], key[(pos+2)&3], key[(pos+3)&3]}
	k32 := uint64(binary.LittleEndian.Uint32(k[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k64)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ k[i&3]
	}
	return (pos + len(src)) & 3
}

// channelSink reads the Kubernetes channel protocol from one direction's
// messages: the first byte of a message is its channel (an ASCII digit in
// the base64 variants), the rest is the channel's data (base64-encoded in
// those variants). Kubelet's wsstream.Conn.handle is the reference.
type channelSink struct {
	sess       *session
	fromClient bool

	started bool    // the channel byte was read
	st      *stream // the message's channel; nil to ignore it
	signal  bool    // the message is a v5 close signal
	sigArg  []byte  // a close signal's payload (one byte when valid)
	b64     base64Decoder
	out     []byte // decoded base64
}

func newChannelSink(sess *session, fromClient bool) *channelSink {
	return &channelSink{sess: sess, fromClient: fromClient}
}

func (c *channelSink) start(op byte) error {
	// The server reads text and binary messages alike and decodes by the
	// negotiated subprotocol, not the opcode.
	c.started, c.st, c.signal, c.sigArg = false, nil, false, c.sigArg[:0]
	c.b64.reset()
	return nil
}

// streamCloseSignal is the v5 channel byte that closes the channel named
// by the following byte.
const streamCloseSignal = 255

func (c *channelSink) data(b []byte) error {
	if !c.started {
		if len(b) == 0 {
			return nil
		}
		ch := b[0]
		b = b[1:]
		c.started = true
		switch {
		case c.sess.w.version >= 5 && ch == streamCloseSignal:
			c.signal = true
		case c.sess.w.base64:
			c.st = c.sess.channel(ch - '0')
		default:
			c.st = c.sess.channel(ch)
		}
	}
	if c.signal {
		if len(c.sigArg)+len(b) > 1 {
			return errors.New("websocket: close signal names more than one channel")
		}
		c.sigArg = append(c.sigArg, b...)
		return nil
	}
	if c.st == nil || c.st.kind == kindNone {
		return nil
	}
	if !c.sess.w.base64 {
		c.sess.data(c.st, c.fromClient, b)
		return nil
	}
	for len(b) > 0 {
		n := min(len(b), scratchSize)
		var err error
		c.out, err = c.b64.decode(c.out[:0], b[:n])
		if err != nil {
			return err
		}
		c.sess.data(c.st, c.fromClient, c.out)
		b = b[n:]
	}
	return nil
}

func (c *channelSink) end() error {
	switch {
	case !c.started:
		return nil // an empty message: the server skips it
	case c.signal:
		if len(c.sigArg) != 1 {
			return errors.New("websocket: close signal names no channel")
		}
		if !c.sess.w.portForward && int(c.sigArg[0]) >= len(execChannels) {
			// The server stops reading the connection here.
			return fmt.Errorf("websocket: close signal for unknown channel %d", c.sigArg[0])
		}
		c.sess.finish(c.sess.channel(c.sigArg[0]), c.fromClient)
		return nil
	case c.st == nil || c.st.kind == kindNone:
		return nil
	}
	if c.sess.w.base64 {
		if err := c.b64.finish(); err != nil {
			return err
		}
	}
	c.sess.boundary(c.st, c.fromClient)
	return nil
}

// base64Decoder decodes a message's base64 as it arrives. The server
// decodes each message whole with base64.StdEncoding.DecodeString, which
// skips CR and LF; an invalid message is dropped there but may already
// have been reported here, so it is a parse error.
type base64Decoder struct {
	in     []byte // input not yet decoded: less than a quantum between calls
	padded bool   // the last quantum had padding: nothing may follow
}

func (d *base64Decoder) reset() {
	d.in, d.padded = d.in[:0], false
}

// decode appends the decoding of src to dst.
func (d *base64Decoder) decode(dst, src []byte) ([]byte, error) {
	if bytes.ContainsAny(src, "\r\n") {
		for _, c := range src {
			if c != '\r' && c != '\n' {
				d.in = append(d.in, c)
			}
		}
	} else {
		d.in = append(d.in, src...)
	}
	if d.padded && len(d.in) > 0 {
		d.reset()
		return dst, errors.New("websocket: base64 data after padding")
	}
	whole := len(d.in) &^ 3
	if whole == 0 {
		return dst, nil
	}
	i := len(dst)
	dst = slices.Grow(dst, base64.StdEncoding.DecodedLen(whole))[:i+base64.StdEncoding.DecodedLen(whole)]
	n, err := base64.StdEncoding.Decode(dst[i:], d.in[:whole])
	if err != nil {
		d.reset()
		return dst[:i], fmt.Errorf("websocket: base64 message: %w", err)
	}
	d.padded = d.in[whole-1] == '='
	rest := copy(d.in, d.in[whole:])
	d.in = d.in[:rest]
	return dst[:i+n], nil
}

func (d *base64Decoder) finish() error {
	if len(d.in) != 0 {
		return fmt.Errorf("websocket: base64 message ends with %d stray bytes", len(d.in))
	}
	return nil
}

// tunnelSink hands the binary messages of client-go's SPDY-over-WebSocket
// tunnel (tools/portforward/tunneling_connection.go) to a SPDY reader as
// one byte stream; message boundaries carry no meaning.
type tunnelSink struct {
	spdy *spdyReader
}

func (t *tunnelSink) start(op byte) error {
	if op != opBinary {
		return errors.New("websocket: text message in a SPDY tunnel")
	}
	return nil
}

func (t *tunnelSink) data(b []byte) error { return t.spdy.feed(b) }

func (t *tunnelSink) end() error { return nil }

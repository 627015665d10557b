package remotecmd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SPDY/3.1 control frame types and flags (draft-mbelshe-httpbis-spdy-00
// §2.6, as spdystream implements them).
const (
	typeSynStream    = 1
	typeSynReply     = 2
	typeRstStream    = 3
	typeSettings     = 4
	typePing         = 6
	typeGoAway       = 7
	typeHeaders      = 8
	typeWindowUpdate = 9

	flagFin            = 0x01
	flagUnidirectional = 0x02
)

// spdyReader follows one direction of a SPDY connection frame by frame.
// DATA payloads pass through in the pieces they arrive in; control frames
// are read whole, up to MaxControlFrame.
type spdyReader struct {
	streams    *spdyStreams
	fromClient bool
	off        int64

	hdr [8]byte
	hn  int

	control bool   // the current frame is a control frame
	ctype   uint16 // its type
	flags   byte
	left    int    // payload bytes still to come
	ctl     []byte // control frame payload so far
	data    *spdyStream
	headers headerDecoder

	// nextID is the lowest stream ID this side may open next: spdystream
	// resets a SYN_STREAM whose ID is lower (validateStreamId).
	nextID uint32
}

func newSPDYReader(st *spdyStreams, fromClient bool) *spdyReader {
	return &spdyReader{streams: st, fromClient: fromClient}
}

func (r *spdyReader) offset() int64 { return r.off }

func (r *spdyReader) feed(p []byte) error {
	for len(p) > 0 {
		if r.hn < len(r.hdr) {
			n := copy(r.hdr[r.hn:], p)
			r.hn += n
			r.off += int64(n)
			p = p[n:]
			if r.hn == len(r.hdr) {
				if err := r.beginFrame(); err != nil {
					return err
				}
			}
			continue
		}
		n := min(len(p), r.left)
		if r.control {
			r.ctl = append(r.ctl, p[:n]...)
		} else if r.data != nil {
			r.streams.sess.data(r.data.st, r.fromClient, p[:n])
		}
		r.left -= n
		r.off += int64(n)
		p = p[n:]
		if r.left == 0 {
			if err := r.endFrame(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *spdyReader) beginFrame() error {
	word := binary.BigEndian.Uint32(r.hdr[0:4])
	r.flags = r.hdr[4]
	r.left = int(binary.BigEndian.Uint32(r.hdr[4:8]) & 0xffffff)
	r.control = word&0x80000000 != 0
	if r.control {
		// The version field is not checked: spdystream does not either.
		r.ctype = uint16(word)
		switch r.ctype {
		case typeSynStream, typeSynReply, typeRstStream, typeSettings, typePing, typeGoAway, typeHeaders, typeWindowUpdate:
		default:
			// spdystream fails the connection on a type it does not know.
			return fmt.Errorf("spdy: unknown control frame type %d", r.ctype)
		}
		if r.left > MaxControlFrame {
			return fmt.Errorf("spdy: control frame type %d of %d bytes: %w (%d)", r.ctype, r.left, ErrLimit, MaxControlFrame)
		}
		r.ctl = r.ctl[:0]
	} else {
		id := word & 0x7fffffff
		if id == 0 {
			return errors.New("spdy: DATA frame on stream 0")
		}
		r.data = r.streams.accepting(id, r.fromClient)
	}
	if r.left == 0 {
		return r.endFrame()
	}
	return nil
}

func (r *spdyReader) endFrame() error {
	r.hn = 0
	if !r.control {
		s := r.data
		r.data = nil
		if s == nil {
			return nil
		}
		r.streams.sess.boundary(s.st, r.fromClient)
		if r.flags&flagFin != 0 {
			r.streams.halfClose(s, r.fromClient)
		}
		return nil
	}
	b := r.ctl
	// Fixed-size frames must be exactly their size: spdystream reads the
	// fields and not the length, so anything else desynchronises it.
	switch r.ctype {
	case typeSynStream:
		if len(b) < 10 {
			return fmt.Errorf("spdy: SYN_STREAM of %d bytes", len(b))
		}
		return r.synStream(binary.BigEndian.Uint32(b)&0x7fffffff, b[10:])
	case typeSynReply, typeHeaders:
		if len(b) < 4 {
			return fmt.Errorf("spdy: control frame type %d of %d bytes", r.ctype, len(b))
		}
		if _, err := r.headers.decode(b[4:]); err != nil {
			return err
		}
		if r.flags&flagFin != 0 {
			if s := r.streams.m[binary.BigEndian.Uint32(b)&0x7fffffff]; s != nil {
				r.streams.halfClose(s, r.fromClient)
			}
		}
	case typeRstStream:
		if len(b) != 8 {
			return fmt.Errorf("spdy: RST_STREAM of %d bytes", len(b))
		}
		r.streams.reset(binary.BigEndian.Uint32(b) & 0x7fffffff)
	case typeSettings:
		if len(b) < 4 || uint64(len(b)) != 4+8*uint64(binary.BigEndian.Uint32(b)) {
			return fmt.Errorf("spdy: SETTINGS of %d bytes", len(b))
		}
	case typePing:
		if len(b) != 4 {
			return fmt.Errorf("spdy: PING of %d bytes", len(b))
		}
	case typeGoAway, typeWindowUpdate:
		if len(b) != 8 {
			return fmt.Errorf("spdy: control frame type %d of %d bytes", r.ctype, len(b))
		}
	}
	return nil
}

func (r *spdyReader) synStream(id uint32, block []byte) error {
	// The header block must be decoded even for a stream that is then
	// refused: the compression context spans the whole connection.
	h, err := r.headers.decode(block)
	if err != nil {
		return err
	}
	if id == 0 {
		return errors.New("spdy: SYN_STREAM for stream 0")
	}
	if id < r.nextID {
		return nil // refused with a reset by the peer
	}
	r.nextID = id + 2
	return r.streams.open(id, r.fromClient, r.flags, h)
}

// spdyStreams is the stream table both directions share.
type spdyStreams struct {
	sess *session
	m    map[uint32]*spdyStream
}

type spdyStream struct {
	id uint32
	st *stream
	// clientDone and serverDone say each side has finished sending.
	clientDone, serverDone bool
}

func newSPDYStreams(sess *session) *spdyStreams {
	return &spdyStreams{sess: sess, m: make(map[uint32]*spdyStream)}
}

func (t *spdyStreams) open(id uint32, fromClient bool, flags byte, h headerValues) error {
	if t.m[id] != nil {
		return nil
	}
	if len(t.m) >= MaxStreams {
		return fmt.Errorf("spdy: stream %d: %w (%d open streams)", id, ErrLimit, MaxStreams)
	}
	st := &stream{kind: t.kindOf(h.streamType)}
	if t.sess.w.portForward {
		st.port = portOf(h.port)
	}
	s := &spdyStream{id: id, st: st}
	t.m[id] = s
	// A unidirectional stream is closed towards its creator from the
	// start (spdystream marks it finished).
	if flags&flagUnidirectional != 0 {
		t.halfClose(s, !fromClient)
	}
	if flags&flagFin != 0 {
		t.halfClose(s, fromClient)
	}
	return nil
}

// kindOf maps the streamType header to what the server makes of the
// stream (kubelet's remotecommand and portforward httpstream.go).
func (t *spdyStreams) kindOf(typ string) streamKind {
	if t.sess.w.portForward {
		switch typ {
		case "data":
			return kindPortData
		case "error":
			return kindPortError
		}
		return kindNone
	}
	switch typ {
	case "stdin":
		return kindStdin
	case "stdout":
		return kindStdout
	case "stderr":
		return kindStderr
	case "error":
		return kindError
	case "resize":
		return kindResize
	}
	return kindNone
}

// accepting returns the stream a DATA frame from one side goes to, or nil
// when the receiver drops it: spdystream ignores DATA for unknown streams
// and after the sender's FIN.
func (t *spdyStreams) accepting(id uint32, fromClient bool) *spdyStream {
	s := t.m[id]
	if s == nil || (fromClient && s.clientDone) || (!fromClient && s.serverDone) {
		return nil
	}
	return s
}

func (t *spdyStreams) halfClose(s *spdyStream, fromClient bool) {
	done := &s.serverDone
	if fromClient {
		done = &s.clientDone
	}
	if *done {
		return
	}
	*done = true
	t.sess.finish(s.st, fromClient)
	if s.clientDone && s.serverDone {
		delete(t.m, s.id)
	}
}

func (t *spdyStreams) reset(id uint32) {
	s := t.m[id]
	if s == nil {
		return
	}
	t.halfClose(s, true)
	t.halfClose(s, false)
	delete(t.m, id)
}

package remotecmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// session knows what the Kubernetes streams of one connection mean,
// whichever framing carried their bytes. The framings call data for each
// piece of a stream, boundary at the end of each message or frame, and
// finish when one side ends the stream.
type session struct {
	w    wire
	send func(Event)
	// chans are the WebSocket channels, made on first use.
	chans [256]*stream
}

func newSession(w wire, send func(Event)) *session {
	return &session{w: w, send: send}
}

type streamKind uint8

const (
	kindNone streamKind = iota // unknown to the server: ignored
	kindStdin
	kindStdout
	kindStderr
	kindError
	kindResize
	kindPortData
	kindPortError
)

// stream is one Kubernetes stream: a WebSocket channel or a SPDY stream.
type stream struct {
	kind streamKind
	port int
	// portLeft counts the bytes of the little-endian port number still to
	// come from the server: WebSocket port forwarding names each channel's
	// port in its first two bytes.
	portLeft int
	// status collects an error stream's message, at most MaxStatus bytes;
	// cut says bytes past that were dropped.
	status     []byte
	statusScan jsonScan
	cut        bool
	// resize holds an incomplete resize message; resizeDead is set once
	// one failed to decode, after which the server reads no more.
	resize     []byte
	resizeScan jsonScan
	resizeDead bool
}

// execChannels are the WebSocket channels of exec and attach, by number
// (kubelet's remotecommand/websocket.go); the server ignores others.
var execChannels = [...]streamKind{kindStdin, kindStdout, kindStderr, kindError, kindResize}

// channel returns WebSocket channel c. Port forwarding has two channels
// per port, data and error (kubelet's portforward/websocket.go).
func (s *session) channel(c byte) *stream {
	if st := s.chans[c]; st != nil {
		return st
	}
	st := &stream{}
	switch {
	case s.w.portForward && c%2 == 0:
		st.kind, st.portLeft = kindPortData, 2
	case s.w.portForward:
		st.kind, st.portLeft = kindPortError, 2
	case int(c) < len(execChannels):
		st.kind = execChannels[c]
	}
	s.chans[c] = st
	return st
}

// dataFrom returns the event kind of the data one side sends on a stream
// of kind k. ok is false when the far end does not take that side's bytes
// as data: stdout from the client or stdin from the server are dropped.
func (k streamKind) dataFrom(fromClient bool) (kind EventKind, ok bool) {
	switch {
	case k == kindStdin && fromClient:
		return Stdin, true
	case k == kindStdout && !fromClient:
		return Stdout, true
	case k == kindStderr && !fromClient:
		return Stderr, true
	case k == kindPortData:
		return PortData, true
	}
	return 0, false
}

// data handles bytes of st sent by one side.
func (s *session) data(st *stream, fromClient bool, b []byte) {
	if st.portLeft > 0 && !fromClient {
		for st.portLeft > 0 && len(b) > 0 {
			st.portLeft--
			st.port |= int(b[0]) << (8 * (1 - st.portLeft))
			b = b[1:]
		}
	}
	if len(b) == 0 {
		return
	}
	if kind, ok := st.kind.dataFrom(fromClient); ok {
		s.send(Event{Kind: kind, FromClient: fromClient, Data: b, Port: st.port})
		return
	}
	switch {
	case (st.kind == kindError || st.kind == kindPortError) && !fromClient:
		st.addStatus(b)
	case st.kind == kindResize && fromClient:
		s.resize(st, b)
	}
}

// boundary marks the end of a WebSocket message or SPDY DATA frame on st.
// Status messages are reported once whole: each one the server writes is
// a single message or frame, but a Status is only taken once it parses.
func (s *session) boundary(st *stream, fromClient bool) {
	if fromClient || len(st.status) == 0 {
		return
	}
	if s.statusJSON(st) && !st.cut {
		j := &st.statusScan
		if j.first == 0 || j.first == '{' && !j.atTop() {
			return // no Status yet, or not all of it
		}
	}
	s.flushStatus(st)
}

// finish handles the end of one side of st: a SPDY FIN or reset, or a
// WebSocket v5 close signal.
func (s *session) finish(st *stream, fromClient bool) {
	if kind, ok := st.kind.dataFrom(fromClient); ok {
		s.send(Event{Kind: Close, FromClient: fromClient, Stream: kind, Port: st.port})
	}
	if !fromClient && len(st.status) > 0 {
		s.flushStatus(st)
	}
}

func (s *session) statusJSON(st *stream) bool {
	return st.kind == kindError && s.w.version >= 4 && !s.w.portForward
}

func (st *stream) addStatus(b []byte) {
	room := MaxStatus - len(st.status)
	if len(b) > room {
		b, st.cut = b[:room], true
	}
	st.status = append(st.status, b...)
	st.statusScan.scan(b)
}

func (s *session) flushStatus(st *stream) {
	msg := st.status
	st.status, st.cut, st.statusScan = st.status[:0], false, jsonScan{}
	if s.statusJSON(st) {
		if e, ok := parseStatus(msg); ok {
			s.send(e)
			return
		}
	}
	s.send(Event{Kind: Error, Message: string(msg), Port: st.port})
}

// status is the part of a metav1.Status that carries an exec's result
// (k8s.io/apimachinery/pkg/apis/meta/v1, types.go).
type status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details *struct {
		Causes []struct {
			Type    string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// parseStatus reads a v4 error-stream Status the way client-go's v4 error
// decoder does: Success is exit 0, Failure with reason NonZeroExitCode and
// an ExitCode cause is that exit code (0–255), anything else is an error
// with the status message. ok is false when msg is no Status at all.
func parseStatus(msg []byte) (e Event, ok bool) {
	var st status
	if err := json.Unmarshal(msg, &st); err != nil || st.Status == "" {
		return Event{}, false
	}
	switch {
	case st.Status == "Success":
		return Event{Kind: Exit, ExitCode: 0}, true
	case st.Status == "Failure" && st.Reason == "NonZeroExitCode" && st.Details != nil:
		for _, c := range st.Details.Causes {
			if c.Type != "ExitCode" {
				continue
			}
			code, err := strconv.ParseUint(c.Message, 10, 8)
			if err != nil {
				return Event{Kind: Error, Message: "invalid exit code " + strconv.Quote(c.Message) + ": " + st.Message}, true
			}
			return Event{Kind: Exit, ExitCode: int(code), Message: st.Message}, true
		}
	}
	m := st.Message
	if m == "" {
		m = string(msg)
	}
	return Event{Kind: Error, Message: m}, true
}

// terminalSize is remotecommand.TerminalSize: the server decodes the
// resize stream as a sequence of these with a json.Decoder and stops at
// the first error (kubelet's remotecommand/resize.go).
type terminalSize struct {
	Width  uint16
	Height uint16
}

func (s *session) resize(st *stream, b []byte) {
	if st.resizeDead {
		return
	}
	st.resize = append(st.resize, b...)
	if ended := st.resizeScan.scan(b); !ended && !st.resizeScan.atTop() {
		// Inside a message: it cannot have ended, so it is not decoded
		// again at every byte.
		if len(st.resize) > MaxResize {
			s.resizeFailed(st, errors.New("message over "+strconv.Itoa(MaxResize)+" bytes"))
		}
		return
	}
	for len(st.resize) > 0 {
		dec := json.NewDecoder(bytes.NewReader(st.resize))
		var ts terminalSize
		err := dec.Decode(&ts)
		switch {
		case err == nil:
			s.send(Event{Kind: Resize, FromClient: true, Width: int(ts.Width), Height: int(ts.Height)})
			n := copy(st.resize, st.resize[dec.InputOffset():])
			st.resize = st.resize[:n]
			continue
		case errors.Is(err, io.EOF):
			st.resize = st.resize[:0] // only white space so far
			return
		case errors.Is(err, io.ErrUnexpectedEOF) && len(st.resize) <= MaxResize:
			return // wait for the rest
		case errors.Is(err, io.ErrUnexpectedEOF):
			err = errors.New("message over " + strconv.Itoa(MaxResize) + " bytes")
		}
		s.resizeFailed(st, err)
		return
	}
}

func (s *session) resizeFailed(st *stream, err error) {
	st.resizeDead, st.resize = true, nil
	s.send(Event{Kind: Error, FromClient: true, Message: "resize stream: " + err.Error()})
}

// jsonScan follows the nesting of a JSON text as it arrives, so that a
// buffered message is decoded when a value may have ended rather than
// again at every byte. It does not validate anything.
type jsonScan struct {
	depth    int
	inString bool
	escaped  bool
	first    byte // the first byte that is not white space, 0 before it
}

// scan reads b and reports whether a top-level object, array or string
// ended in it.
func (j *jsonScan) scan(b []byte) (ended bool) {
	for _, c := range b {
		if j.first == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			j.first = c
		}
		switch {
		case j.escaped:
			j.escaped = false
		case j.inString:
			switch c {
			case '\\':
				j.escaped = true
			case '"':
				j.inString = false
				ended = ended || j.depth == 0
			}
		case c == '"':
			j.inString = true
		case c == '{' || c == '[':
			j.depth++
		case c == '}' || c == ']':
			j.depth = max(j.depth-1, 0)
			ended = ended || j.depth == 0
		}
	}
	return ended
}

// atTop reports whether the scan is outside every object, array and
// string.
func (j *jsonScan) atTop() bool { return j.depth == 0 && !j.inString }

// portOf reads a SPDY port-forward stream's port header the way kubelet
// does (strconv.ParseUint(port, 10, 16)); 0 if it does not parse.
func portOf(v string) int {
	p, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return 0
	}
	return int(p)
}

package remotecmd

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// EventKind says what an Event is.
type EventKind uint8

const (
	// Stdin is data the client sent to the process.
	Stdin EventKind = iota + 1
	// Stdout is data the process wrote to standard output.
	Stdout
	// Stderr is data the process wrote to standard error.
	Stderr
	// Resize is a new terminal size from the client.
	Resize
	// Exit is the process's exit status.
	Exit
	// Error is a failure the server reported (or, with FromClient, a
	// resize message the server cannot decode).
	Error
	// PortData is port-forward data, to the pod if FromClient.
	PortData
	// Close says one side finished a stream: Stream names which.
	Close
)

func (k EventKind) String() string {
	switch k {
	case Stdin:
		return "stdin"
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Resize:
		return "resize"
	case Exit:
		return "exit"
	case Error:
		return "error"
	case PortData:
		return "portdata"
	case Close:
		return "close"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing seen in an exec, attach or port-forward session.
type Event struct {
	// Time is when the bytes that completed the event were fed.
	Time time.Time
	Kind EventKind
	// FromClient is true for what the client sent (Stdin, Resize, client
	// stream closes, port data towards the pod).
	FromClient bool
	// Data holds the bytes of Stdin, Stdout, Stderr and PortData. It is
	// only valid until Emit returns: copy it to keep it.
	Data []byte
	// Width and Height are a Resize's terminal size.
	Width, Height int
	// ExitCode is an Exit's status: 0 when the server reported success.
	ExitCode int
	// Message is an Error's text, or the server's wording of a non-zero
	// Exit. At most MaxStatus bytes are kept.
	Message string
	// Port is the pod port of PortData, and of Error and Close in
	// port-forward sessions; 0 while the server has not named it yet.
	Port int
	// Stream is the stream a Close ends: Stdin, Stdout, Stderr or PortData.
	Stream EventKind
}

// Limits on what the observer buffers. Data streams are never buffered:
// these bound the messages it must see whole.
const (
	// MaxStatus bounds an error-channel message (a metav1.Status or an
	// error text); longer ones are cut.
	MaxStatus = 16 << 10
	// MaxResize bounds a pending, incomplete resize message.
	MaxResize = 4 << 10
	// MaxControlFrame bounds a SPDY control frame that must be read whole
	// (SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM).
	MaxControlFrame = 64 << 10
	// MaxHeaderBlock bounds a decompressed SPDY header block.
	MaxHeaderBlock = 64 << 10
	// MaxHeaders bounds the name/value pairs of one SPDY header block,
	// as spdystream does.
	MaxHeaders = 1000
	// MaxStreams bounds the open SPDY streams of one session.
	MaxStreams = 1024
)

// ErrLimit is wrapped by parse errors that hit one of the limits above.
var ErrLimit = errors.New("limit exceeded")

// ParseError is why an Observer stopped observing one direction.
type ParseError struct {
	FromClient bool
	// Offset is how many of that direction's bytes had been read when
	// the error showed.
	Offset int64
	Err    error
}

func (e *ParseError) Error() string {
	dir := "server"
	if e.FromClient {
		dir = "client"
	}
	return fmt.Sprintf("%s stream at byte %d: %v", dir, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Config describes the session an Observer watches.
type Config struct {
	// Upgrade is the protocol the server switched to: "websocket" or
	// "SPDY/3.1" (case does not matter).
	Upgrade string
	// Protocol is the negotiated subprotocol: the response's
	// Sec-WebSocket-Protocol for WebSocket, its X-Stream-Protocol-Version
	// for SPDY. Empty means the server's default (channel.k8s.io).
	Protocol string
	// PortForward says the request was pods/portforward, not exec or
	// attach. WebSocket port forwarding uses the same subprotocols as
	// exec, so only the URL tells them apart.
	PortForward bool
	// Emit receives the events, one at a time and in the order their
	// bytes were fed; it is never called concurrently. It must not be nil,
	// and must not call the Observer.
	Emit func(Event)
	// Now stamps events. Nil means time.Now.
	Now func() time.Time
}

// Validate reports whether c describes a session an Observer can follow.
func (c *Config) Validate() error {
	if c.Emit == nil {
		return errors.New("remotecmd: nil Emit")
	}
	_, err := c.mode()
	return err
}

// wire says how a session is framed and what its channels carry.
type wire struct {
	spdy        bool // SPDY/3.1, or SPDY tunnelled in WebSocket if tunnel
	tunnel      bool
	base64      bool // WebSocket base64.channel.k8s.io variants
	version     int  // channel protocol version: 4 and up send a Status
	portForward bool
}

// channelVersion is the version of a plain remote command stream
// protocol: channel.k8s.io (or none) is 1, vN.channel.k8s.io is N.
func channelVersion(p string) (int, bool) {
	switch p {
	case "", "channel.k8s.io":
		return 1, true
	case "v2.channel.k8s.io":
		return 2, true
	case "v3.channel.k8s.io":
		return 3, true
	case "v4.channel.k8s.io":
		return 4, true
	case "v5.channel.k8s.io":
		return 5, true
	}
	return 0, false
}

func (c *Config) mode() (wire, error) {
	p := c.Protocol
	switch {
	case strings.EqualFold(c.Upgrade, "websocket"):
		w := wire{portForward: c.PortForward}
		if v, ok := channelVersion(p); ok {
			w.version = v
			return w, nil
		}
		switch p {
		case "base64.channel.k8s.io":
			w.version, w.base64 = 1, true
		case "v4.base64.channel.k8s.io":
			w.version, w.base64 = 4, true
		case "SPDY/3.1+portforward.k8s.io":
			// client-go's tunnelling dialer: raw SPDY in binary messages.
			w.spdy, w.tunnel, w.portForward = true, true, true
		default:
			return wire{}, fmt.Errorf("remotecmd: unknown WebSocket subprotocol %q", p)
		}
		return w, nil
	case strings.EqualFold(c.Upgrade, "SPDY/3.1"):
		w := wire{spdy: true, portForward: c.PortForward}
		if v, ok := channelVersion(p); ok {
			w.version = v
			return w, nil
		}
		switch p {
		case "portforward.k8s.io":
			w.portForward = true
		default:
			return wire{}, fmt.Errorf("remotecmd: unknown SPDY stream protocol %q", p)
		}
		return w, nil
	}
	return wire{}, fmt.Errorf("remotecmd: unknown upgrade %q", c.Upgrade)
}

// parser consumes one direction's bytes. It returns the first error,
// after which it is not called again.
type parser interface {
	feed(p []byte) error
	offset() int64
}

// Observer follows one upgraded connection. Feed it with FromClient and
// FromServer; both may be called from different goroutines.
type Observer struct {
	emit func(Event)
	now  func() time.Time

	// mu guards everything below, and serialises emit. One lock for both
	// directions keeps events in feed order and lets SPDY share its
	// stream table across directions.
	mu     sync.Mutex
	client parser
	server parser
	err    error     // first ParseError
	cerr   bool      // client direction stopped
	serr   bool      // server direction stopped
	fed    time.Time // when the bytes being parsed were fed
	sess   *session
}

// New returns an Observer for the session c describes.
func New(c Config) (*Observer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w, _ := c.mode()
	o := &Observer{emit: c.Emit, now: c.Now}
	if o.now == nil {
		o.now = time.Now
	}
	o.sess = newSession(w, o.send)
	if w.spdy {
		st := newSPDYStreams(o.sess)
		o.client = newSPDYReader(st, true)
		o.server = newSPDYReader(st, false)
		if w.tunnel {
			o.client = newWSReader(&tunnelSink{spdy: o.client.(*spdyReader)})
			o.server = newWSReader(&tunnelSink{spdy: o.server.(*spdyReader)})
		}
	} else {
		o.client = newWSReader(newChannelSink(o.sess, true))
		o.server = newWSReader(newChannelSink(o.sess, false))
	}
	return o, nil
}

// FromClient observes bytes the client sent. Call it before the bytes are
// forwarded to the server: events then never trail what they caused, and
// SPDY streams are known before the server answers on them.
func (o *Observer) FromClient(p []byte) { o.observe(p, true) }

// FromServer observes bytes the server sent; call it before forwarding
// them to the client.
func (o *Observer) FromServer(p []byte) { o.observe(p, false) }

func (o *Observer) observe(p []byte, fromClient bool) {
	if len(p) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r, stopped := o.server, &o.serr
	if fromClient {
		r, stopped = o.client, &o.cerr
	}
	if *stopped {
		return
	}
	o.fed = o.now()
	if err := r.feed(p); err != nil {
		*stopped = true
		if o.err == nil {
			o.err = &ParseError{FromClient: fromClient, Offset: r.offset(), Err: err}
		}
	}
}

// Err returns the first parse error (a *ParseError), or nil. The
// direction it names is no longer observed; the other one still is.
func (o *Observer) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// send stamps and emits an event; called with mu held.
func (o *Observer) send(e Event) {
	e.Time = o.fed
	o.emit(e)
}

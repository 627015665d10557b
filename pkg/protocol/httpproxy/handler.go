package httpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/recorder"
)

// Limits.
const (
	// defaultMaxBody bounds the JSON request body policy sees; larger
	// bodies are forwarded unread, and policy sees body_truncated.
	defaultMaxBody = 64 << 10
	maxHeaderBytes = 1 << 20
	// sniffTimeout bounds the wait for the agent's first byte.
	sniffTimeout   = 30 * time.Second
	headerTimeout  = 30 * time.Second
	idleTimeout    = 5 * time.Minute
	maxRecordedURI = 4 << 10
)

// Config configures the handler.
type Config struct {
	// CA issues the certificates agents see.
	CA *ca.CA
	// MaskKey keys the "hash" masking strategy.
	MaskKey []byte
	Log     *slog.Logger
	// Registerer receives the handler's metrics; nil means none.
	Registerer prometheus.Registerer
	// Protocol names the operations policy sees ("http" when empty).
	Protocol string
	// MaxBody bounds the request body policy sees (0: 64 KiB).
	MaxBody int

	// Classify completes the operation of a request with the protocol's
	// own fields (and may replace Action and Resource). An error refuses
	// the request with 400. Nil leaves the generic HTTP operation.
	Classify func(r *http.Request, op *policy.Operation) error
	// Refuse writes a refusal in the protocol's own form. Nil writes
	// {"error": ..., "reason": ...} as JSON.
	Refuse func(w http.ResponseWriter, r *http.Request, status int, reason string)
	// Prepare adjusts a request on its way upstream, after credentials
	// are in place. Nil changes nothing.
	Prepare func(out *http.Request, op policy.Operation, m *mask.Masker)
	// Observe returns what watches an upgraded connection (kubectl exec)
	// for the recording, given the target's 101 response; nil, or a nil
	// result, relays it unobserved.
	Observe func(op policy.Operation, resp *http.Response, rec protocol.Recording) Observer
}

// Observer sees the bytes of an upgraded connection after the 101, in
// order, per direction. Close is called once when the connection ends,
// with the request's result to complete (an exit status, say) before it
// is recorded.
type Observer interface {
	FromClient(p []byte)
	FromServer(p []byte)
	Close(res *record.Result)
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case c.CA == nil:
		return errors.New("httpproxy: no CA")
	case len(c.MaskKey) == 0:
		return errors.New("httpproxy: no mask key")
	case c.Log == nil:
		return errors.New("httpproxy: no logger")
	}
	return nil
}

// Handler serves HTTP targets.
type Handler struct {
	cfg     Config
	metrics *metrics
}

var (
	_ protocol.Handler = (*Handler)(nil)
	_ protocol.Refuser = (*Handler)(nil)
)

// New builds a handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Protocol == "" {
		cfg.Protocol = "http"
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Refuse == nil {
		cfg.Refuse = refuseJSON
	}
	m, err := newMetrics(cfg.Protocol, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, metrics: m}, nil
}

// Serve runs one agent connection: TLS (when the agent starts with a
// ClientHello) or plain HTTP, then requests until the agent closes.
func (h *Handler) Serve(ctx context.Context, s *protocol.Session, client net.Conn) error {
	defer client.Close()
	if s.Rec == nil {
		s.Rec = recorder.Discard{}
	}
	agent, tlsOn, err := h.accept(s, client)
	if err != nil {
		return nil // the agent sent nothing
	}
	c, err := h.newConn(s, tlsOn)
	if err != nil {
		// The target's credentials or TLS settings cannot be used: every
		// request is refused with the reason.
		s.Log.Error("http session cannot reach the target", "err", err)
		reason := "sluice cannot reach the target: " + err.Error()
		return serveConn(ctx, agent, s.Log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.cfg.Refuse(w, r, http.StatusBadGateway, reason)
		}))
	}
	defer c.close()
	return serveConn(ctx, agent, s.Log, c)
}

// Refuse answers every request of a connection the gate refused with
// 403 and the reason, after TLS when the agent asked for it.
func (h *Handler) Refuse(ctx context.Context, s *protocol.Session, client net.Conn, reason string) error {
	defer client.Close()
	agent, _, err := h.accept(s, client)
	if err != nil {
		return nil
	}
	return serveConn(ctx, agent, s.Log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.cfg.Refuse(w, r, http.StatusForbidden, "sluice: "+reason)
	}))
}

// accept tells TLS from plain HTTP by the first byte (a TLS handshake
// record is 0x16; no HTTP method starts with it) and wraps the
// connection accordingly.
func (h *Handler) accept(s *protocol.Session, client net.Conn) (net.Conn, bool, error) {
	client = &counting{Conn: client, s: s}
	br := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	_ = client.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, false, errNothing
	}
	pc := &peeked{Conn: client, r: br}
	if first[0] != 0x16 {
		return pc, false, nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return h.cfg.CA.Leaf(leafNames(s, hello.ServerName)...)
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_ = s.Rec.Note("agent TLS: " + describeTLS(cs))
			return nil
		},
	}
	return tls.Server(pc, cfg), true, nil
}

// leafNames are the names the agent's certificate is for: the name the
// agent asked for (SNI), the target's host name, and the address it
// dialed. The agent chose the address; the certificate only vouches that
// sluice answers there.
func leafNames(s *protocol.Session, sni string) []string {
	var names []string
	add := func(n string) {
		for _, m := range names {
			if m == n {
				return
			}
		}
		if n != "" {
			names = append(names, n)
		}
	}
	if sni != "" && len(sni) <= 253 {
		add(sni)
	}
	if s.Target != nil {
		add(s.Target.Host())
	}
	add(s.Conn.Origin.Dst.Addr().String())
	return names
}

// counting counts the agent's bytes for the session.
type counting struct {
	net.Conn
	s *protocol.Session
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.s.BytesUp.Add(int64(n))
	return n, err
}

func (c *counting) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.s.BytesDown.Add(int64(n))
	return n, err
}

// peeked is a connection whose first bytes were read ahead.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// serveConn serves HTTP on one connection with its own http.Server (so
// that the handler's state is per connection), until the agent closes
// it, it is upgraded and the upgrade ends, or ctx ends.
func serveConn(ctx context.Context, c net.Conn, log *slog.Logger, handler http.Handler) error {
	l := newOneConn(c)
	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				l.finish()
			}
		},
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(l)
	// An upgraded connection is relayed by its handler after the server
	// has let go of it.
	inflight.Wait()
	if errors.Is(err, errDone) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// errNothing: the agent closed, or sent nothing in time.
var errNothing = errors.New("no request")

// errDone ends Serve once the one connection is over.
var errDone = errors.New("connection done")

// oneConn is a listener that yields one connection, then waits until
// that connection is finished.
type oneConn struct {
	c        chan net.Conn
	done     chan struct{}
	once     sync.Once
	addr     net.Addr
	finished sync.Once
}

func newOneConn(c net.Conn) *oneConn {
	l := &oneConn{c: make(chan net.Conn, 1), done: make(chan struct{}), addr: c.LocalAddr()}
	l.c <- c
	return l
}

func (l *oneConn) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, errDone
	}
}

func (l *oneConn) finish()        { l.finished.Do(func() { close(l.done) }) }
func (l *oneConn) Close() error   { l.finish(); return nil }
func (l *oneConn) Addr() net.Addr { return l.addr }

// refuseJSON is the default refusal: {"error": "...", "reason": "..."}.
func refuseJSON(w http.ResponseWriter, _ *http.Request, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sluice-Refused", "1")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%q,\"reason\":%s}\n", errorName(status), jsonString(reason))
}

func errorName(status int) string {
	switch status {
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusBadRequest:
		return "bad request"
	case http.StatusBadGateway:
		return "bad gateway"
	}
	return "refused"
}

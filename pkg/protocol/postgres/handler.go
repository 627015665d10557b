package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/recorder"
)

// Limits.
const (
	// defaultMaxMessage bounds a message from the agent (a query text, a
	// Bind with its parameters, a COPY chunk).
	defaultMaxMessage = 16 << 20
	// defaultMaxServerMessage bounds a message from the target (a row).
	defaultMaxServerMessage = 256 << 20
	startupTimeout          = 30 * time.Second
)

// Config configures the handler.
type Config struct {
	// CA issues the certificates agents see when they ask for TLS.
	CA *ca.CA
	// MaskKey keys the "hash" masking strategy (stable pseudonyms).
	MaskKey []byte
	// MaxMessage and MaxServerMessage bound message sizes; 0 means the
	// defaults (16 MiB from the agent, 256 MiB from the target).
	MaxMessage, MaxServerMessage int
	Log                          *slog.Logger
	// Registerer receives the handler's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case c.CA == nil:
		return errors.New("postgres: no CA")
	case len(c.MaskKey) == 0:
		return errors.New("postgres: no mask key")
	case c.Log == nil:
		return errors.New("postgres: no logger")
	}
	return nil
}

// Handler serves PostgreSQL targets.
type Handler struct {
	cfg      Config
	metrics  *metrics
	cancels  *cancels
	classes  *classCache
	catalogs *catalogs
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
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = defaultMaxMessage
	}
	if cfg.MaxServerMessage == 0 {
		cfg.MaxServerMessage = defaultMaxServerMessage
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, metrics: m, cancels: newCancels(), classes: newClassCache(), catalogs: newCatalogs()}, nil
}

// Serve runs one agent connection.
func (h *Handler) Serve(ctx context.Context, s *protocol.Session, client net.Conn) error {
	defer client.Close()
	client = &counting{Conn: client, s: s}
	if s.Rec == nil {
		s.Rec = recorder.Discard{}
	}
	st, err := h.negotiate(s, client)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) && st != nil {
			st.fail(r)
		}
		return ignoreEOF(err)
	}
	if st.cancel != nil {
		return h.forwardCancel(ctx, s, st.cancel)
	}
	c, err := h.open(ctx, s, st)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			st.fail(r)
			s.Log.Warn("postgres session refused", "reason", r.message)
			return nil
		}
		return err
	}
	defer c.close()
	return c.run(ctx)
}

// Refuse answers a connection the gate refused with a FATAL error, after
// the same start-up a real server would go through (including TLS, so a
// client that insists on sslmode=require still reads the reason).
func (h *Handler) Refuse(_ context.Context, s *protocol.Session, client net.Conn, reason string) error {
	st, err := h.negotiate(s, client)
	if err != nil {
		return err
	}
	if st.cancel != nil {
		return nil
	}
	st.fail(&refusal{code: codeInsufficientPrivilege, message: "sluice: " + reason, fatal: true})
	return nil
}

// startup is a negotiated client connection.
type startup struct {
	conn    net.Conn
	backend *pgproto3.Backend
	msg     *pgproto3.StartupMessage
	cancel  *pgproto3.CancelRequest
	tls     bool
	// unsupported protocol options the client asked for (_pq_.*).
	unsupported []string
}

// fail sends a FATAL error and ends the start-up.
func (st *startup) fail(r *refusal) {
	r.fatal = true
	st.backend.Send(r.response())
	_ = st.backend.Flush()
}

// negotiate reads the start-up packets: SSLRequest (answered with TLS),
// GSSENCRequest (declined), then a StartupMessage or a CancelRequest.
func (h *Handler) negotiate(s *protocol.Session, conn net.Conn) (*startup, error) {
	_ = conn.SetDeadline(time.Now().Add(startupTimeout))
	st := &startup{conn: conn, backend: pgproto3.NewBackend(conn, conn)}
	for i := 0; i < 4; i++ {
		msg, err := st.backend.ReceiveStartupMessage()
		if err != nil {
			// A start-up we cannot parse gets a protocol error it can
			// read, the way PostgreSQL answers garbage.
			st.fail(fatalf(codeProtocolViolation, "invalid start-up packet: %v", err))
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if st.tls {
				return st, fatalf(codeProtocolViolation, "duplicate SSL request")
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(conn, h.tlsConfig(s))
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("agent TLS handshake: %w", err)
			}
			st.conn, st.tls = tc, true
			st.backend = pgproto3.NewBackend(tc, tc)
		case *pgproto3.GSSEncRequest:
			// Politely: 'N' lets libpq fall back to SSL or plain.
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case *pgproto3.CancelRequest:
			st.cancel = &pgproto3.CancelRequest{ProcessID: m.ProcessID, SecretKey: append([]byte(nil), m.SecretKey...)}
			_ = st.conn.SetDeadline(time.Time{})
			return st, nil
		case *pgproto3.StartupMessage:
			params := make(map[string]string, len(m.Parameters))
			for k, v := range m.Parameters {
				if len(k) > 5 && k[:5] == "_pq_." {
					st.unsupported = append(st.unsupported, k)
					continue
				}
				params[k] = v
			}
			st.msg = &pgproto3.StartupMessage{ProtocolVersion: m.ProtocolVersion, Parameters: params}
			st.backend.SetMaxBodyLen(h.cfg.MaxMessage)
			_ = st.conn.SetDeadline(time.Time{})
			return st, nil
		default:
			return st, fatalf(codeProtocolViolation, "unexpected start-up message %T", msg)
		}
	}
	return st, fatalf(codeProtocolViolation, "too many start-up packets")
}

// tlsConfig presents a certificate for the names the agent may have
// dialled: the target's host name (if it has one) and the address the
// connection was steered from.
func (h *Handler) tlsConfig(s *protocol.Session) *tls.Config {
	var names []string
	if host := s.Target.Host(); host != "" {
		names = append(names, host)
	}
	names = append(names, s.Conn.Origin.Dst.Addr().String())
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return h.cfg.CA.Leaf(names...)
		},
	}
}

// counting counts the agent's bytes into the session (up: agent to
// target, down: back).
type counting struct {
	net.Conn
	s *protocol.Session
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.BytesUp.Add(int64(n))
	return n, err
}

func (c *counting) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.s.BytesDown.Add(int64(n))
	return n, err
}

func ignoreEOF(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

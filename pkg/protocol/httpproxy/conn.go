package httpproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/credential"
	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/record"
)

// conn is one agent connection: its upstream transports, credentials and
// compiled maskers.
type conn struct {
	h     *Handler
	s     *protocol.Session
	log   *slog.Logger
	creds credential.HTTP
	// scheme and host address the target.
	scheme, host string
	// tr carries ordinary requests (HTTP/2 when the target offers it);
	// tr1 carries upgrades, which exist only in HTTP/1.1.
	tr, tr1 *http.Transport
	proxy   *httputil.ReverseProxy

	maskers *mask.Cache
	// The target's series, bound once: the per-request path only adds.
	duration prometheus.Observer
	allowed  prometheus.Counter
}

func (h *Handler) newConn(s *protocol.Session, agentTLS bool) (*conn, error) {
	creds, err := credential.LoadHTTP(s.Target.Credentials)
	if err != nil {
		return nil, err
	}
	c := &conn{h: h, s: s, log: s.Log, creds: creds, host: s.Conn.Origin.Dst.String(), maskers: mask.NewCache(h.cfg.MaskKey),
		duration: h.metrics.duration.WithLabelValues(s.Target.Name),
		allowed:  h.metrics.requests.WithLabelValues(s.Target.Name, "allowed"),
	}
	tlsCfg, useTLS, err := upstreamTLS(s, agentTLS)
	if err != nil {
		return nil, err
	}
	c.scheme = "http"
	if useTLS {
		c.scheme = "https"
		noteUpstreamTLS(tlsCfg, s.Rec, s.Target.TLS.Mode)
		if creds.Cert != nil {
			tlsCfg.Certificates = []tls.Certificate{*creds.Cert}
		}
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return s.Dial(ctx) }
	c.tr = &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 15 * time.Second,
	}
	var tls1 *tls.Config
	if tlsCfg != nil {
		tls1 = tlsCfg.Clone()
		tls1.NextProtos = []string{"http/1.1"}
	}
	c.tr1 = &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tls1,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 1,
		TLSHandshakeTimeout: 15 * time.Second,
	}
	c.proxy = &httputil.ReverseProxy{
		Rewrite:        c.rewrite,
		Transport:      roundTripper(c.pick),
		ModifyResponse: c.modifyResponse,
		ErrorHandler:   c.proxyError,
		ErrorLog:       slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
	}
	return c, nil
}

func (c *conn) close() {
	c.tr.CloseIdleConnections()
	c.tr1.CloseIdleConnections()
}

// noteUpstreamTLS records each upstream TLS handshake, after any
// verification cfg already does.
func noteUpstreamTLS(cfg *tls.Config, rec protocol.Recording, mode string) {
	verify := cfg.VerifyConnection
	if mode == "" {
		mode = "prefer"
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		_ = rec.Note(fmt.Sprintf("upstream TLS: %s, tls.mode %s", describeTLS(cs), mode))
		return nil
	}
}

// describeTLS says what a handshake settled on.
func describeTLS(cs tls.ConnectionState) string {
	d := tls.VersionName(cs.Version) + ", " + tls.CipherSuiteName(cs.CipherSuite)
	if cs.NegotiatedProtocol != "" {
		d += ", ALPN " + cs.NegotiatedProtocol
	}
	if cs.ServerName != "" {
		d += ", server name " + cs.ServerName
	}
	return d
}

// upstreamTLS is how sluice talks to the target. tls.mode: "disable"
// speaks plain HTTP; "require" TLS without verification (an explicit
// opt-out); "verify-ca" and "verify-full" TLS verified against ca_file or
// the system roots; "prefer" (the default) follows the agent: TLS,
// verified, when the agent used TLS.
func upstreamTLS(s *protocol.Session, agentTLS bool) (*tls.Config, bool, error) {
	t := s.Target.TLS
	mode := t.Mode
	if mode == "" || mode == "prefer" {
		if !agentTLS {
			return nil, false, nil
		}
		mode = "verify-full"
	}
	if mode == "disable" {
		return nil, false, nil
	}
	name := t.ServerName
	if name == "" {
		name = s.Target.Host()
	}
	if name == "" {
		name = s.Conn.Origin.Dst.Addr().String()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name, NextProtos: []string{"h2", "http/1.1"}}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, false, fmt.Errorf("read tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("tls.ca_file %s: no certificates", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch mode {
	case "require":
		cfg.InsecureSkipVerify = true
	case "verify-ca":
		// Chain only: the name is not checked (libpq's verify-ca).
		cfg.InsecureSkipVerify = true
		roots := cfg.RootCAs
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("target sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg, true, nil
}

// roundTripper adapts a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// pick sends upgrades over HTTP/1.1, the rest over tr.
func (c *conn) pick(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Upgrade") != "" {
		return c.tr1.RoundTrip(r)
	}
	return c.tr.RoundTrip(r)
}

// exchange is one request's state, from the decision to the result.
type exchange struct {
	op     policy.Operation
	req    string // the recorded request's id
	start  time.Time
	masker *mask.Masker
	up     *upgraded // set when the target switched protocols
}

type exchangeKey struct{}

// ServeHTTP judges, records and forwards one request.
func (c *conn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { c.duration.Observe(time.Since(start).Seconds()) }()
	txt := text(r)
	op, err := operation(c.h.cfg.Protocol, r, c.h.cfg.MaxBody, c.s.Target.Credentials.Header)
	if err == nil && c.h.cfg.Classify != nil {
		err = c.h.cfg.Classify(r, &op)
	}
	if err != nil {
		c.refuse(w, r, "", http.StatusBadRequest, "sluice: "+err.Error(), "invalid", record.Request{Action: strings.ToLower(r.Method), Text: txt})
		return
	}
	op.Key = operationKey(op)
	if _, ok := op.Fields["text"]; !ok {
		// What a reviewer reads, unless the classifier said it better.
		op.Fields["text"] = txt
	}
	d, err := c.s.Authorize(r.Context(), op)
	refusal := ""
	switch {
	case err != nil:
		refusal = "policy error: " + err.Error()
	case len(d.Deny) > 0 || (!d.Allow && !d.Approval.Required):
		refusal = d.Reason()
	}
	rq := record.Request{
		Action: op.Action, Operation: op.Fields, Text: txt,
		Decision: protocol.RecordDecision(d, refusal), Critical: d.Critical || d.Approval.Required,
	}
	if refusal != "" {
		c.refuse(w, r, "", http.StatusForbidden, "sluice: "+refusal, "denied", rq)
		return
	}
	id, err := c.s.Rec.Request(rq)
	if err != nil {
		c.log.Error("record request", "err", err)
		c.h.cfg.Refuse(w, r, http.StatusServiceUnavailable, "sluice: the request cannot be recorded; refused")
		c.count("error")
		return
	}
	if d.Approval.Required {
		c.count("held")
		c.log.Info("request held for approval", "method", r.Method, "path", r.URL.Path, "reason", d.Approval.Reason)
		held := protocol.Hold(r.Context(), c.s, op, d, id)
		if !held.Approved() {
			c.count("rejected")
			c.h.cfg.Refuse(w, r, http.StatusForbidden, "sluice: "+held.Reason)
			return
		}
		c.count("approved")
	}
	m, err := c.maskers.Masker(d.Mask)
	if err != nil {
		c.refuse(w, r, id, http.StatusForbidden, "sluice: the policy's mask rules are invalid: "+err.Error(), "error", rq)
		return
	}
	c.allowed.Inc()
	ex := &exchange{op: op, req: id, start: start, masker: m}
	c.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
	if ex.up != nil {
		// The reverse proxy closes an upgraded connection from another
		// goroutine, possibly after the session has ended: close it (and
		// record its result) before this request is done.
		_ = ex.up.Close()
	}
}

// refuse answers a request sluice will not forward, and records it (as a
// new request when id is empty).
func (c *conn) refuse(w http.ResponseWriter, r *http.Request, id string, status int, reason, outcome string, rq record.Request) {
	if id == "" {
		rq.Decision.Allowed = false
		if len(rq.Decision.Reasons) == 0 {
			rq.Decision.Reasons = []string{strings.TrimPrefix(reason, "sluice: ")}
		}
		var err error
		if id, err = c.s.Rec.Request(rq); err != nil {
			c.log.Error("record request", "err", err)
		}
	}
	_ = c.s.Rec.Refusal(record.Refusal{Stage: record.StageStatement, Outcome: outcome, Reason: reason, Request: id, Text: rq.Text})
	c.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "reason", reason)
	c.count(outcome)
	c.h.cfg.Refuse(w, r, status, reason)
}

func (c *conn) count(outcome string) {
	c.h.metrics.requests.WithLabelValues(c.s.Target.Name, outcome).Inc()
}

// rewrite prepares the request for the target: its address, the
// target's credentials in place of any the agent sent, and no
// compression that would hide the body from masking.
func (c *conn) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme, out.URL.Host = c.scheme, c.host
	out.Host = pr.In.Host
	for k := range secretHeaders {
		out.Header.Del(k)
	}
	if h := c.s.Target.Credentials.Header; h != "" {
		out.Header.Del(h)
	}
	if c.creds.Header != "" {
		out.Header.Set(c.creds.Header, c.creds.Value)
	}
	// The transport asks for gzip itself and decompresses, so the body
	// is plain for masking; other encodings the agent asked for could
	// not be masked.
	out.Header.Del("Accept-Encoding")
	ex, _ := pr.In.Context().Value(exchangeKey{}).(*exchange)
	if c.h.cfg.Prepare != nil && ex != nil {
		c.h.cfg.Prepare(out, ex.op, ex.masker)
	}
}

// proxyError answers a request the target could not be asked.
func (c *conn) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	c.log.Warn("upstream request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	if ex != nil {
		_ = c.s.Rec.Result(record.Result{Request: ex.req, Duration: time.Since(ex.start),
			Error: &record.ResultError{Code: "502", Message: err.Error()}})
	}
	c.h.cfg.Refuse(w, r, http.StatusBadGateway, "sluice: the target could not be reached: "+err.Error())
}

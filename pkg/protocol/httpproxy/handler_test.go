package httpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gate/sluice/pkg/bpf"
	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/target"
)

// recs is an in-memory protocol.Recording.
type recs struct {
	mu       sync.Mutex
	requests []record.Request
	results  []record.Result
	refusals []record.Refusal
	approved []record.Approval
	notes    []string
}

func (r *recs) Request(q record.Request) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q.ID = fmt.Sprintf("r%d", len(r.requests)+1)
	r.requests = append(r.requests, q)
	return q.ID, nil
}
func (r *recs) Result(x record.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, x)
	return nil
}
func (r *recs) Refusal(x record.Refusal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals = append(r.refusals, x)
	return nil
}
func (r *recs) Approval(a record.Approval) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.approved = append(r.approved, a)
	return nil
}
func (r *recs) Stream(string, []byte) error { return nil }
func (r *recs) Note(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, s)
	return nil
}
func (r *recs) Sample() *record.Sample { return record.NewSample(4096) }

// rig is a handler in front of an upstream test server, reached by a
// client that trusts the host CA.
type rig struct {
	t        *testing.T
	ca       *ca.CA
	h        *Handler
	upstream *httptest.Server
	rec      *recs
	client   *http.Client
	addr     string // the agent-side listener
	decide   func(op policy.Operation) policy.Decision
	approve  func(op policy.Operation) protocol.Verdict
	seen     chan *http.Request // requests as the upstream saw them
}

func newRig(t *testing.T, upstreamTLS bool, creds config.Credentials, handler http.HandlerFunc) *rig {
	t.Helper()
	dir := t.TempDir()
	c, err := ca.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ca: c, rec: &recs{}, seen: make(chan *http.Request, 100)}
	r.decide = func(policy.Operation) policy.Decision { return policy.Decision{Allow: true} }
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		select {
		case r.seen <- q.Clone(context.Background()):
		default:
		}
		handler(w, q)
	}))
	up.EnableHTTP2 = true
	if upstreamTLS {
		up.StartTLS()
	} else {
		up.Start()
	}
	t.Cleanup(up.Close)
	r.upstream = up
	upAddr := netip.MustParseAddrPort(up.Listener.Addr().String())

	tcfg := config.Target{Name: "api", Address: upAddr.String(), Protocol: "http", Labels: map[string]string{"env": "production"}, Credentials: creds}
	if upstreamTLS {
		pemFile := filepath.Join(dir, "upstream-ca.pem")
		writeCert(t, pemFile, up.Certificate().Raw)
		tcfg.TLS = config.UpstreamTLS{Mode: "verify-full", CAFile: pemFile, ServerName: "example.com"}
	}
	set, err := target.NewSet(context.Background(), []config.Target{tcfg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tgt := set.Match(upAddr)

	r.h, err = New(Config{CA: c, MaskKey: []byte("k"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s := &protocol.Session{
				ID: "c1", Target: tgt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Rec: r.rec,
				Conn: intercept.Conn{Origin: bpf.Origin{Dst: upAddr}},
				Authorize: func(_ context.Context, op policy.Operation) (policy.Decision, error) {
					return r.decide(op), nil
				},
				Approve: func(_ context.Context, op policy.Operation, _ policy.Decision) (protocol.Verdict, error) {
					return r.approve(op), nil
				},
				Dial: func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "tcp", upAddr.String())
				},
			}
			wg.Add(1)
			go func() { defer wg.Done(); r.h.Serve(ctx, s, conn) }()
		}
	}()
	pool := c.Pool()
	r.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

func writeCert(t *testing.T, path string, der []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "-----BEGIN CERTIFICATE-----\n")
	enc := make([]byte, 0)
	enc = append(enc, []byte(base64Std(der))...)
	for len(enc) > 64 {
		fmt.Fprintf(f, "%s\n", enc[:64])
		enc = enc[64:]
	}
	fmt.Fprintf(f, "%s\n-----END CERTIFICATE-----\n", enc)
}

func (r *rig) do(method, url, body string, hdr map[string]string) (*http.Response, string) {
	r.t.Helper()
	var br io.Reader
	if body != "" {
		br = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, br)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

func TestAllowDenyHTTP2AndCredentials(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("upstream-secret\n"), 0o600)
	r := newRig(t, true, config.Credentials{TokenFile: tok}, func(w http.ResponseWriter, q *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"auth":%q,"proto":%q,"path":%q}`, q.Header.Get("Authorization"), q.Proto, q.URL.Path)
	})
	r.decide = func(op policy.Operation) policy.Decision {
		if op.Fields["method"] == "DELETE" {
			return policy.Decision{Allow: false, Deny: []string{"no deletes"}}
		}
		return policy.Decision{Allow: true}
	}
	resp, body := r.do("GET", "https://example.com/v1/orders?x=1", "", map[string]string{"Authorization": "Bearer agent-own"})
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("GET: %s %s %s", resp.Status, resp.Proto, body)
	}
	var got map[string]string
	json.Unmarshal([]byte(body), &got)
	if got["auth"] != "Bearer upstream-secret" || got["proto"] != "HTTP/2.0" || got["path"] != "/v1/orders" {
		t.Errorf("upstream saw %v", got)
	}
	// The agent's own credential never reached policy or the recording.
	q := r.rec.requests[0]
	if _, ok := q.Operation["headers"].(map[string]any)["authorization"]; ok || q.Text != "GET /v1/orders?x=1" {
		t.Errorf("recorded request %+v", q)
	}
	if fmt.Sprint(q) == "" || strings.Contains(fmt.Sprint(q), "agent-own") {
		t.Errorf("the agent's token reached the record: %v", q)
	}
	resp, body = r.do("DELETE", "https://example.com/v1/orders/7", "", nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "no deletes") || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("DELETE: %s %s", resp.Status, body)
	}
	if len(r.rec.refusals) != 1 {
		t.Errorf("refusals %+v", r.rec.refusals)
	}
}

func TestMaskedJSONStream(t *testing.T) {
	const n = 20000
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriter(w)
		bw.WriteString("[")
		for i := range n {
			if i > 0 {
				bw.WriteString(",")
			}
			fmt.Fprintf(bw, `{"id":%d,"card":"4111 1111 1111 1111","note":"ok"}`, i)
		}
		bw.WriteString("]")
		bw.Flush()
	})
	r.decide = func(policy.Operation) policy.Decision {
		return policy.Decision{Allow: true, Mask: []map[string]any{{"detector": "pan", "strategy": "redact"}}}
	}
	resp, body := r.do("GET", "http://example.com/cards", "", nil)
	if resp.StatusCode != 200 || strings.Contains(body, "4111 1111") {
		t.Fatalf("masked response: %s, holds a card number: %v", resp.Status, strings.Contains(body, "4111 1111"))
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v) != n {
		t.Fatalf("masked body is not the JSON array: %v (%d)", err, len(v))
	}
	res := r.rec.results[len(r.rec.results)-1]
	if res.Masked["detector:pan"] != n || !res.Truncated || res.Bytes != int64(len(body)) {
		t.Errorf("result %+v", res.Masked)
	}
}

// TestMaskedSmallBodyKeepsLength: a small body of known length is masked
// whole and keeps an exact Content-Length, by path rule and by detector;
// a chunked one streams.
func TestMaskedSmallBodyKeepsLength(t *testing.T) {
	const doc = `{"user":{"email":"alice@example.com","token":"s3cret"},"cards":["4111111111111111"]}`
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if q.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		}
		io.WriteString(w, doc)
	})
	r.decide = func(policy.Operation) policy.Decision {
		return policy.Decision{Allow: true, Mask: []map[string]any{
			{"path": "$.user.token", "strategy": "redact"},
			{"detector": "pan", "strategy": "partial"},
		}}
	}
	const want = `{"user":{"email":"alice@example.com","token":"[REDACTED]"},"cards":["************1111"]}`
	resp, body := r.do("GET", "http://example.com/small", "", nil)
	if body != want || resp.ContentLength != int64(len(want)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("small body: %q, Content-Length %d, %v", body, resp.ContentLength, resp.TransferEncoding)
	}
	resp, body = r.do("GET", "http://example.com/chunked", "", nil)
	if body != want || resp.ContentLength != -1 {
		t.Errorf("chunked body: %q, Content-Length %d", body, resp.ContentLength)
	}
}

func TestApprovalHolds(t *testing.T) {
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) { io.WriteString(w, "done") })
	r.decide = func(op policy.Operation) policy.Decision {
		return policy.Decision{Allow: true, Approval: policy.Approval{Required: true, Reviewers: []string{"reviewers"}}}
	}
	r.approve = func(op policy.Operation) protocol.Verdict {
		if op.Fields["path"] == "/ok" {
			return protocol.Verdict{Approved: true, Reviewer: "alice", ApprovalID: "a1"}
		}
		return protocol.Verdict{Approved: false, Reviewer: "bob", Reason: "not today", ApprovalID: "a2"}
	}
	if resp, body := r.do("POST", "http://example.com/ok", "x", nil); resp.StatusCode != 200 || body != "done" {
		t.Errorf("approved: %s %s", resp.Status, body)
	}
	if resp, body := r.do("POST", "http://example.com/no", "x", nil); resp.StatusCode != 403 || !strings.Contains(body, "denied by bob: not today") {
		t.Errorf("rejected: %s %s", resp.Status, body)
	}
	if len(r.rec.approved) != 2 || r.rec.approved[0].Status != "approved" || r.rec.approved[1].Status != "rejected" {
		t.Errorf("approvals %+v", r.rec.approved)
	}
}

func TestBadPathsRefused(t *testing.T) {
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) { io.WriteString(w, "reached") })
	for _, p := range []string{"/a/%2e%2e/admin", "/a%2Fb", "/a/../b"} {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", p)
		b, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 400") || strings.Contains(string(b), "reached") {
			t.Errorf("GET %s: %s", p, b)
		}
	}
}

func TestExpectContinueRefusedWithoutBody(t *testing.T) {
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) { io.WriteString(w, "reached") })
	r.decide = func(policy.Operation) policy.Decision { return policy.Decision{Deny: []string{"no uploads"}} }
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /blob HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Errorf("status %s, want 403 before any 100 Continue", resp.Status)
	}
}

func TestUpgradeRelayed(t *testing.T) {
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) {
		if q.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no", 400)
			return
		}
		hj, _ := w.(http.Hijacker)
		c, brw, _ := hj.Hijack()
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw)
	})
	var obs *testObserver
	r.h.cfg.Observe = func(op policy.Operation, _ *http.Response, rec protocol.Recording) Observer {
		obs = &testObserver{}
		return obs
	}
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	conn.Close()
	waitFor(t, func() bool { return obs != nil && obs.closed() })
	if obs.client.String() != "ping" || obs.server.String() != "ping" {
		t.Errorf("observed %q / %q", obs.client.String(), obs.server.String())
	}
}

type testObserver struct {
	mu             sync.Mutex
	client, server strings.Builder
	done           bool
}

func (o *testObserver) FromClient(p []byte) { o.mu.Lock(); o.client.Write(p); o.mu.Unlock() }
func (o *testObserver) FromServer(p []byte) { o.mu.Lock(); o.server.Write(p); o.mu.Unlock() }
func (o *testObserver) Close(res *record.Result) {
	o.mu.Lock()
	o.done = true
	res.Tag = "observed"
	o.mu.Unlock()
}
func (o *testObserver) closed() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.done }

// TestTextMasked: a text body is masked a piece of lines at a time.
func TestTextMasked(t *testing.T) {
	r := newRig(t, false, config.Credentials{}, func(w http.ResponseWriter, q *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		for i := range 5000 {
			fmt.Fprintf(w, "%d,alice%d@example.com,078-05-1120\n", i, i)
		}
	})
	r.decide = func(policy.Operation) policy.Decision {
		return policy.Decision{Allow: true, Mask: []map[string]any{{"detector": "us_ssn", "strategy": "redact"}, {"detector": "email", "strategy": "partial"}}}
	}
	resp, body := r.do("GET", "http://example.com/export.csv", "", nil)
	if resp.StatusCode != 200 || strings.Contains(body, "078-05") || strings.Contains(body, "alice1@") || strings.Count(body, "\n") != 5000 {
		t.Errorf("masked text: %s %.300s", resp.Status, body)
	}
}

// TestOperationKey: requests that policy would see alike share a cache
// key; any difference policy can see (here a header or a query value)
// parts them.
func TestOperationKey(t *testing.T) {
	key := func(target string, hdr map[string]string) string {
		q := httptest.NewRequest("GET", target, nil)
		for k, v := range hdr {
			q.Header.Set(k, v)
		}
		op, err := operation("http", q, 4096, "")
		if err != nil {
			t.Fatal(err)
		}
		op.Fields["text"] = "ignored"
		return operationKey(op)
	}
	a := key("http://example.com/orders?id=1", map[string]string{"Accept": "application/json"})
	if a == "" || a != key("http://example.com/orders?id=1", map[string]string{"Accept": "application/json"}) {
		t.Error("the same request has different keys")
	}
	for _, other := range []string{
		key("http://example.com/orders?id=2", map[string]string{"Accept": "application/json"}),
		key("http://example.com/orders?id=1", map[string]string{"Accept": "text/html"}),
		key("http://example.com/orders/1", nil),
	} {
		if other == a {
			t.Error("different requests share a key")
		}
	}
}

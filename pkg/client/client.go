// Package client is the sluice CLI's side of the local API: typed calls over
// the daemon's unix socket. It holds no logic beyond transport and errors.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/approval"
)

// DefaultSocket is used when neither --socket nor SLUICE_SOCKET is set.
const DefaultSocket = "/run/sluice/sluice.sock"

// SocketFromEnv returns SLUICE_SOCKET or DefaultSocket.
func SocketFromEnv() string {
	if s := os.Getenv("SLUICE_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// Client talks to one daemon.
type Client struct {
	socket string
	http   *http.Client
	token  string
}

// WithToken returns a client that presents token (a reviewer's OIDC token)
// on every call.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// New returns a client for the daemon at socket.
func New(socket string) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", socket)
				},
				DisableKeepAlives: true,
			},
		},
	}
}

// Error is an error reported by the daemon.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://sluiced"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach sluiced at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &Error{Status: resp.StatusCode, Message: e.Error}
		}
		return &Error{Status: resp.StatusCode, Message: fmt.Sprintf("sluiced: %s", resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// Enroll moves the calling process into a new job bound to token.
func (c *Client) Enroll(ctx context.Context, token string) (api.EnrollResponse, error) {
	var r api.EnrollResponse
	err := c.do(ctx, http.MethodPost, api.PathEnroll, api.EnrollRequest{Token: token}, &r)
	return r, err
}

// Token mints a token from the embedded issuer.
func (c *Client) Token(ctx context.Context, req api.TokenRequest) (api.TokenResponse, error) {
	var r api.TokenResponse
	err := c.do(ctx, http.MethodPost, api.PathToken, req, &r)
	return r, err
}

// Status reports the daemon's health.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var r api.Status
	err := c.do(ctx, http.MethodGet, api.PathStatus, nil, &r)
	return r, err
}

// CA returns the host CA certificate (PEM): agents that trust it can verify
// the certificates sluice presents for targets.
func (c *Client) CA(ctx context.Context) ([]byte, error) {
	var r struct {
		PEM string `json:"pem"`
	}
	err := c.do(ctx, http.MethodGet, api.PathCA, nil, &r)
	return []byte(r.PEM), err
}

// Approvals lists approval requests; status "" means pending, "all" all.
func (c *Client) Approvals(ctx context.Context, status string) ([]approval.Request, error) {
	var r []approval.Request
	path := approval.PathList
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	err := c.do(ctx, http.MethodGet, path, nil, &r)
	return r, err
}

// Approval returns one approval request.
func (c *Client) Approval(ctx context.Context, id string) (approval.Request, error) {
	var r approval.Request
	err := c.do(ctx, http.MethodGet, approval.PathList+"/"+url.PathEscape(id), nil, &r)
	return r, err
}

// Decide approves or denies a request.
func (c *Client) Decide(ctx context.Context, id string, approve bool, reason, window string) (approval.Request, error) {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	var r approval.Request
	err := c.do(ctx, http.MethodPost, approval.PathList+"/"+url.PathEscape(id)+"/"+verb,
		map[string]string{"reason": reason, "window": window}, &r)
	return r, err
}

// WatchApprovals streams request changes until ctx ends, calling fn for
// each.
func (c *Client) WatchApprovals(ctx context.Context, fn func(approval.Request)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sluiced"+approval.PathEvents, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach sluiced at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &Error{Status: resp.StatusCode, Message: e.Error}
		}
		return &Error{Status: resp.StatusCode, Message: resp.Status}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var r approval.Request
			if json.Unmarshal([]byte(data), &r) == nil {
				fn(r)
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

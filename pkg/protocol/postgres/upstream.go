package postgres

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-gate/sluice/pkg/credential"
	"github.com/sluice-gate/sluice/pkg/protocol"
)

// Start-up parameters that are not passed on as run-time settings.
var startupOnly = map[string]bool{
	"user": true, "database": true, "replication": true, "password": true,
}

// connectUpstream logs in to the target as sluice's configured user, into
// the database the agent asked for, with the agent's other start-up
// settings (application_name, client_encoding, options, ...), and takes
// over the raw connection.
func connectUpstream(ctx context.Context, s *protocol.Session, database string, params map[string]string, maxMsg int) (*pgconn.HijackedConn, error) {
	cfg, err := upstreamConfig(s, database, params, maxMsg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pc, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	hj, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	return hj, nil
}

// upstreamConfig is the pgconn configuration for a login to the target.
func upstreamConfig(s *protocol.Session, database string, params map[string]string, maxMsg int) (*pgconn.Config, error) {
	secret, err := credential.Load(s.Target.Credentials)
	if err != nil && err != credential.ErrNoSecret {
		return nil, fmt.Errorf("credentials for %s: %w", s.Target.Name, err)
	}
	dst := s.Conn.Origin.Dst
	host := dst.Addr().String()
	mode := s.Target.TLS.Mode
	if mode == "" {
		mode = "prefer"
	}
	// The host in the connection string is the name TLS verifies; the
	// dial always goes to the address the agent dialled.
	verifyName := host
	if s.Target.TLS.ServerName != "" {
		verifyName = s.Target.TLS.ServerName
	} else if h := s.Target.Host(); h != "" {
		verifyName = h
	}
	kv := map[string]string{
		"host":            verifyName,
		"port":            strconv.Itoa(int(dst.Port())),
		"user":            secret.Username,
		"dbname":          database,
		"sslmode":         mode,
		"connect_timeout": "10",
	}
	if s.Target.TLS.CAFile != "" {
		kv["sslrootcert"] = s.Target.TLS.CAFile
	}
	cfg, err := pgconn.ParseConfig(connString(kv))
	if err != nil {
		return nil, fmt.Errorf("upstream config for %s: %w", s.Target.Name, err)
	}
	cfg.Password = secret.Password
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) { return s.Dial(ctx) }
	cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{host}, nil }
	cfg.MaxProtocolMessageBodyLen = maxMsg
	cfg.RuntimeParams = map[string]string{}
	for k, v := range params {
		if !startupOnly[k] {
			cfg.RuntimeParams[k] = v
		}
	}
	return cfg, nil
}

// connString renders key=value pairs in libpq's quoting.
func connString(kv map[string]string) string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[k])
		fmt.Fprintf(&b, "%s='%s' ", k, v)
	}
	return b.String()
}

// forwardCancel relays a cancel request: the key the agent holds is
// sluice's, mapped to the upstream backend's own key. Only the job that
// owns the session may cancel it.
func (h *Handler) forwardCancel(ctx context.Context, s *protocol.Session, req *pgproto3.CancelRequest) error {
	t, ok := h.cancels.lookup(req.ProcessID, req.SecretKey)
	if !ok || t.job != s.Job.ID {
		// PostgreSQL answers nothing to an unknown key; neither do we.
		s.Log.Warn("postgres cancel request with an unknown key", "pid", req.ProcessID)
		return nil
	}
	if t.hold != nil {
		t.hold()
	}
	return t.send(t.pid, t.secret)
}

// sendCancel opens a new connection to the target and sends a
// CancelRequest with the upstream key (protocol section 55.2.8: the
// server closes the connection without answering).
func sendCancel(ctx context.Context, s *protocol.Session, pid uint32, secret []byte) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := s.Dial(cctx)
	if err != nil {
		return fmt.Errorf("cancel: dial %s: %w", s.Target.Name, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := c.Write(buf); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	// Wait for the server to close, so the cancel has been delivered
	// before the agent's cancel connection ends.
	_, _ = c.Read(make([]byte, 1))
	return nil
}

package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed sluice.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded, documented default configuration.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is sluiced's configuration.
type Config struct {
	StateDir      string `yaml:"state_dir"`
	APISocket     string `yaml:"api_socket"`
	APIListen     string `yaml:"api_listen"`
	ProxyPort     uint16 `yaml:"proxy_port"`
	MetricsListen string `yaml:"metrics_listen"`
	// Pprof serves Go's profiler (/debug/pprof/) on metrics_listen.
	Pprof     bool       `yaml:"pprof"`
	Cgroup    string     `yaml:"cgroup"`
	BPFFS     string     `yaml:"bpf_fs"`
	DNS       []string   `yaml:"dns"`
	PolicyDir string     `yaml:"policy_dir"`
	Issuer    Issuer     `yaml:"issuer"`
	Issuers   []External `yaml:"issuers"`
	Targets   []Target   `yaml:"targets"`
	Approvals Approvals  `yaml:"approvals"`
	Store     Store      `yaml:"store"`
	Recording Recording  `yaml:"recording"`
	Log       Log        `yaml:"log"`
}

// Issuer configures the embedded OIDC issuer.
type Issuer struct {
	URL      string   `yaml:"url"`
	Audience string   `yaml:"audience"`
	MaxTTL   Duration `yaml:"max_ttl"`
}

// External is an OIDC issuer whose tokens may enroll jobs.
type External struct {
	URL      string `yaml:"url"`
	Audience string `yaml:"audience"`
}

// Target is something jobs may connect to.
type Target struct {
	Name        string            `yaml:"name"`
	Address     string            `yaml:"address"`
	Protocol    string            `yaml:"protocol"`
	Labels      map[string]string `yaml:"labels"`
	Credentials Credentials       `yaml:"credentials"`
	TLS         UpstreamTLS       `yaml:"tls"`
}

// UpstreamTLS is how sluice's own connection to a target uses TLS (the
// agent's side is always offered TLS with a host-CA certificate).
type UpstreamTLS struct {
	// Mode is disable, prefer (default), require, verify-ca or
	// verify-full, with libpq's meanings.
	Mode string `yaml:"mode"`
	// CAFile verifies the target's certificate (verify-ca, verify-full);
	// empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name to verify (verify-full) and to send as SNI;
	// empty means the host part of address.
	ServerName string `yaml:"server_name"`
}

// Credentials are used upstream by protocol handlers and never shown to
// agents. At most one source of each secret may be set.
//
// PostgreSQL logs in as Username with the password. HTTP and Kubernetes
// targets get, in this order of preference: the token in Header (when
// Header is set; the password serves when there is no token), the token
// as "Authorization: Bearer", or Username and password as basic auth;
// and a client certificate when ClientCertFile is set.
type Credentials struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	TokenFile    string `yaml:"token_file"`
	TokenEnv     string `yaml:"token_env"`
	// Header names the request header that carries the token (an API
	// key header, say); empty means Authorization.
	Header         string `yaml:"header"`
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
}

// Approvals configures how held requests reach reviewers.
type Approvals struct {
	// Webhook receives a Slack-compatible JSON message for every new
	// request and every outcome. Empty: no notifications.
	Webhook string `yaml:"webhook"`
	// PageURL is the approvals page as reviewers reach it (linked from
	// notifications); empty: http://<api_listen>/approvals/.
	PageURL string `yaml:"page_url"`
	// DefaultTTL is a request's deadline when policy names none.
	DefaultTTL Duration `yaml:"default_ttl"`
}

// Store is where approvals and the session index live.
type Store struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the SQLite file (default <state_dir>/sluice.db) or the
	// PostgreSQL connection string.
	DSN string `yaml:"dsn"`
}

// Recording configures session recordings.
type Recording struct {
	// Enabled records every session (the default). Off only for
	// measuring what recording costs.
	Enabled bool `yaml:"enabled"`
	// Dir holds the recordings (default <state_dir>/recordings).
	Dir string `yaml:"dir"`
	// ResultBytes caps the result data kept per request.
	ResultBytes int `yaml:"result_bytes"`
	// MaxAge and MaxBytes bound what is kept; older recordings, then the
	// oldest, are deleted (each deletion is logged in the index).
	MaxAge   Duration `yaml:"max_age"`
	MaxBytes int64    `yaml:"max_bytes"`
	// Recipient is an age X25519 public key ("age1..."): recordings are
	// encrypted to it, and this host cannot read them back.
	Recipient string `yaml:"recipient"`
}

// StoreDSN is the store's connection string with defaults applied.
func (c *Config) StoreDSN() string {
	if c.Store.DSN != "" {
		return c.Store.DSN
	}
	return filepath.Join(c.StateDir, "sluice.db")
}

// RecordingDir is the recordings directory with defaults applied.
func (c *Config) RecordingDir() string {
	if c.Recording.Dir != "" {
		return c.Recording.Dir
	}
	return filepath.Join(c.StateDir, "recordings")
}

// Log configures the daemon's slog output.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as "15m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default returns the embedded configuration.
func Default() Config {
	c, err := Parse(defaultYAML)
	if err != nil {
		panic("embedded sluice.yaml is invalid: " + err.Error())
	}
	return c
}

// Load reads and validates the configuration at path.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over the defaults and validates the result. Keys the
// document does not set keep their default values.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := decodeStrict(defaultYAML, &c); err != nil {
		return Config{}, fmt.Errorf("embedded defaults: %w", err)
	}
	if err := decodeStrict(b, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeStrict(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse config: %w", err)
	}
	return nil
}

// Protocols lists the protocol names a target may use.
var Protocols = []string{"tcp", "postgres", "http", "kubernetes"}

// Validate checks every field and says which one is wrong.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir %q: must be an absolute path", c.StateDir)
	}
	if !filepath.IsAbs(c.APISocket) {
		bad("api_socket %q: must be an absolute path", c.APISocket)
	}
	if c.ProxyPort == 0 {
		bad("proxy_port: must be set")
	}
	for _, l := range []struct{ key, v string }{{"api_listen", c.APIListen}, {"metrics_listen", c.MetricsListen}} {
		if l.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.v); err != nil {
			bad("%s %q: %v", l.key, l.v, err)
		}
	}
	if c.Cgroup == "" || strings.Contains(c.Cgroup, "..") || filepath.IsAbs(c.Cgroup) {
		bad("cgroup %q: must be a relative path below the cgroup2 mount", c.Cgroup)
	}
	if !filepath.IsAbs(c.BPFFS) {
		bad("bpf_fs %q: must be an absolute path", c.BPFFS)
	}
	if _, err := c.Resolvers(); err != nil {
		bad("dns: %v", err)
	}
	if c.PolicyDir != "" && !filepath.IsAbs(c.PolicyDir) {
		bad("policy_dir %q: must be an absolute path", c.PolicyDir)
	}
	if c.Issuer.Audience == "" {
		bad("issuer.audience: must be set")
	}
	if c.Issuer.MaxTTL <= 0 {
		bad("issuer.max_ttl: must be positive")
	}
	if c.Issuer.URL == "" && c.APIListen == "" {
		bad("issuer.url: must be set when api_listen is empty")
	}
	for i, e := range c.Issuers {
		if !strings.HasPrefix(e.URL, "https://") && !strings.HasPrefix(e.URL, "http://") {
			bad("issuers[%d].url %q: must be an http(s) URL", i, e.URL)
		}
		if e.Audience == "" {
			bad("issuers[%d].audience: must be set", i)
		}
	}
	names := map[string]bool{}
	for i, t := range c.Targets {
		where := fmt.Sprintf("targets[%d]", i)
		if t.Name == "" {
			bad("%s.name: must be set", where)
		} else if names[t.Name] {
			bad("%s.name %q: duplicate", where, t.Name)
		}
		names[t.Name] = true
		if _, err := ParseAddress(t.Address); err != nil {
			bad("%s (%s).address: %v", where, t.Name, err)
		}
		if !known(t.Protocol) {
			bad("%s (%s).protocol %q: want one of %s", where, t.Name, t.Protocol, strings.Join(Protocols, ", "))
		}
		cr := t.Credentials
		if cr.PasswordFile != "" && cr.PasswordEnv != "" {
			bad("%s (%s).credentials: set password_file or password_env, not both", where, t.Name)
		}
		if cr.TokenFile != "" && cr.TokenEnv != "" {
			bad("%s (%s).credentials: set token_file or token_env, not both", where, t.Name)
		}
		if (cr.ClientCertFile == "") != (cr.ClientKeyFile == "") {
			bad("%s (%s).credentials: client_cert_file and client_key_file go together", where, t.Name)
		}
		for _, f := range []struct{ key, v string }{{"password_file", cr.PasswordFile}, {"token_file", cr.TokenFile},
			{"client_cert_file", cr.ClientCertFile}, {"client_key_file", cr.ClientKeyFile}} {
			if f.v != "" && !filepath.IsAbs(f.v) {
				bad("%s (%s).credentials.%s %q: must be an absolute path", where, t.Name, f.key, f.v)
			}
		}
		if cr.Header != "" && (strings.ContainsAny(cr.Header, " :\r\n") || cr.Header == "") {
			bad("%s (%s).credentials.header %q: not a header name", where, t.Name, cr.Header)
		}
		if (t.Protocol == "tcp" || t.Protocol == "postgres") && (cr.TokenFile != "" || cr.TokenEnv != "" || cr.Header != "" || cr.ClientCertFile != "") {
			bad("%s (%s).credentials: tokens, headers and client certificates are for http and kubernetes targets", where, t.Name)
		}
		switch t.TLS.Mode {
		case "", "disable", "prefer", "require", "verify-ca", "verify-full":
		default:
			bad("%s (%s).tls.mode %q: want disable, prefer, require, verify-ca or verify-full", where, t.Name, t.TLS.Mode)
		}
		if t.TLS.CAFile != "" && !filepath.IsAbs(t.TLS.CAFile) {
			bad("%s (%s).tls.ca_file %q: must be an absolute path", where, t.Name, t.TLS.CAFile)
		}
		if t.Protocol == "postgres" && t.Credentials.Username == "" {
			bad("%s (%s).credentials.username: a postgres target needs the login sluice uses upstream", where, t.Name)
		}
	}
	if c.Approvals.Webhook != "" && !strings.HasPrefix(c.Approvals.Webhook, "https://") && !strings.HasPrefix(c.Approvals.Webhook, "http://") {
		bad("approvals.webhook %q: must be an http(s) URL", c.Approvals.Webhook)
	}
	if c.Approvals.DefaultTTL <= 0 {
		bad("approvals.default_ttl: must be positive")
	}
	switch c.Store.Driver {
	case "sqlite":
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn: a postgres store needs a connection string")
		}
	default:
		bad("store.driver %q: want sqlite or postgres", c.Store.Driver)
	}
	if c.Recording.Dir != "" && !filepath.IsAbs(c.Recording.Dir) {
		bad("recording.dir %q: must be an absolute path", c.Recording.Dir)
	}
	if c.Recording.ResultBytes < 0 || c.Recording.MaxBytes < 0 || c.Recording.MaxAge < 0 {
		bad("recording: limits must not be negative")
	}
	if r := c.Recording.Recipient; r != "" && !strings.HasPrefix(r, "age1") {
		bad("recording.recipient %q: want an age X25519 public key (age1...)", r)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format %q: want json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

func known(p string) bool {
	for _, k := range Protocols {
		if p == k {
			return true
		}
	}
	return false
}

// IssuerURL is the embedded issuer's "iss".
func (c *Config) IssuerURL() string {
	if c.Issuer.URL != "" {
		return strings.TrimSuffix(c.Issuer.URL, "/")
	}
	return "http://" + c.APIListen
}

// Resolvers parses the dns list; a bare IP means port 53.
func (c *Config) Resolvers() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range c.DNS {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			continue
		}
		a, err := netip.ParseAddr(strings.Trim(s, "[]"))
		if err != nil {
			return nil, fmt.Errorf("%q: not an ip or ip:port", s)
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	return out, nil
}

// Address is a parsed target address: an IP prefix (a single address is a
// /32 or /128) or a host name, and a port.
type Address struct {
	Prefix netip.Prefix
	Host   string
	Port   uint16
}

// ParseAddress parses "host:port", "ip:port", "[v6]:port" or "cidr:port".
func ParseAddress(s string) (Address, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Address{}, fmt.Errorf("%q: missing port", s)
	}
	hostPart, portPart := s[:i], s[i+1:]
	port, err := strconv.ParseUint(portPart, 10, 16)
	if err != nil || port == 0 {
		return Address{}, fmt.Errorf("%q: bad port %q", s, portPart)
	}
	hostPart = strings.TrimSuffix(strings.TrimPrefix(hostPart, "["), "]")
	if hostPart == "" {
		return Address{}, fmt.Errorf("%q: missing host", s)
	}
	a := Address{Port: uint16(port)}
	if strings.Contains(hostPart, "/") {
		p, err := netip.ParsePrefix(hostPart)
		if err != nil {
			return Address{}, fmt.Errorf("%q: %v", s, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a.Prefix = p.Masked()
		return a, nil
	}
	if ip, err := netip.ParseAddr(hostPart); err == nil {
		ip = ip.Unmap()
		a.Prefix = netip.PrefixFrom(ip, ip.BitLen())
		return a, nil
	}
	if strings.ContainsAny(hostPart, " /[]") {
		return Address{}, fmt.Errorf("%q: bad host %q", s, hostPart)
	}
	a.Host = strings.ToLower(strings.TrimSuffix(hostPart, "."))
	return a, nil
}

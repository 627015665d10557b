package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if c.ProxyPort != 15001 || c.Cgroup != "sluice" || c.APISocket != "/run/sluice/sluice.sock" {
		t.Errorf("Default() = %+v: unexpected defaults", c)
	}
	if c.IssuerURL() != "http://127.0.0.1:15002" {
		t.Errorf("IssuerURL() = %q", c.IssuerURL())
	}
	if time.Duration(c.Issuer.MaxTTL) != 24*time.Hour {
		t.Errorf("max_ttl = %v", time.Duration(c.Issuer.MaxTTL))
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"issue example", `
state_dir: /var/lib/sluice
api_socket: /run/sluice/sluice.sock
proxy_port: 15001
metrics_listen: 127.0.0.1:9464
cgroup: sluice
dns: [127.0.0.53]
policy_dir: /etc/sluice/policies
issuers:
  - url: https://token.actions.githubusercontent.com
    audience: sluice
targets:
  - name: web
    address: 198.18.0.2:80
    protocol: tcp
    labels: {env: production}
    credentials:
      username: app
      password_file: /etc/sluice/secrets/web
`, ""},
		{"unknown key", "proxy_prot: 1\n", "field proxy_prot not found"},
		{"bad port", "targets: [{name: a, address: '1.2.3.4:99999', protocol: tcp}]\n", "bad port"},
		{"unknown protocol", "targets: [{name: a, address: '1.2.3.4:80', protocol: ftp}]\n", `protocol "ftp"`},
		{"duplicate target", "targets: [{name: a, address: '1.2.3.4:80', protocol: tcp}, {name: a, address: '1.2.3.5:80', protocol: tcp}]\n", "duplicate"},
		{"relative state dir", "state_dir: var/lib\n", "state_dir"},
		{"cgroup escape", "cgroup: ../x\n", "cgroup"},
		{"bad dns", "dns: [resolver.local]\n", "dns"},
		{"bad ttl", "issuer: {max_ttl: forever}\n", "invalid duration"},
		{"two secrets", "targets: [{name: a, address: '1.2.3.4:80', protocol: tcp, credentials: {password_file: /x, password_env: Y}}]\n", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in     string
		prefix string
		host   string
		port   uint16
		bad    bool
	}{
		{in: "198.18.0.2:80", prefix: "198.18.0.2/32", port: 80},
		{in: "[2001:2::2]:443", prefix: "2001:2::2/128", port: 443},
		{in: "[::ffff:198.18.0.2]:80", prefix: "198.18.0.2/32", port: 80},
		{in: "198.18.0.0/15:5432", prefix: "198.18.0.0/15", port: 5432},
		{in: "198.18.0.7/24:5432", prefix: "198.18.0.0/24", port: 5432},
		{in: "[2001:2::/48]:22", prefix: "2001:2::/48", port: 22},
		{in: "DB.Internal.:5432", host: "db.internal", port: 5432},
		{in: "db.internal", bad: true},
		{in: "db.internal:0", bad: true},
		{in: ":80", bad: true},
		{in: "1.2.3.4/33:80", bad: true},
		{in: "a b:80", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseAddress(%q) = %+v, want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tt.in, err)
			continue
		}
		if got.Port != tt.port || got.Host != tt.host || (tt.prefix != "" && got.Prefix != netip.MustParsePrefix(tt.prefix)) {
			t.Errorf("ParseAddress(%q) = %+v, want prefix %s host %q port %d", tt.in, got, tt.prefix, tt.host, tt.port)
		}
	}
}

func TestResolvers(t *testing.T) {
	c := Default()
	c.DNS = []string{"127.0.0.53", "198.18.0.2:5353", "[2001:2::53]:53", "::1"}
	got, err := c.Resolvers()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.53:53", "198.18.0.2:5353", "[2001:2::53]:53", "[::1]:53"}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("Resolvers()[%d] = %s, want %s", i, got[i], w)
		}
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"198.18.0.2:80", "[2001:2::2]:443", "10.0.0.0/8:1", "db:5432", "", ":", "[:]:1", "[::ffff:1.2.3.4/120]:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if a.Port == 0 || (a.Host == "") == !a.Prefix.IsValid() {
			t.Fatalf("ParseAddress(%q) = %+v: accepted an incomplete address", s, a)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("proxy_port: 1\n"))
	f.Add([]byte("targets: [{name: a, address: '1.2.3.4:80', protocol: tcp}]\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
		}
	})
}

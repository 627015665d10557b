package ca

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadCreatesOnceAndPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CertPEM()) != string(b.CertPEM()) {
		t.Fatal("CA changed across loads")
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, st.Mode())
	}
	if !a.cert.IsCA {
		t.Error("CA certificate is not a CA")
	}
}

// TestLeafVerifies: a TLS client that trusts only the host CA verifies
// leaves for an IP address and for a DNS name (verify-full semantics).
func TestLeafVerifies(t *testing.T) {
	c, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		names []string
		dial  string
	}{
		{[]string{"db.internal", "198.18.0.2"}, "db.internal"},
		{[]string{"db.internal", "198.18.0.2"}, "198.18.0.2"},
		{[]string{"2001:2::2"}, "2001:2::2"},
	} {
		leaf, err := c.Leaf(tt.names...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: tt.dial, Roots: c.Pool()}); err != nil {
			t.Errorf("Leaf(%v) does not verify for %s: %v", tt.names, tt.dial, err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: c.Pool()}); err == nil {
			t.Errorf("Leaf(%v) verifies for an unrelated name", tt.names)
		}
	}
	// A full handshake over a pipe.
	leaf, _ := c.Leaf("db.internal")
	sc, cc := net.Pipe()
	go func() {
		s := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{*leaf}})
		_ = s.Handshake()
		s.Close()
	}()
	cl := tls.Client(cc, &tls.Config{ServerName: "db.internal", RootCAs: c.Pool()})
	if err := cl.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	cl.Close()
}

func TestLeafCacheAndRenewal(t *testing.T) {
	c, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Leaf("x")
	b, _ := c.Leaf("x")
	if a != b {
		t.Error("leaf not cached")
	}
	now := time.Now()
	c.now = func() time.Time { return now.Add(leafLifetime - time.Hour) }
	d, _ := c.Leaf("x")
	if d == a {
		t.Error("leaf near expiry not renewed")
	}
	if _, err := c.Leaf(); err == nil {
		t.Error("Leaf() without names: want error")
	}
}

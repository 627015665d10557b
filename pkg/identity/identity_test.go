package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func newIssuer(t *testing.T, url string) *Issuer {
	t.Helper()
	i, err := LoadIssuer(IssuerConfig{URL: url, Audience: "sluice", MaxTTL: time.Hour, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestMintVerify(t *testing.T) {
	iss := newIssuer(t, "http://127.0.0.1:15002")
	v, err := NewVerifier(VerifierConfig{Embedded: iss})
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := iss.Mint(MintRequest{Subject: "build-1", Groups: []string{"ci", "ops"}, TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify(minted) = %v", err)
	}
	if id.Subject != "build-1" || id.Issuer != "http://127.0.0.1:15002" || !id.Expiry.Equal(exp.Truncate(time.Second)) {
		t.Errorf("identity = %+v", id)
	}
	if g := id.Groups(); len(g) != 2 || g[0] != "ci" || g[1] != "ops" {
		t.Errorf("Groups() = %v", g)
	}
}

func TestKeyPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := IssuerConfig{URL: "http://x", Audience: "sluice", MaxTTL: time.Hour, StateDir: dir}
	a, err := LoadIssuer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadIssuer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.kid != b.kid {
		t.Errorf("key id changed across loads: %s != %s", a.kid, b.kid)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
}

func TestMintLimits(t *testing.T) {
	iss := newIssuer(t, "http://x")
	for _, req := range []MintRequest{
		{Subject: ""},
		{Subject: "a", TTL: 2 * time.Hour},
		{Subject: "a", TTL: -time.Second},
	} {
		if _, _, err := iss.Mint(req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Mint(%+v) = %v, want ErrBadRequest", req, err)
		}
	}
}

func sign(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyRefusals(t *testing.T) {
	iss := newIssuer(t, "http://127.0.0.1:15002")
	v, err := NewVerifier(VerifierConfig{Embedded: iss})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	good := map[string]any{"iss": iss.URL(), "sub": "a", "aud": "sluice", "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	wrongAud, _, _ := iss.Mint(MintRequest{Subject: "a", Audience: "other"})
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(t, iss.key, with("exp", now.Add(-time.Minute).Unix())), ErrExpired},
		{"unknown key", sign(t, other, good), ErrInvalid},
		{"wrong audience", wrongAud, ErrInvalid},
		{"unknown issuer", sign(t, other, with("iss", "https://evil.example")), ErrUnknownIssuer},
		{"no expiry", sign(t, iss.key, with("exp", nil)), ErrInvalid},
		{"no subject", sign(t, iss.key, with("sub", nil)), ErrInvalid},
		{"not a jwt", "abc", ErrMalformed},
		{"bad payload", "a.!!!.c", ErrMalformed},
		{"huge", strings.Repeat("a", MaxTokenSize+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), tt.token); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDiscovery: the embedded issuer's discovery document and JWKS work
// for a stock go-oidc client, which then verifies a minted token.
func TestDiscovery(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	iss := newIssuer(t, srv.URL)
	srv.Config.Handler = iss.Handler()
	p, err := oidc.NewProvider(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	tok, _, err := iss.Mint(MintRequest{Subject: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: "sluice"}).Verify(context.Background(), tok); err != nil {
		t.Fatalf("go-oidc verify via discovery: %v", err)
	}
}

// TestExternalIssuerUnavailable: an external issuer that cannot be reached
// refuses (ErrUnavailable) and is retried later, not cached as good.
func TestExternalIssuerUnavailable(t *testing.T) {
	emb := newIssuer(t, "http://embedded")
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	ext := newIssuer(t, url)
	now := time.Now()
	v, err := NewVerifier(VerifierConfig{Embedded: emb, External: []ExternalIssuer{{URL: url, Audience: "sluice"}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := ext.Mint(MintRequest{Subject: "a"})
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with issuer down = %v, want ErrUnavailable", err)
	}
}

func FuzzVerify(f *testing.F) {
	iss, err := LoadIssuer(IssuerConfig{URL: "http://x", Audience: "sluice", MaxTTL: time.Hour, StateDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	v, _ := NewVerifier(VerifierConfig{Embedded: iss})
	tok, _, _ := iss.Mint(MintRequest{Subject: "s"})
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8veCJ9.")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := v.Verify(context.Background(), s)
		if err == nil && (id.Subject == "" || id.Expiry.IsZero()) {
			t.Fatalf("Verify(%q) accepted an incomplete identity %+v", s, id)
		}
	})
}

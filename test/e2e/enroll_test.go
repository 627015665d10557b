package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sluice-gate/sluice/pkg/identity"
)

// sign makes a token the embedded issuer would never mint.
func sign(t *testing.T, key *ecdsa.PrivateKey, iss, aud string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": iss, "sub": "intruder", "aud": aud,
		"exp": exp.Unix(), "iat": time.Now().Add(-time.Hour).Unix(), "groups": []string{"ops"},
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEnrollmentRefusesBadTokens: each bad token is refused at enrollment
// with a message naming the failed check, and the command never runs.
func TestEnrollmentRefusesBadTokens(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	iss := fmt.Sprintf("http://127.0.0.1:%d", d.apiPort)
	stateKey, err := identity.LoadKey(filepath.Join(d.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, _, code := d.sluice("token", "--sub", "build-1", "--audience", "someone-else")
	if code != 0 {
		t.Fatal("mint wrong-audience token")
	}
	tests := []struct {
		name, token, want string
	}{
		{"expired", sign(t, stateKey, iss, "sluice", time.Now().Add(-time.Minute)), "token expired"},
		{"unknown key", sign(t, otherKey, iss, "sluice", time.Now().Add(time.Hour)), "token rejected"},
		{"wrong audience", strings.TrimSpace(wrongAud), "audience"},
		{"unknown issuer", sign(t, otherKey, "https://idp.invalid", "sluice", time.Now().Add(time.Hour)), "not configured"},
		{"garbage", "not-a-jwt", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := d.tokenFile(tt.token)
			out, errOut, code := d.job(f, "nobody", "echo", "RAN")
			if code != 1 || strings.Contains(out, "RAN") {
				t.Fatalf("sluice run with a bad token: exit %d stdout %q, want exit 1 and no run", code, out)
			}
			if !strings.Contains(errOut, "enrollment refused") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q, want %q", errOut, tt.want)
			}
		})
	}
	if got := d.metric(`sluice_enrollments_total{result="token_rejected"}`); got != float64(len(tests)) {
		t.Errorf("token_rejected enrollments = %v, want %d", got, len(tests))
	}
	if n := len(d.status().Jobs); n != 0 {
		t.Errorf("%d jobs after refused enrollments, want 0", n)
	}
}

// TestExternalIssuer: a token from a configured external OIDC issuer (its
// discovery document and JWKS fetched over HTTP by go-oidc) enrolls a job;
// its claims reach policy.
func TestExternalIssuer(t *testing.T) {
	w := remote(t)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	ext, err := identity.LoadIssuer(identity.IssuerConfig{URL: srv.URL, Audience: "sluice", MaxTTL: time.Hour, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = ext.Handler()
	d := newDaemon(t, targetsYAML(w)+fmt.Sprintf("issuers:\n  - url: %s\n    audience: sluice\n", srv.URL))

	tok, _, err := ext.Mint(identity.MintRequest{Subject: "gha-run-7", Groups: []string{"ops"}, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := d.tokenFile(tok)
	out, errOut, code := d.job(f, "nobody", "curl", "-sS", "--max-time", "10", fmt.Sprintf("http://%s:8081/", w.web.Addr4))
	if code != 0 || out != "hello from the remote host\n" {
		t.Fatalf("job with external token: exit %d %q %q", code, out, errOut)
	}
	d.waitLog("job enrolled", "subject=gha-run-7", "issuer="+srv.URL)
	d.waitLog("connection closed", "target=restricted", "subject=gha-run-7")

	// The same issuer with the wrong audience configured refuses it.
	other, _, err := ext.Mint(identity.MintRequest{Subject: "gha-run-8", TTL: time.Minute, Audience: "not-sluice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.job(d.tokenFile(other), "nobody", "true"); code != 1 || !strings.Contains(errOut, "audience") {
		t.Errorf("external token for another audience: exit %d %q", code, errOut)
	}
}

// TestTokenNeverLogged: neither a good nor a bad token shows up in the
// daemon's log.
func TestTokenNeverLogged(t *testing.T) {
	w := remote(t)
	d := newDaemon(t, targetsYAML(w))
	f := d.token("build-1", "ci", "10m")
	tok := readFile(t, f)
	d.job(f, "nobody", "true")
	bad := tok[:len(tok)-10] + "AAAAAAAAAA"
	d.job(d.tokenFile(bad), "nobody", "true")
	logs := d.Logs.String()
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	for _, secret := range []string{tok, bad, sig} {
		if strings.Contains(logs, strings.TrimSpace(secret)) {
			t.Fatalf("daemon log contains a token")
		}
	}
}

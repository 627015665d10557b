package identity

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Errors callers branch on. Every verification error wraps one of them.
var (
	ErrMalformed     = errors.New("malformed token")
	ErrUnknownIssuer = errors.New("token from an issuer that is not configured")
	ErrExpired       = errors.New("token expired")
	ErrInvalid       = errors.New("token rejected")
	ErrUnavailable   = errors.New("issuer unavailable")
)

// MaxTokenSize bounds the tokens Verify looks at.
const MaxTokenSize = 16 << 10

// Identity is a verified token.
type Identity struct {
	Issuer   string         `json:"issuer"`
	Subject  string         `json:"subject"`
	Audience []string       `json:"audience"`
	Expiry   time.Time      `json:"expiry"`
	IssuedAt time.Time      `json:"issued_at"`
	Claims   map[string]any `json:"claims"`
}

// Groups returns the "groups" claim as strings (absent: none).
func (id Identity) Groups() []string {
	raw, _ := id.Claims["groups"].([]any)
	var out []string
	for _, g := range raw {
		if s, ok := g.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ExternalIssuer is a configured OIDC issuer.
type ExternalIssuer struct {
	URL      string
	Audience string
}

// Verifier checks tokens from the embedded issuer and the external ones.
type Verifier struct {
	embedded *oidc.IDTokenVerifier
	embURL   string

	// mu guards external's lazily created verifiers.
	mu       sync.Mutex
	external map[string]*external
	client   *http.Client
	now      func() time.Time
}

type external struct {
	cfg      ExternalIssuer
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
	lastErr  error
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Embedded is the local issuer (required).
	Embedded *Issuer
	// External issuers; discovery happens on first use and is retried
	// at most every RetryAfter when it fails.
	External []ExternalIssuer
	// Client fetches external discovery documents and keys; nil means
	// http.DefaultClient.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

const retryAfter = 10 * time.Second

// NewVerifier builds a verifier. It does no network I/O.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Embedded == nil {
		return nil, errors.New("verifier: no embedded issuer")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{
		embURL: cfg.Embedded.URL(),
		embedded: oidc.NewVerifier(cfg.Embedded.URL(),
			&oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{cfg.Embedded.PublicKey()}},
			&oidc.Config{ClientID: cfg.Embedded.Audience(), SupportedSigningAlgs: []string{oidc.ES256}, Now: now}),
		external: map[string]*external{},
		client:   cfg.Client,
		now:      now,
	}
	if v.client == nil {
		v.client = http.DefaultClient
	}
	for _, e := range cfg.External {
		u := strings.TrimSuffix(e.URL, "/")
		if u == v.embURL {
			return nil, fmt.Errorf("verifier: external issuer %s is the embedded issuer", u)
		}
		v.external[u] = &external{cfg: ExternalIssuer{URL: u, Audience: e.Audience}}
	}
	return v, nil
}

// Verify checks raw and returns its identity.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	raw = strings.TrimSpace(raw)
	if len(raw) > MaxTokenSize {
		return Identity{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(raw), MaxTokenSize)
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return Identity{}, err
	}
	var verifier *oidc.IDTokenVerifier
	if iss == v.embURL {
		verifier = v.embedded
	} else {
		verifier, err = v.externalVerifier(ctx, iss)
		if err != nil {
			return Identity{}, err
		}
	}
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) && exp.Expiry.IsZero() {
			return Identity{}, fmt.Errorf("%w: no expiry", ErrInvalid)
		}
		if errors.As(err, &exp) {
			return Identity{}, fmt.Errorf("%w at %s", ErrExpired, exp.Expiry.UTC().Format(time.RFC3339))
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id := Identity{
		Issuer:   tok.Issuer,
		Subject:  tok.Subject,
		Audience: tok.Audience,
		Expiry:   tok.Expiry,
		IssuedAt: tok.IssuedAt,
	}
	if err := tok.Claims(&id.Claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if id.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	if id.Expiry.IsZero() {
		// A binding lives exactly as long as its token; a token that
		// never expires would make an eternal binding.
		return Identity{}, fmt.Errorf("%w: no expiry", ErrInvalid)
	}
	return id, nil
}

func (v *Verifier) externalVerifier(ctx context.Context, iss string) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.external[iss]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownIssuer, iss)
	}
	if e.verifier != nil {
		return e.verifier, nil
	}
	if !e.lastTry.IsZero() && v.now().Sub(e.lastTry) < retryAfter {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, iss, e.lastErr)
	}
	e.lastTry = v.now()
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, v.client), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, iss)
	if err != nil {
		e.lastErr = err
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, iss, err)
	}
	// The key set keeps using the client from this context for refreshes,
	// so give it one that outlives this request.
	e.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), v.client),
		&oidc.Config{ClientID: e.cfg.Audience, Now: v.now})
	return e.verifier, nil
}

// Issuers lists the issuers the verifier accepts, embedded first.
func (v *Verifier) Issuers() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := []string{v.embURL}
	for u := range v.external {
		out = append(out, u)
	}
	slices.Sort(out[1:])
	return out
}

// unverifiedIssuer reads "iss" from a compact JWS without checking
// anything; it only picks the verifier that will.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a compact JWT", ErrMalformed)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if c.Issuer == "" {
		return "", fmt.Errorf("%w: no iss claim", ErrMalformed)
	}
	return strings.TrimSuffix(c.Issuer, "/"), nil
}

package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KeyFile is the signing key's file name in the state directory.
const KeyFile = "issuer-key.pem"

// Paths served by Issuer.Handler, relative to the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	KeysPath      = "/keys"
)

// DefaultTTL is the lifetime of a minted token when none is asked for.
const DefaultTTL = 15 * time.Minute

// Issuer is the embedded OIDC issuer.
type Issuer struct {
	url      string
	audience string
	maxTTL   time.Duration
	key      *ecdsa.PrivateKey
	kid      string
	signer   jose.Signer
	now      func() time.Time
}

// IssuerConfig configures the embedded issuer.
type IssuerConfig struct {
	// URL is the "iss" of minted tokens.
	URL string
	// Audience is the default "aud" of minted tokens.
	Audience string
	// MaxTTL caps the lifetime of minted tokens.
	MaxTTL time.Duration
	// StateDir holds the signing key (created on first use, mode 0600).
	StateDir string
}

// Validate reports a missing field.
func (c IssuerConfig) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("issuer: url is empty")
	case c.Audience == "":
		return errors.New("issuer: audience is empty")
	case c.MaxTTL <= 0:
		return errors.New("issuer: max ttl must be positive")
	case c.StateDir == "":
		return errors.New("issuer: state dir is empty")
	}
	return nil
}

// LoadIssuer opens the embedded issuer, creating its key on first use.
func LoadIssuer(cfg IssuerConfig) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.StateDir, KeyFile))
	if err != nil {
		return nil, err
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("issuer signer: %w", err)
	}
	return &Issuer{
		url:      strings.TrimSuffix(cfg.URL, "/"),
		audience: cfg.Audience,
		maxTTL:   cfg.MaxTTL,
		key:      key,
		kid:      kid,
		signer:   signer,
		now:      time.Now,
	}, nil
}

// LoadKey reads the issuer's private key from a state directory. Tests use
// it to sign tokens the issuer would never mint (already expired, say).
func LoadKey(stateDir string) (*ecdsa.PrivateKey, error) {
	return readKey(filepath.Join(stateDir, KeyFile))
}

func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := readKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode issuer key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	// Write to a temporary file and link it into place, so that two
	// daemons starting at once agree on one key and nobody reads half a
	// file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".issuer-key-*")
	if err != nil {
		return nil, fmt.Errorf("write issuer key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write issuer key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("install issuer key: %w", err)
	}
	return key, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read issuer key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("read issuer key %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse issuer key %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("issuer key %s: not an ECDSA key", path)
	}
	return ek, nil
}

// keyID is the RFC 7638 JWK thumbprint of the public key.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// URL is the issuer's "iss".
func (i *Issuer) URL() string { return i.url }

// Audience is the default audience of minted tokens.
func (i *Issuer) Audience() string { return i.audience }

// PublicKey is the key tokens are signed with.
func (i *Issuer) PublicKey() crypto.PublicKey { return &i.key.PublicKey }

// MintRequest asks for a token.
type MintRequest struct {
	Subject  string
	Groups   []string
	TTL      time.Duration // 0 means DefaultTTL
	Audience string        // "" means the issuer's default audience
}

// ErrBadRequest marks a mint request the issuer refuses.
var ErrBadRequest = errors.New("bad token request")

type mintedClaims struct {
	jwt.Claims
	Groups []string `json:"groups"`
}

// Mint signs a token for the request. The TTL is capped at the issuer's
// maximum; a TTL above it is refused rather than silently shortened.
func (i *Issuer) Mint(req MintRequest) (string, time.Time, error) {
	if req.Subject == "" {
		return "", time.Time{}, fmt.Errorf("%w: subject is empty", ErrBadRequest)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 || ttl > i.maxTTL {
		return "", time.Time{}, fmt.Errorf("%w: ttl %s outside (0, %s]", ErrBadRequest, ttl, i.maxTTL)
	}
	aud := req.Audience
	if aud == "" {
		aud = i.audience
	}
	now := i.now()
	exp := now.Add(ttl)
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	c := mintedClaims{
		Claims: jwt.Claims{
			Issuer:    i.url,
			Subject:   req.Subject,
			Audience:  jwt.Audience{aud},
			Expiry:    jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id),
		},
		Groups: req.Groups,
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	tok, err := jwt.Signed(i.signer).Claims(c).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return tok, exp, nil
}

// Handler serves the discovery document and the JWKS at DiscoveryPath and
// KeysPath.
func (i *Issuer) Handler() http.Handler {
	discovery, _ := json.Marshal(map[string]any{
		"issuer":                                i.url,
		"jwks_uri":                              i.url + KeysPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "groups"},
	})
	keys, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle(DiscoveryPath, serve(discovery))
	mux.Handle(KeysPath, serve(keys))
	return mux
}

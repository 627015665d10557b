// Package credential reads the secrets sluice uses towards targets. Agents
// never see them: protocol handlers ask for a target's credentials when
// they connect upstream, and the secret is read fresh each time, so
// rotating the file (or variable) takes effect on the next connection.
package credential

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-gate/sluice/pkg/config"
)

// ErrNoSecret means the target has no password configured.
var ErrNoSecret = errors.New("no secret configured")

// maxSecret bounds a secret file.
const maxSecret = 64 << 10

// Secret is a credential for one upstream login.
type Secret struct {
	Username string
	Password string
}

// String never prints the password, so a Secret in a log line or error
// leaks nothing.
func (s Secret) String() string { return "credential(" + s.Username + ")" }

// Load reads the username and password of a target; ErrNoSecret means
// there is no password.
func Load(c config.Credentials) (Secret, error) {
	s := Secret{Username: c.Username}
	v, ok, err := read("password", c.PasswordFile, c.PasswordEnv)
	if err != nil {
		return Secret{}, err
	}
	if !ok {
		return s, ErrNoSecret
	}
	s.Password = v
	return s, nil
}

// HTTP is what sluice adds to requests towards an HTTP or Kubernetes
// target. Its String prints no secret.
type HTTP struct {
	// Header and Value: the header to set (Authorization for bearer
	// tokens and basic auth); empty Header means none.
	Header, Value string
	// Cert is the client certificate, when one is configured.
	Cert *tls.Certificate
}

func (h HTTP) String() string {
	return fmt.Sprintf("credential(header %q, client certificate %v)", h.Header, h.Cert != nil)
}

// LoadHTTP reads the credentials of an HTTP target fresh (so that a
// rotated token or certificate takes effect on the next connection). No
// credentials configured is not an error: the zero HTTP adds nothing.
func LoadHTTP(c config.Credentials) (HTTP, error) {
	var h HTTP
	token, hasToken, err := read("token", c.TokenFile, c.TokenEnv)
	if err != nil {
		return HTTP{}, err
	}
	password, hasPassword, err := read("password", c.PasswordFile, c.PasswordEnv)
	if err != nil {
		return HTTP{}, err
	}
	switch {
	case c.Header != "" && (hasToken || hasPassword):
		h.Header, h.Value = c.Header, token
		if !hasToken {
			h.Value = password
		}
	case hasToken:
		h.Header, h.Value = "Authorization", "Bearer "+token
	case c.Username != "" || hasPassword:
		h.Header = "Authorization"
		h.Value = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+password))
	}
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return HTTP{}, fmt.Errorf("load client certificate: %w", err)
		}
		h.Cert = &cert
	}
	return h, nil
}

// read returns a secret from a file or an environment variable; ok is
// false when neither is configured.
func read(what, file, env string) (v string, ok bool, err error) {
	switch {
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return "", false, fmt.Errorf("read %s file: %w", what, err)
		}
		if st.Size() > maxSecret {
			return "", false, fmt.Errorf("%s file %s: %d bytes, limit %d", what, file, st.Size(), maxSecret)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", false, fmt.Errorf("read %s file: %w", what, err)
		}
		// One trailing newline is an editor's, not the secret's.
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", false, fmt.Errorf("%s variable %s is not set", what, env)
		}
		return v, true, nil
	}
	return "", false, nil
}

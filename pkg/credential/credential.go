// Package credential reads the secrets sluice uses towards targets. Agents
// never see them: protocol handlers ask for a target's credentials when
// they connect upstream, and the secret is read fresh each time, so
// rotating the file (or variable) takes effect on the next connection.
package credential

import (
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

// Load reads the credentials of a target.
func Load(c config.Credentials) (Secret, error) {
	s := Secret{Username: c.Username}
	switch {
	case c.PasswordFile != "":
		st, err := os.Stat(c.PasswordFile)
		if err != nil {
			return Secret{}, fmt.Errorf("read password file: %w", err)
		}
		if st.Size() > maxSecret {
			return Secret{}, fmt.Errorf("password file %s: %d bytes, limit %d", c.PasswordFile, st.Size(), maxSecret)
		}
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return Secret{}, fmt.Errorf("read password file: %w", err)
		}
		// One trailing newline is an editor's, not the password's.
		s.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return Secret{}, fmt.Errorf("password variable %s is not set", c.PasswordEnv)
		}
		s.Password = v
	default:
		return s, ErrNoSecret
	}
	return s, nil
}

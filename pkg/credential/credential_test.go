package credential

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gate/sluice/pkg/config"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("s3cret pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_TEST_PW", "from-env")
	tests := []struct {
		c       config.Credentials
		want    string
		wantErr error
	}{
		{config.Credentials{Username: "app", PasswordFile: f}, "s3cret pass", nil},
		{config.Credentials{Username: "app", PasswordEnv: "SLUICE_TEST_PW"}, "from-env", nil},
		{config.Credentials{Username: "app"}, "", ErrNoSecret},
	}
	for _, tt := range tests {
		s, err := Load(tt.c)
		if !errors.Is(err, tt.wantErr) || s.Password != tt.want || s.Username != "app" {
			t.Errorf("Load(%+v) = %q, %v; want %q, %v", tt.c, s.Password, err, tt.want, tt.wantErr)
		}
	}
	if _, err := Load(config.Credentials{PasswordEnv: "SLUICE_TEST_UNSET"}); err == nil {
		t.Error("unset variable: want error")
	}
	s, _ := Load(config.Credentials{Username: "app", PasswordFile: f})
	if out := fmt.Sprintf("%v %+v %s", s, s, s); strings.Contains(out, "s3cret") {
		t.Errorf("formatting a Secret leaks the password: %s", out)
	}
}

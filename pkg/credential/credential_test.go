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

func TestLoadHTTP(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(tok, []byte("tok-123\n"), 0o600)
	os.WriteFile(pw, []byte("pa:ss"), 0o600)
	t.Setenv("SLUICE_TEST_TOKEN", "env-tok")
	tests := []struct {
		c             config.Credentials
		header, value string
	}{
		{config.Credentials{}, "", ""},
		{config.Credentials{TokenFile: tok}, "Authorization", "Bearer tok-123"},
		{config.Credentials{TokenEnv: "SLUICE_TEST_TOKEN"}, "Authorization", "Bearer env-tok"},
		{config.Credentials{Username: "u", PasswordFile: pw}, "Authorization", "Basic dTpwYTpzcw=="},
		{config.Credentials{Header: "X-Api-Key", TokenFile: tok}, "X-Api-Key", "tok-123"},
		{config.Credentials{Header: "X-Api-Key", PasswordFile: pw}, "X-Api-Key", "pa:ss"},
	}
	for _, tt := range tests {
		h, err := LoadHTTP(tt.c)
		if err != nil || h.Header != tt.header || h.Value != tt.value || h.Cert != nil {
			t.Errorf("LoadHTTP(%+v) = %q %q %v, want %q %q", tt.c, h.Header, h.Value, err, tt.header, tt.value)
		}
		if strings.Contains(fmt.Sprintf("%v %+v", h, h), "tok-123") {
			t.Errorf("formatting HTTP credentials leaks the token")
		}
	}
	if _, err := LoadHTTP(config.Credentials{TokenFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing token file: want error")
	}
	if _, err := LoadHTTP(config.Credentials{ClientCertFile: pw, ClientKeyFile: pw}); err == nil {
		t.Error("a client certificate that is not one: want error")
	}
}

package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// systemRoots are where distributions keep the trusted roots as one PEM
// file (Debian and derivatives first).
var systemRoots = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// writeCABundle writes the system roots followed by the host CA to path,
// readable by every user (jobs run as any user), replacing it atomically,
// and returns path. The bundle is what a job's TLS clients trust: the
// targets through sluice, and nothing else changes for them.
func writeCABundle(path string, caPEM []byte) (string, error) {
	var b bytes.Buffer
	for _, f := range systemRoots {
		if roots, err := os.ReadFile(f); err == nil {
			b.Write(roots)
			if len(roots) > 0 && roots[len(roots)-1] != '\n' {
				b.WriteByte('\n')
			}
			break
		}
	}
	b.WriteString("# sluice host CA\n")
	b.Write(caPEM)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".ca-bundle-*")
	if err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	return path, nil
}

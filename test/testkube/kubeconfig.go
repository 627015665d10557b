package testkube

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
)

// WriteKubeconfig writes a kubeconfig (mode 0600) whose one context talks
// to server with a bearer token, in namespace "default". With caPEM nil,
// kubectl does not verify the server's certificate.
func WriteKubeconfig(path, server, token string, caPEM []byte) error {
	trust := "insecure-skip-tls-verify: true"
	if caPEM != nil {
		trust = "certificate-authority-data: " + base64.StdEncoding.EncodeToString(caPEM)
	}
	conf := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testkube
  cluster:
    server: %s
    %s
users:
- name: testkube
  user:
    token: %s
contexts:
- name: testkube
  context:
    cluster: testkube
    user: testkube
    namespace: default
current-context: testkube
`, strconv.Quote(server), trust, strconv.Quote(token))
	return os.WriteFile(path, []byte(conf), 0o600)
}

package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/client"
)

// cmdKubeconfig prints a kubeconfig for a kubernetes target: the real
// server address (which steering sends to sluice), the host CA, and no
// credentials at all: sluice adds the target's own upstream.
func cmdKubeconfig(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "kubeconfig", "TARGET [--namespace NS]")
	sock := socketFlag(fs)
	ns := fs.String("namespace", "default", "the context's namespace")
	name, _, err := parseWithID(fs, args)
	if err != nil {
		return exitUsage
	}
	c := client.New(*sock)
	st, err := c.Status(ctx)
	if err != nil {
		return fail(e, "kubeconfig", err)
	}
	var t *api.Target
	for i := range st.Targets {
		if st.Targets[i].Name == name {
			t = &st.Targets[i]
		}
	}
	switch {
	case t == nil:
		return fail(e, "kubeconfig", fmt.Errorf("no target named %q", name))
	case t.Protocol != "kubernetes":
		return fail(e, "kubeconfig", fmt.Errorf("target %q is a %s target, not kubernetes", name, t.Protocol))
	}
	server, err := serverURL(t.Address)
	if err != nil {
		return fail(e, "kubeconfig", err)
	}
	pem, err := c.CA(ctx)
	if err != nil {
		return fail(e, "kubeconfig", err)
	}
	fmt.Fprintf(e.stdout, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: sluice
  user:
    # Not a credential: kubectl prompts for one when a user has none.
    # sluice strips it and adds the target's own credentials upstream.
    token: %[5]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: sluice
    namespace: %[4]s
current-context: %[1]s
`, yamlString(name), yamlString(server), base64.StdEncoding.EncodeToString(pem), yamlString(*ns), placeholderToken)
	return exitOK
}

// placeholderToken stands in the kubeconfig where a credential would.
const placeholderToken = "sluice-adds-credentials"

// serverURL is the https URL of a target address (host:port; a CIDR
// names no one server).
func serverURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.Contains(host, "/") {
		return "", errors.New("the target's address " + addr + " is not a single server")
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// yamlString quotes s for YAML (a JSON string is a YAML string).
func yamlString(s string) string { return fmt.Sprintf("%q", s) }

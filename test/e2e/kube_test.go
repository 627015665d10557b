package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gate/sluice/test/testdaemon"
	"github.com/sluice-gate/sluice/test/testhost"
	"github.com/sluice-gate/sluice/test/testkube"
)

// kubeWorld is a real Kubernetes control plane (etcd, kube-apiserver, a
// fake kubelet that runs exec'd commands as local processes) in its own
// network namespace.
type kubeWorld struct {
	host    *testhost.Host
	cluster *testkube.Cluster
}

var theKube shared[kubeWorld]

func kubeCluster(t *testing.T) *kubeWorld {
	t.Helper()
	remote(t)
	return theKube.get(t, "the Kubernetes control plane", (*kubeWorld).setup)
}

func (w *kubeWorld) setup() error {
	root, err := testkube.RepoRoot()
	if err != nil {
		return err
	}
	bin := testkube.DefaultBinDir(root)
	if testkube.Built(bin) == nil || os.Getenv(testkube.BuildEnv) == "1" {
		if _, err := testkube.Binaries(root); err != nil {
			return err
		}
	}
	if err := testkube.Available(bin); err != nil {
		return skipFixture("Kubernetes control plane: " + err.Error())
	}
	if w.host, err = testhost.New(hostPrefix, 5); err != nil {
		return err
	}
	atExit(func() { w.host.Close() })
	dir, err := os.MkdirTemp("", "sluice-e2e-kube-")
	if err != nil {
		return err
	}
	atExit(func() { os.RemoveAll(dir) })
	if w.cluster, err = testkube.Start(dir, w.host, bin); err != nil {
		return err
	}
	atExit(w.cluster.Stop)
	return nil
}

// target: the apiserver, labelled production, verified against the
// cluster's CA, with the admin token that only sluice holds.
func (w *kubeWorld) target(t *testing.T, dir string) string {
	t.Helper()
	tok := filepath.Join(dir, "kube-admin-token")
	if err := os.WriteFile(tok, []byte(w.cluster.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`  - {name: kube, address: "%s:%d", protocol: kubernetes, labels: {env: production},
     tls: {mode: verify-full, ca_file: %s, server_name: kubernetes.default.svc}, credentials: {token_file: %s}}
`, w.host.Addr4, testkube.APIPort, w.cluster.CAFile, tok)
}

// kubeAgent runs kubectl in a job with a kubeconfig from `sluice
// kubeconfig`, which holds no credentials.
type kubeAgent struct {
	d          *daemon
	w          *kubeWorld
	tok        string
	kubeconfig string
	home       string
}

func newKubeAgent(t *testing.T, d *daemon, w *kubeWorld, tok string) *kubeAgent {
	t.Helper()
	out, errOut, code := d.sluice("kubeconfig", "kube")
	if code != 0 {
		t.Fatalf("sluice kubeconfig: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, w.cluster.AdminToken) || !strings.Contains(out, "token: sluice-adds-credentials") {
		t.Fatalf("the kubeconfig holds a credential:\n%s", out)
	}
	a := &kubeAgent{d: d, w: w, tok: tok, kubeconfig: filepath.Join(d.dir, "agent.kubeconfig"), home: t.TempDir()}
	if err := os.WriteFile(a.kubeconfig, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

// cmd is `sluice run -- kubectl ARGS` with the agent's kubeconfig;
// websockets false makes kubectl use SPDY for exec.
func (a *kubeAgent) cmd(websockets bool, args ...string) *exec.Cmd {
	argv := []string{"run", "--token-file", a.tok, "--", "env",
		"KUBECONFIG=" + a.kubeconfig, "HOME=" + a.home,
		fmt.Sprintf("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=%t", websockets),
		fmt.Sprintf("KUBECTL_PORT_FORWARD_WEBSOCKETS=%t", websockets),
		a.w.cluster.KubectlBin}
	cmd := exec.Command(bins.sluice, append(argv, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+a.d.socket)
	return cmd
}

func (a *kubeAgent) run(stdin string, websockets bool, args ...string) (stdout, stderr string, code int) {
	cmd := a.cmd(websockets, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		a.d.t.Fatalf("run kubectl %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func (a *kubeAgent) kubectl(args ...string) (stdout, stderr string, code int) {
	return a.run("", true, args...)
}

// sessionWith returns the replay of the kube session whose replay holds
// every one of want.
func (d *daemon) sessionWith(t *testing.T, want ...string) (id, replay string) {
	t.Helper()
	waitFor(t, func() bool {
		for _, s := range d.sessions(t, "--target", "kube") {
			if s.State != "closed" {
				continue
			}
			out, _, _ := d.sluice("replay", s.ID, "--config", d.cfgPath)
			all := true
			for _, w := range want {
				all = all && strings.Contains(out, w)
			}
			if all {
				id, replay = s.ID, out
				return true
			}
		}
		return false
	}, fmt.Sprintf("a recorded kube session with %q", want))
	return id, replay
}

// TestKubernetes: unmodified kubectl, in a job, with a kubeconfig that
// holds no credentials, drives a real kube-apiserver through sluice: reads
// are allowed, deleting a production namespace is refused with a
// Kubernetes Status kubectl prints, Secret values are masked, exec works
// over WebSocket and SPDY with its stdin, stdout and exit status recorded,
// and exec into the prod namespace waits for a reviewer.
func TestKubernetes(t *testing.T) {
	w := remote(t)
	kw := kubeCluster(t)
	d := newDaemon(t, targetsYAML(w)+kw.target(t, t.TempDir()))
	a := newKubeAgent(t, d, kw, d.token("deploy-9", "ci", "30m"))
	t.Cleanup(func() {
		if os.Getenv("SLUICE_E2E_LOG") != "" {
			t.Log(d.Logs.String())
		}
	})

	t.Run("get pods", func(t *testing.T) {
		out, errOut, code := a.kubectl("get", "pods")
		if code != 0 || !strings.Contains(out, testkube.ShellPod) || !strings.Contains(out, "Running") {
			t.Fatalf("kubectl get pods: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("delete namespace refused", func(t *testing.T) {
		_, errOut, code := a.kubectl("delete", "namespace", testkube.ProdNamespace)
		want := `Error from server (Forbidden): sluice: deleting namespace "prod" is not allowed on production target "kube"`
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("kubectl delete ns prod: exit %d, stderr %q", code, errOut)
		}
		if out, errOut, err := kw.cluster.Kubectl("get", "namespace", testkube.ProdNamespace, "-o", "jsonpath={.status.phase}"); err != nil || out != "Active" {
			t.Errorf("namespace prod after the refusal: %q %q %v", out, errOut, err)
		}
	})

	t.Run("secret masked", func(t *testing.T) {
		for _, format := range []string{"yaml", "json"} {
			out, errOut, code := a.kubectl("get", "secret", testkube.SecretName, "-o", format)
			if code != 0 || !strings.Contains(out, testkube.SecretName) {
				t.Fatalf("kubectl get secret -o %s: exit %d\n%s%s", format, code, out, errOut)
			}
			if strings.Contains(out, "aHVudGVyMi1pbi1wcm9k") || strings.Contains(out, testkube.DBPassword) || !strings.Contains(out, "[REDACTED]") {
				t.Errorf("-o %s: the secret's values are not masked:\n%s", format, out)
			}
		}
		// The list, and a watch, are masked as well.
		out, errOut, code := a.kubectl("get", "secrets", "-o", "json")
		var list struct {
			Items []struct {
				Data map[string]string
			}
		}
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) == 0 {
			t.Fatalf("kubectl get secrets -o json: exit %d\n%s%s", code, out, errOut)
		}
		for _, it := range list.Items {
			for k, v := range it.Data {
				if v != "[REDACTED]" {
					t.Errorf("list: data %s = %q", k, v)
				}
			}
		}
		out, _, _ = a.kubectl("get", "secret", testkube.SecretName, "--watch", "-o", "json", "--request-timeout=2s")
		if !strings.Contains(out, testkube.SecretName) || strings.Contains(out, "aHVudGVyMi1pbi1wcm9k") {
			t.Errorf("watch: %s", out)
		}
		// kubectl's default output asks for a Table, whose cells path
		// rules cannot see: it gets the objects, masked, and prints them.
		out, errOut, code = a.kubectl("get", "secrets")
		if code != 0 || !strings.Contains(out, testkube.SecretName) {
			t.Errorf("kubectl get secrets: exit %d\n%s%s", code, out, errOut)
		}
		// Protobuf is not let through to bypass masking: a client asking
		// for it gets JSON.
		out, errOut, code = a.kubectl("get", "--raw", "/api/v1/namespaces/default/secrets/"+testkube.SecretName)
		if code != 0 || strings.Contains(out, "aHVudGVyMi1pbi1wcm9k") {
			t.Errorf("get --raw: exit %d %s %s", code, out, errOut)
		}
	})

	for _, ws := range []bool{true, false} {
		name := map[bool]string{true: "websocket", false: "spdy"}[ws]
		t.Run("exec "+name, func(t *testing.T) {
			line := "stdin over " + name
			out, errOut, code := a.run(line+"\n", ws, "exec", "-i", testkube.ShellPod, "--", "sh", "-c", "read l; echo got: $l; echo oops >&2; exit 3")
			if code != 3 || out != "got: "+line+"\n" || !strings.Contains(errOut, "oops") {
				t.Fatalf("kubectl exec: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			_, replay := d.sessionWith(t, strconv.Quote(line+"\n"))
			if os.Getenv("SLUICE_E2E_LOG") != "" {
				t.Log(replay)
			}
			for _, want := range []string{
				"exec stream started",
				`input ` + strconv.Quote(line+"\n"),
				`output ` + strconv.Quote("got: "+line+"\n"),
				`output "oops\n"`,
				", exit 3\n",
				"error      exit 3: command terminated with non-zero exit code",
				"agent TLS: TLS 1.3",
				"upstream TLS: TLS 1.3",
				"deploy-9",
			} {
				if !strings.Contains(replay, want) {
					t.Errorf("replay lacks %q:\n%s", want, replay)
				}
			}
		})
	}

	t.Run("attach", func(t *testing.T) {
		out, errOut, code := a.run("hello main process\n", true, "attach", "-i", testkube.ShellPod)
		if code != 0 || !strings.Contains(out, "hello main process") {
			t.Fatalf("kubectl attach: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		_, replay := d.sessionWith(t, "attach stream started", `input "hello main process\n"`)
		if !strings.Contains(replay, `output "hello main process\n"`) {
			t.Errorf("replay:\n%s", replay)
		}
	})

	for _, ws := range []bool{true, false} {
		name := map[bool]string{true: "websocket", false: "spdy"}[ws]
		t.Run("port-forward "+name, func(t *testing.T) {
			// The fake kubelet forwards to the pod host's loopback, where
			// etcd answers HTTP.
			local := freePort(t)
			cmd := a.cmd(ws, "port-forward", "pod/"+testkube.ShellPod, fmt.Sprintf("%d:2379", local))
			var out, errOut testdaemon.LogBuffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			waitFor(t, func() bool { return strings.Contains(out.String(), "Forwarding from") }, "kubectl port-forward to listen")
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/version", local))
			if err != nil {
				t.Fatalf("through the forward: %v (kubectl: %s)", err, errOut.String())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "etcdserver") {
				t.Fatalf("through the forward: %s", body)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_, replay := d.sessionWith(t, "portforward stream started", "GET /version")
			if !strings.Contains(replay, "etcdserver") {
				t.Errorf("replay lacks the forwarded response:\n%s", replay)
			}
		})
	}

	t.Run("exec into prod held until approved", func(t *testing.T) {
		alice := d.token("alice", "reviewers", "30m")
		cmd := a.cmd(true, "exec", "-n", testkube.ProdNamespace, testkube.ShellPod, "--", "echo", "approved run")
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		var id, last string
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("approvals: %s\nkubectl: %s %s", last, out.String(), errOut.String())
			}
		})
		waitFor(t, func() bool {
			o, _, _ := d.sluice("approvals", "list", "--json", "--token-file", alice)
			last = o
			var rs []map[string]any
			_ = json.Unmarshal([]byte(o), &rs)
			for _, r := range rs {
				if r["status"] == "pending" && r["target"] == "kube" && strings.HasSuffix(fmt.Sprint(r["operation"]), ` pods/exec shell -n prod -- echo "approved run"`) {
					id = r["id"].(string)
				}
			}
			return id != ""
		}, "the exec to be held")
		if o, e, code := d.sluice("approvals", "approve", id, "--token-file", alice, "--reason", "hotfix"); code != 0 {
			t.Fatalf("approve: %s %s", o, e)
		}
		if code := waitExit(t, cmd); code != 0 || out.String() != "approved run\n" {
			t.Fatalf("held kubectl exec: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
		_, replay := d.sessionWith(t, strconv.Quote("approved run\n"))
		for _, want := range []string{"alice", "hotfix"} {
			if !strings.Contains(replay, want) {
				t.Errorf("replay lacks %q:\n%s", want, replay)
			}
		}
	})
}

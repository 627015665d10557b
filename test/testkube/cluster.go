package testkube

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/test/testhost"
)

// Names of what every cluster has.
const (
	// Prefix names the network namespaces testkube creates.
	Prefix = "slk"
	// DefaultIndex is the host Start creates when given none. Host
	// addresses depend on the index only (198.18.<index>.2), so it stays
	// clear of the indexes other test packages use while they run in
	// parallel.
	DefaultIndex = 60
	// APIPort and KubeletPort are the ports on the host's Addr4.
	APIPort     = 6443
	KubeletPort = 10250
	// NodeName is the one node, served by the fake kubelet.
	NodeName = "node-1"
	// ShellPod is a Running pod in "default" (and in ProdNamespace) whose
	// single container, also named "shell", takes exec.
	ShellPod = "shell"
	// ProdNamespace is a second namespace.
	ProdNamespace = "prod"
	// Secret "db-creds" in "default" holds DBUser and DBPassword under the
	// keys "username" and "password".
	SecretName = "db-creds"
	DBUser     = "app"
	DBPassword = "hunter2-in-prod"
	// AdminUser is in system:masters; ViewerUser may read pods, logs,
	// namespaces, nodes, services and config maps (no secrets, no exec).
	AdminUser  = "admin"
	ViewerUser = "viewer"
)

// Cluster is a running control plane.
type Cluster struct {
	// URL is the apiserver, https://<Host.Addr4>:6443.
	URL string
	// CAPEM verifies the apiserver's serving certificate (and the fake
	// kubelet's); CAFile holds the same.
	CAPEM  []byte
	CAFile string
	// AdminToken and ViewerToken are bearer tokens of AdminUser and
	// ViewerUser.
	AdminToken, ViewerToken string
	// Kubeconfig is an admin kubeconfig for URL.
	Kubeconfig string
	// BinDir holds the programs; KubectlBin is kubectl.
	BinDir, KubectlBin string
	// Host is the network namespace everything runs in.
	Host *testhost.Host
	// Dir holds the configuration, data and logs (<name>.log).
	Dir string

	ownHost bool
	procs   []*process
	client  *http.Client
}

// process is one server of the cluster.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// StartT starts a cluster for a test in host number index of Prefix, or
// skips the test saying why it cannot (not root, no etcd, binaries not
// built). Missing binaries are built first when BuildEnv is 1; present ones
// are refreshed if their sources changed. The cluster stops, and the
// namespace goes, when the test ends; logs are printed if it failed.
func StartT(t testing.TB, index int) *Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testkube: needs root (network namespaces)")
	}
	if _, err := EtcdBinary(); err != nil {
		t.Skipf("testkube: %v", err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Skip(err)
	}
	bin := DefaultBinDir(root)
	if Built(bin) == nil || os.Getenv(BuildEnv) == "1" {
		if _, err := Binaries(root); err != nil {
			t.Fatal(err)
		}
	}
	if err := Available(bin); err != nil {
		t.Skipf("testkube: %v", err)
	}
	h, err := testhost.New(Prefix, index)
	if err != nil {
		t.Fatalf("testkube: %v", err)
	}
	c, err := start(t.TempDir(), h, bin, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		c.Stop()
	})
	return c
}

// Start starts a cluster in dir (which must exist) with the programs in
// binDir, inside host h. If h is nil it creates host DefaultIndex of Prefix and Stop
// removes it; a host passed in stays the caller's.
func Start(dir string, h *testhost.Host, binDir string) (*Cluster, error) {
	if err := Available(binDir); err != nil {
		return nil, fmt.Errorf("testkube: %w", err)
	}
	own := false
	if h == nil {
		var err error
		if h, err = testhost.New(Prefix, DefaultIndex); err != nil {
			return nil, fmt.Errorf("testkube: %w", err)
		}
		own = true
	}
	return start(dir, h, binDir, own)
}

func start(dir string, h *testhost.Host, binDir string, ownHost bool) (*Cluster, error) {
	c := &Cluster{
		URL:        "https://" + net.JoinHostPort(h.Addr4.String(), strconv.Itoa(APIPort)),
		BinDir:     binDir,
		KubectlBin: filepath.Join(binDir, "kubectl"),
		Host:       h,
		Dir:        dir,
		ownHost:    ownHost,
	}
	if err := c.boot(); err != nil {
		logs := c.Logs()
		c.Stop()
		return nil, fmt.Errorf("testkube: %w\n%s", err, logs)
	}
	return c, nil
}

// boot writes the configuration, starts etcd, the fake kubelet and the
// apiserver, and creates the cluster's objects.
func (c *Cluster) boot() error {
	t0 := time.Now()
	pki := filepath.Join(c.Dir, "pki")
	for _, d := range []string{pki, filepath.Join(c.Dir, "home"), filepath.Join(c.Dir, "root")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.writePKI(pki); err != nil {
		return err
	}
	c.AdminToken, c.ViewerToken = token(), token()
	tokens := fmt.Sprintf("%s,%s,uid-admin,\"system:masters\"\n%s,%s,uid-viewer,\"viewers\"\n",
		c.AdminToken, AdminUser, c.ViewerToken, ViewerUser)
	if err := os.WriteFile(filepath.Join(pki, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := c.WriteKubeconfig(c.Kubeconfig, c.URL, c.AdminToken, c.CAPEM); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	c.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:     c.dialInside,
			TLSClientConfig: &tls.Config{RootCAs: pool},
		},
	}

	etcd, err := EtcdBinary()
	if err != nil {
		return err
	}
	if _, err := c.run("etcd", etcd,
		"--name=testkube",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=testkube=http://127.0.0.1:2380",
		"--logger=zap", "--log-level=warn",
	); err != nil {
		return err
	}
	addr4 := c.Host.Addr4.String()
	if _, err := c.run("fake-kubelet", filepath.Join(c.BinDir, "fake-kubelet"),
		"-listen="+net.JoinHostPort(addr4, strconv.Itoa(KubeletPort)),
		"-tls-cert="+filepath.Join(pki, "kubelet.crt"),
		"-tls-key="+filepath.Join(pki, "kubelet.key"),
		"-client-ca="+c.CAFile,
		"-dir="+filepath.Join(c.Dir, "root"),
	); err != nil {
		return err
	}
	if err := c.waitPort("etcd", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 2379)); err != nil {
		return err
	}
	if _, err := c.run("kube-apiserver", filepath.Join(c.BinDir, "kube-apiserver"),
		"--bind-address="+addr4,
		"--advertise-address="+addr4,
		"--secure-port="+strconv.Itoa(APIPort),
		"--cert-dir="+pki,
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--client-ca-file="+c.CAFile,
		"--token-auth-file="+filepath.Join(pki, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--etcd-servers=http://127.0.0.1:2379",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		// Service addresses are only bookkeeping here (nothing routes
		// them); keep them in the benchmarking range all the same.
		"--service-cluster-ip-range=198.19.255.0/24",
		"--endpoint-reconciler-type=none",
		"--kubelet-certificate-authority="+c.CAFile,
		"--kubelet-client-certificate="+filepath.Join(pki, "kubelet-client.crt"),
		"--kubelet-client-key="+filepath.Join(pki, "kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := c.waitReady(90 * time.Second); err != nil {
		return err
	}
	if err := c.bootstrap(); err != nil {
		return fmt.Errorf("create objects: %w", err)
	}
	if err := c.waitPort("fake-kubelet", netip.AddrPortFrom(c.Host.Addr4, KubeletPort)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testkube: cluster up at %s in %v\n", c.URL, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// writePKI creates the CA and every certificate and key.
func (c *Cluster) writePKI(dir string) error {
	ca, err := newAuthority("testkube CA")
	if err != nil {
		return err
	}
	c.CAPEM = ca.pem
	c.CAFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(c.CAFile, ca.pem, 0o644); err != nil {
		return err
	}
	h := c.Host
	leaves := []struct {
		base string
		spec leafSpec
	}{
		{"apiserver", leafSpec{
			cn:     "kube-apiserver",
			dns:    []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			ips:    []net.IP{h.Addr4.AsSlice(), h.Addr6.AsSlice(), net.IPv4(127, 0, 0, 1), net.IPv4(198, 19, 255, 1)},
			server: true,
		}},
		{"kubelet", leafSpec{cn: NodeName, dns: []string{NodeName}, ips: []net.IP{h.Addr4.AsSlice()}, server: true}},
		{"kubelet-client", leafSpec{cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}}},
	}
	for _, l := range leaves {
		if err := ca.issue(dir, l.base, l.spec); err != nil {
			return err
		}
	}
	return writeServiceAccountKeys(dir)
}

func token() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run starts a server inside the host, logging to <name>.log.
func (c *Cluster) run(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, log: filepath.Join(c.Dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = c.Dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Host.Start(p.cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

// dead reports the first server that has exited.
func (c *Cluster) dead() error {
	for _, p := range c.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		default:
		}
	}
	return nil
}

// dialInside dials from inside the host's namespace, so that the harness
// reaches its servers directly whatever steers the host's own traffic.
func (c *Cluster) dialInside(ctx context.Context, network, addr string) (conn net.Conn, err error) {
	err = c.Host.Do(func() error {
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

func (c *Cluster) waitPort(name string, ap netip.AddrPort) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := c.dialInside(ctx, "tcp", ap.String())
		cancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if derr := c.dead(); derr != nil {
			return derr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s: %v", name, ap, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady polls the apiserver's /readyz.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		code, body, err := c.request("GET", "/readyz", "", nil)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", code, body)
		}
		if derr := c.dead(); derr != nil {
			return derr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver not ready after %v: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// request sends one admin request from inside the host.
func (c *Cluster) request(method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// API sends a request to the apiserver as the admin, directly (from inside
// the host), and returns the response body; a status other than 2xx is an
// error. A body is sent as JSON, or as a JSON merge patch for PATCH.
func (c *Cluster) API(method, path, body string) ([]byte, error) {
	ct := ""
	if body != "" {
		ct = "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
	}
	code, b, err := c.request(method, path, ct, []byte(body))
	if err != nil {
		return nil, err
	}
	if code/100 != 2 {
		return b, fmt.Errorf("%s %s: %d %s", method, path, code, bytes.TrimSpace(b))
	}
	return b, nil
}

// bootstrap creates the namespaces, node, pods, secret and role binding.
func (c *Cluster) bootstrap() error {
	// The apiserver creates "default" just after it is ready.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.API("GET", "/api/v1/namespaces/default", "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	addr := c.Host.Addr4.String()
	steps := []struct{ method, path, body string }{
		{"POST", "/api/v1/namespaces", `{"metadata":{"name":"` + ProdNamespace + `"}}`},
		// No controller manager runs to create the service accounts
		// that pods need.
		{"POST", "/api/v1/namespaces/default/serviceaccounts", `{"metadata":{"name":"default"}}`},
		{"POST", "/api/v1/namespaces/" + ProdNamespace + "/serviceaccounts", `{"metadata":{"name":"default"}}`},
		{"POST", "/api/v1/nodes", `{"metadata":{"name":"` + NodeName + `","labels":{"kubernetes.io/hostname":"` + NodeName + `","kubernetes.io/os":"linux"}}}`},
		{"PATCH", "/api/v1/nodes/" + NodeName + "/status", `{"status":{
			"addresses":[{"type":"InternalIP","address":"` + addr + `"},{"type":"Hostname","address":"` + NodeName + `"}],
			"daemonEndpoints":{"kubeletEndpoint":{"Port":` + strconv.Itoa(KubeletPort) + `}},
			"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},
			"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},
			"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"fake-kubelet is posting ready status",
				"lastHeartbeatTime":"` + now + `","lastTransitionTime":"` + now + `"}],
			"nodeInfo":{"kubeletVersion":"fake","osImage":"testkube","operatingSystem":"linux","architecture":"amd64",
				"containerRuntimeVersion":"fake://0","kernelVersion":"","kubeProxyVersion":"","machineID":"","systemUUID":"","bootID":""}}}`},
		{"POST", "/api/v1/namespaces/default/secrets", `{"metadata":{"name":"` + SecretName + `"},"type":"Opaque",
			"stringData":{"username":"` + DBUser + `","password":"` + DBPassword + `"}}`},
		// The built-in "view" role is aggregated by the controller
		// manager, which does not run here: a role of its own instead.
		{"POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", `{"metadata":{"name":"testkube-view"},
			"rules":[{"apiGroups":[""],"resources":["pods","pods/log","namespaces","nodes","services","configmaps"],"verbs":["get","list","watch"]}]}`},
		{"POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", `{"metadata":{"name":"testkube-viewer"},
			"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"testkube-view"},
			"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"` + ViewerUser + `"}]}`},
	}
	for _, s := range steps {
		if _, err := c.API(s.method, s.path, s.body); err != nil {
			return err
		}
	}
	for _, ns := range []string{"default", ProdNamespace} {
		if err := c.AddPod(ns, ShellPod); err != nil {
			return err
		}
	}
	return nil
}

// AddPod creates a pod with one container of the same name, bound to the
// node and marked Running and ready, so exec, attach, port-forward and
// logs reach the fake kubelet. Delete it with grace period 0: no kubelet
// confirms a graceful termination.
func (c *Cluster) AddPod(namespace, name string) error {
	pod := `{"metadata":{"name":"` + name + `","labels":{"app":"` + name + `"}},"spec":{
		"nodeName":"` + NodeName + `","automountServiceAccountToken":false,"terminationGracePeriodSeconds":0,
		"containers":[{"name":"` + name + `","image":"debian:12","command":["sleep","infinity"],"stdin":true}]}}`
	base := "/api/v1/namespaces/" + namespace + "/pods"
	if _, err := c.API("POST", base, pod); err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	addr := c.Host.Addr4.String()
	status := `{"status":{"phase":"Running","hostIP":"` + addr + `","hostIPs":[{"ip":"` + addr + `"}],
		"podIP":"` + addr + `","podIPs":[{"ip":"` + addr + `"}],"startTime":"` + now + `",
		"conditions":[
			{"type":"PodScheduled","status":"True","lastTransitionTime":"` + now + `"},
			{"type":"Initialized","status":"True","lastTransitionTime":"` + now + `"},
			{"type":"ContainersReady","status":"True","lastTransitionTime":"` + now + `"},
			{"type":"Ready","status":"True","lastTransitionTime":"` + now + `"}],
		"containerStatuses":[{"name":"` + name + `","ready":true,"started":true,"restartCount":0,
			"image":"docker.io/library/debian:12","imageID":"docker.io/library/debian@sha256:` + strings.Repeat("0", 64) + `",
			"containerID":"fake://` + namespace + `-` + name + `","state":{"running":{"startedAt":"` + now + `"}}}]}}`
	_, err := c.API("PATCH", base+"/"+name+"/status", status)
	return err
}

// KubectlCmd returns a kubectl command with the admin kubeconfig (through
// $KUBECONFIG) and its own $HOME. Run it with c.Run to reach the apiserver
// directly; add to Env to change the environment.
func (c *Cluster) KubectlCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.KubectlBin, args...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(c.Dir, "home"),
		"KUBECONFIG=" + c.Kubeconfig,
	}
	return cmd
}

// Run runs cmd inside the host's namespace and returns what it printed;
// cmd.Stdin may be set. A non-zero exit is an *exec.ExitError.
func (c *Cluster) Run(cmd *exec.Cmd) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := c.Host.Start(cmd); err != nil {
		return "", "", err
	}
	err = cmd.Wait()
	return out.String(), errb.String(), err
}

// Kubectl runs kubectl with args as the admin, directly (from inside the
// host).
func (c *Cluster) Kubectl(args ...string) (stdout, stderr string, err error) {
	return c.Run(c.KubectlCmd(args...))
}

// WriteKubeconfig writes a kubeconfig for server with a bearer token. With
// caPEM nil the server's certificate is not verified.
func (c *Cluster) WriteKubeconfig(path, server, token string, caPEM []byte) error {
	return WriteKubeconfig(path, server, token, caPEM)
}

// Logs returns the tail of each server's log.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(p.log)
		if len(data) > 8<<10 {
			data = data[len(data)-8<<10:]
		}
		fmt.Fprintf(&b, "==== %s (%s)\n%s\n", p.name, p.log, data)
	}
	return b.String()
}

// Stop kills the servers and, if Start created the host, removes it.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		testhost.Terminate(p.cmd.Process, syscall.SIGTERM, p.exited, 10*time.Second)
	}
	c.procs = nil
	if c.client != nil {
		c.client.CloseIdleConnections()
	}
	if c.ownHost && c.Host != nil {
		if err := c.Host.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testkube: remove %s: %v\n", c.Host.Name, err)
		}
		c.Host = nil
	}
}

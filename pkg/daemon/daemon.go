package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-gate/sluice/pkg/approval"
	"github.com/sluice-gate/sluice/pkg/bpf"
	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/pkg/cgroup"
	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/gate"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/job"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/httpproxy"
	"github.com/sluice-gate/sluice/pkg/protocol/kube"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres"
	"github.com/sluice-gate/sluice/pkg/protocol/tcp"
	"github.com/sluice-gate/sluice/pkg/recorder"
	"github.com/sluice-gate/sluice/pkg/store"
)

// DefaultConfigPath is read when no --config is given; if it does not
// exist the embedded defaults are used.
const DefaultConfigPath = "/etc/sluice/sluice.yaml"

// Options are sluiced's command-line settings.
type Options struct {
	// ConfigPath is the YAML configuration. Empty: DefaultConfigPath if it
	// exists, else the embedded defaults.
	ConfigPath string
	// LogOutput receives logs (nil: stderr).
	LogOutput io.Writer
}

// Log keys used by the daemon.
const (
	keyErr      = "err"
	keyPath     = "path"
	keyRevision = "revision"
	keyJob      = "job"
	keySubject  = "subject"
	keyIssuer   = "issuer"
	keyPID      = "pid"
	keyUID      = "uid"
	keyAddr     = "addr"
)

// daemon is one running sluiced.
type daemon struct {
	opts       Options
	configPath string // "" when running on embedded defaults
	started    time.Time
	log        *slog.Logger
	level      *slog.LevelVar

	mount    string
	features []bpf.Feature
	steering *bpf.Steering
	jobs     *job.Registry
	issuer   *identity.Issuer
	ca       *ca.CA
	store    *store.Store

	recorder    *recorder.Recorder
	caBundle    string // the system roots and the host CA, for jobs
	approvals   *approval.Service
	approvalAPI *approval.API
	webhook     *approval.Webhook
	gate        *gate.Gate
	metrics     *metrics
	registry    *prometheus.Registry

	// mu guards cfg, verifier, policySource, policyInfo, lastReload,
	// reloadErr.
	mu           sync.Mutex
	cfg          config.Config
	verifier     *identity.Verifier
	policySource string
	policyRev    string
	policyFiles  []string
	lastReload   time.Time
	reloadErr    error
}

// Run starts sluiced and blocks until ctx is cancelled (SIGINT/SIGTERM in
// cmd/sluiced) or a component fails. SIGHUP reloads configuration and
// policy.
func Run(ctx context.Context, opts Options) error {
	path, cfg, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	d := &daemon{opts: opts, configPath: path, cfg: cfg, started: time.Now()}
	d.initLog()
	if path == "" {
		d.log.Info("no configuration file; running on embedded defaults")
	}
	if err := d.setup(ctx); err != nil {
		d.teardown()
		return err
	}
	defer d.teardown()
	return d.serve(ctx)
}

func loadConfig(path string) (string, config.Config, error) {
	if path == "" {
		if _, err := os.Stat(DefaultConfigPath); err == nil {
			path = DefaultConfigPath
		} else {
			return "", config.Default(), nil
		}
	}
	cfg, err := config.Load(path)
	return path, cfg, err
}

func (d *daemon) initLog() {
	out := d.opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	d.level = new(slog.LevelVar)
	d.setLevel(d.cfg.Log.Level)
	hopts := &slog.HandlerOptions{Level: d.level}
	var h slog.Handler = slog.NewJSONHandler(out, hopts)
	if d.cfg.Log.Format == "text" {
		h = slog.NewTextHandler(out, hopts)
	}
	d.log = slog.New(h)
}

func (d *daemon) setLevel(s string) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	d.level.Set(l)
}

func (d *daemon) setup(ctx context.Context) error {
	cfg := d.cfg
	mount, err := cgroup.Mountpoint()
	if err != nil {
		return err
	}
	d.mount = mount
	// A daemon inside its own agents cgroup would steer its upstream
	// connections back into itself.
	if self, err := cgroup.Of(os.Getpid()); err == nil && cgroup.Within(self, cfg.Cgroup) {
		return fmt.Errorf("sluiced runs inside the agents cgroup %s; start it outside", self)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}

	d.registry = prometheus.NewRegistry()
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = newMetrics(d.registry)

	d.jobs, err = job.Open(job.Config{StateDir: cfg.StateDir, Mount: mount, Root: cfg.Cgroup, Log: d.log})
	if err != nil {
		return err
	}
	if err := bpf.EnsureFS(cfg.BPFFS); err != nil {
		return err
	}
	resolvers, _ := cfg.Resolvers()
	d.steering, err = bpf.Load(bpf.Config{
		Cgroup:    d.jobs.RootDir(),
		PinDir:    filepath.Join(cfg.BPFFS, cfg.Cgroup),
		ProxyPort: cfg.ProxyPort,
		Resolvers: resolvers,
	}, d.log)
	if err != nil {
		return err
	}
	d.metrics.registerKernel(d.registry, d.steering)
	d.features = bpf.Features()
	for _, a := range d.steering.Attachments() {
		d.log.Info("program attached", "program", a.Program, "link_id", a.LinkID, "reused", a.Reused)
	}

	d.issuer, err = identity.LoadIssuer(identity.IssuerConfig{
		URL: cfg.IssuerURL(), Audience: cfg.Issuer.Audience,
		MaxTTL: time.Duration(cfg.Issuer.MaxTTL), StateDir: cfg.StateDir,
	})
	if err != nil {
		return err
	}
	d.ca, err = ca.Load(cfg.StateDir)
	if err != nil {
		return err
	}
	if d.caBundle, err = writeCABundle(filepath.Join(filepath.Dir(cfg.APISocket), "ca-bundle.pem"), d.ca.CertPEM()); err != nil {
		return err
	}
	maskKey, err := loadSecret(filepath.Join(cfg.StateDir, "mask.key"), 32)
	if err != nil {
		return err
	}
	pg, err := postgres.New(postgres.Config{CA: d.ca, MaskKey: maskKey, Log: d.log.With("component", "postgres"), Registerer: d.registry})
	if err != nil {
		return err
	}
	web, err := httpproxy.New(httpproxy.Config{CA: d.ca, MaskKey: maskKey, Log: d.log.With("component", "http"), Registerer: d.registry})
	if err != nil {
		return err
	}
	k8s, err := kube.New(kube.Config{CA: d.ca, MaskKey: maskKey, Log: d.log.With("component", "kubernetes"), Registerer: d.registry})
	if err != nil {
		return err
	}
	d.store, err = store.Open(ctx, store.Config{Driver: cfg.Store.Driver, DSN: cfg.StoreDSN()})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	instance := make([]byte, 8)
	_, _ = rand.Read(instance)
	var notifier approval.Notifier
	if cfg.Approvals.Webhook != "" {
		sent, err := approval.NotificationCounter(d.registry)
		if err != nil {
			return err
		}
		d.webhook = &approval.Webhook{URL: cfg.Approvals.Webhook, PageURL: d.pageURL(cfg), Log: d.log.With("component", "approvals"), Sent: sent}
		notifier = d.webhook
	}
	d.approvals, err = approval.New(ctx, approval.Config{
		Store: &approval.SQL{DB: d.store.DB, Rebind: d.store.Rebind}, Instance: hex.EncodeToString(instance),
		DefaultTTL: time.Duration(cfg.Approvals.DefaultTTL), Host: host, Notifier: notifier,
		Log: d.log.With("component", "approvals"), Registerer: d.registry,
	})
	if err != nil {
		return err
	}
	d.approvalAPI = &approval.API{Service: d.approvals, Verifier: func() approval.Verifier {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.verifier
	}}
	if cfg.Recording.Enabled {
		var recipient age.Recipient
		if cfg.Recording.Recipient != "" {
			if recipient, err = age.ParseX25519Recipient(cfg.Recording.Recipient); err != nil {
				return fmt.Errorf("recording.recipient: %w", err)
			}
		}
		d.recorder, err = recorder.New(ctx, recorder.Config{
			Dir: cfg.RecordingDir(), Store: d.store, Instance: hex.EncodeToString(instance), Host: host,
			ResultCap: cfg.Recording.ResultBytes, Recipient: recipient,
			MaxAge: time.Duration(cfg.Recording.MaxAge), MaxBytes: cfg.Recording.MaxBytes,
			Log: d.log.With("component", "recorder"), Registerer: d.registry,
		})
		if err != nil {
			return err
		}
	}
	d.gate, err = gate.New(gate.Config{
		Approver:   d.approvals,
		Recorder:   d.recorder,
		Reserved:   reservedPorts(cfg),
		Port:       cfg.ProxyPort,
		Attributor: &intercept.Attributor{Tracker: d.steering, Root: d.jobs.Root},
		Jobs:       d.jobs,
		Handlers:   map[string]protocol.Handler{"tcp": tcp.Handler{}, "postgres": pg, "http": web, "kubernetes": k8s},
		Log:        d.log.With("component", "gate"),
		Registerer: d.registry,
	})
	if err != nil {
		return err
	}
	if err := d.apply(ctx, cfg); err != nil {
		return err
	}
	return d.gate.Listen()
}

func (d *daemon) teardown() {
	if d.recorder != nil {
		d.recorder.Close()
	}
	if d.store != nil {
		_ = d.store.Close()
	}
	if d.steering != nil {
		// Links stay pinned: agents keep being steered (and refused
		// while no daemon listens).
		_ = d.steering.Close()
	}
}

func (d *daemon) serve(ctx context.Context) error {
	cfg := d.cfg
	g, ctx := errgroup.WithContext(ctx)

	apiLn, err := listenUnix(cfg.APISocket)
	if err != nil {
		return err
	}
	apiSrv := &http.Server{Handler: d.apiHandler(), ConnContext: withPeer, ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{apiSrv}
	g.Go(func() error { return serveHTTP(apiSrv, apiLn) })

	if cfg.APIListen != "" {
		ln, err := net.Listen("tcp", cfg.APIListen)
		if err != nil {
			return fmt.Errorf("listen on api_listen %s: %w", cfg.APIListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle(identity.DiscoveryPath, d.issuer.Handler())
		mux.Handle(identity.KeysPath, d.issuer.Handler())
		mux.Handle("/", d.approvalAPI.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		g.Go(func() error { return serveHTTP(srv, ln) })
	}
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("listen on metrics_listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry}))
		if cfg.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		g.Go(func() error { return serveHTTP(srv, ln) })
	}

	g.Go(func() error { return d.gate.Serve(ctx) })
	if d.webhook != nil {
		g.Go(func() error { return d.webhook.Run(ctx) })
	}
	if d.recorder != nil {
		g.Go(func() error { return d.recorder.Run(ctx) })
	}
	g.Go(func() error { return d.jobs.Run(ctx) })
	g.Go(func() error { return d.watchReload(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})

	d.log.Info("sluiced ready",
		"proxy", d.gate.Addrs(), "api_socket", cfg.APISocket, "api_listen", cfg.APIListen,
		"metrics", cfg.MetricsListen, "cgroup", d.jobs.RootDir(), "issuer", d.issuer.URL())
	notifyReady()
	err = g.Wait()
	d.log.Info("sluiced stopped")
	return err
}

// pageURL is the approvals page as reviewers reach it.
func (d *daemon) pageURL(cfg config.Config) string {
	if cfg.Approvals.PageURL != "" {
		return cfg.Approvals.PageURL
	}
	if cfg.APIListen != "" {
		return "http://" + cfg.APIListen + approval.PathPage
	}
	return ""
}

// reservedPorts are the daemon's own TCP service ports: no job may reach
// them through a target.
func reservedPorts(cfg config.Config) []uint16 {
	var out []uint16
	for _, a := range []string{cfg.APIListen, cfg.MetricsListen} {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				out = append(out, uint16(n))
			}
		}
	}
	return out
}

func serveHTTP(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenUnix binds the API socket, root-only. A stale socket file from a
// crashed daemon is replaced; a live one is an error (two daemons).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create api socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("api socket %s: another sluiced is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale api socket: %w", err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on api socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// watchReload reloads on SIGHUP and when a policy file changes.
func (d *daemon) watchReload(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	changes, stop := d.watchPolicyDir(ctx)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.log.Info("SIGHUP: reloading configuration and policy")
			d.reload(ctx)
		case <-changes:
			d.log.Info("policy files changed: reloading")
			d.reload(ctx)
		}
	}
}

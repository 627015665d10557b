package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/gate"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/target"
	"github.com/sluice-gate/sluice/policies"
)

// apply builds everything that a reload may change and installs it only if
// all of it builds: a broken policy or target list leaves the previous
// configuration running.
func (d *daemon) apply(ctx context.Context, cfg config.Config) error {
	targets, err := target.NewSet(ctx, cfg.Targets, nil)
	if err != nil {
		return err
	}
	var (
		engine *policy.Engine
		source string
	)
	if cfg.PolicyDir == "" {
		engine, err = policy.LoadFS(ctx, policies.FS)
		source = "embedded"
	} else {
		engine, err = policy.LoadDir(ctx, cfg.PolicyDir)
		source = cfg.PolicyDir
	}
	if err != nil {
		return err
	}
	ext := make([]identity.ExternalIssuer, 0, len(cfg.Issuers))
	for _, e := range cfg.Issuers {
		ext = append(ext, identity.ExternalIssuer{URL: e.URL, Audience: e.Audience})
	}
	verifier, err := identity.NewVerifier(identity.VerifierConfig{Embedded: d.issuer, External: ext})
	if err != nil {
		return err
	}
	resolvers, err := cfg.Resolvers()
	if err != nil {
		return err
	}
	if err := d.steering.SetResolvers(resolvers); err != nil {
		return err
	}
	d.gate.SetState(gate.State{Targets: targets, Policy: engine})

	d.mu.Lock()
	d.cfg = cfg
	d.verifier = verifier
	d.policySource = source
	d.policyRev = engine.Revision()
	d.policyFiles = engine.Files()
	d.lastReload = time.Now()
	d.reloadErr = nil
	d.mu.Unlock()
	d.setLevel(cfg.Log.Level)
	d.log.Info("configuration applied", "targets", targets.Len(), "policy", source, keyRevision, engine.Revision(), "issuers", verifier.Issuers())
	return nil
}

// reload re-reads the configuration file and applies it. Settings that
// only take effect at start-up keep their running values, with a warning.
func (d *daemon) reload(ctx context.Context) {
	cfg := config.Default()
	if d.configPath != "" {
		var err error
		cfg, err = config.Load(d.configPath)
		if err != nil {
			d.reloadFailed(err)
			return
		}
	}
	d.mu.Lock()
	cur := d.cfg
	d.mu.Unlock()
	for _, f := range restartOnly(cur, cfg) {
		d.log.Warn("setting changed but needs a restart; keeping the running value", "setting", f)
	}
	keep := cur
	keep.DNS, keep.PolicyDir, keep.Issuers, keep.Targets, keep.Log = cfg.DNS, cfg.PolicyDir, cfg.Issuers, cfg.Targets, cfg.Log
	if err := d.apply(ctx, keep); err != nil {
		d.reloadFailed(err)
		return
	}
	d.metrics.reloads.WithLabelValues("ok").Inc()
}

func (d *daemon) reloadFailed(err error) {
	d.metrics.reloads.WithLabelValues("error").Inc()
	d.mu.Lock()
	d.reloadErr = err
	d.mu.Unlock()
	d.log.Error("reload failed; previous configuration stays in force", keyErr, err)
}

func restartOnly(a, b config.Config) []string {
	var out []string
	check := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	check("state_dir", a.StateDir == b.StateDir)
	check("api_socket", a.APISocket == b.APISocket)
	check("api_listen", a.APIListen == b.APIListen)
	check("proxy_port", a.ProxyPort == b.ProxyPort)
	check("metrics_listen", a.MetricsListen == b.MetricsListen)
	check("pprof", a.Pprof == b.Pprof)
	check("cgroup", a.Cgroup == b.Cgroup)
	check("bpf_fs", a.BPFFS == b.BPFFS)
	check("issuer", a.Issuer == b.Issuer)
	check("store", a.Store == b.Store)
	check("recording", a.Recording == b.Recording)
	check("approvals", a.Approvals == b.Approvals)
	return out
}

// watchPolicyDir sends on the returned channel (debounced) when a file in
// the policy directory changes. With embedded policies it never sends.
func (d *daemon) watchPolicyDir(ctx context.Context) (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	d.mu.Lock()
	dir := d.cfg.PolicyDir
	d.mu.Unlock()
	if dir == "" {
		return out, func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch policy dir; reload with SIGHUP", keyErr, err)
		return out, func() {}
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		d.log.Warn("cannot watch policy dir; reload with SIGHUP", keyPath, dir, keyErr, err)
		return out, func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if strings.HasSuffix(ev.Name, ".rego") {
					timer = time.After(200 * time.Millisecond)
				}
			case <-w.Errors:
			case <-timer:
				timer = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, func() { w.Close(); <-done }
}

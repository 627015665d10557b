package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/approval"
	"github.com/sluice-gate/sluice/pkg/cgroup"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/pkg/job"
)

// peer is the process on the other end of an API connection, as the kernel
// reports it (SO_PEERCRED): nothing in a request can claim otherwise.
type peer struct {
	pid, uid, gid int
	err           error
}

type peerKey struct{}

// withPeer records the connection's peer credentials in the request
// context (http.Server.ConnContext).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	p := peer{err: errors.New("not a unix socket")}
	if uc, ok := c.(*net.UnixConn); ok {
		p.err = errors.New("no peer credentials")
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
				if err != nil {
					p.err = err
					return
				}
				p = peer{pid: int(cred.Pid), uid: int(cred.Uid), gid: int(cred.Gid)}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// maxBody bounds API request bodies.
const maxBody = 64 << 10

func (d *daemon) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathEnroll, d.guard(d.handleEnroll))
	mux.HandleFunc("POST "+api.PathToken, d.guard(d.handleToken))
	mux.HandleFunc("GET "+api.PathStatus, d.guard(d.handleStatus))
	mux.HandleFunc("GET "+api.PathCA, d.guard(func(w http.ResponseWriter, _ *http.Request, _ peer) {
		writeJSON(w, http.StatusOK, map[string]string{"pem": string(d.ca.CertPEM())})
	}))
	// The approvals API, for reviewers on this host (the CLI): the same
	// as on api_listen, behind the same socket guard.
	approvals := d.approvalAPI.Handler()
	guarded := d.guard(func(w http.ResponseWriter, r *http.Request, _ peer) { approvals.ServeHTTP(w, r) })
	mux.Handle(approval.PathList, guarded)
	mux.Handle(approval.PathList+"/", guarded)
	mux.Handle(approval.PathWhoami, guarded)
	return mux
}

// guard admits only root callers outside every job cgroup. A process in a
// job must not mint tokens, re-enroll under another identity, or read the
// daemon's state, whatever its uid.
func (d *daemon) guard(h func(http.ResponseWriter, *http.Request, peer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if p.err != nil {
			d.refuseAPI(w, "no_peer", http.StatusForbidden, "cannot identify the caller: "+p.err.Error())
			return
		}
		if p.uid != 0 {
			d.refuseAPI(w, "not_root", http.StatusForbidden, fmt.Sprintf("uid %d may not use the sluice API (root only)", p.uid))
			return
		}
		cg, err := cgroup.Of(p.pid)
		if err != nil {
			d.refuseAPI(w, "no_cgroup", http.StatusForbidden, "cannot read the caller's cgroup")
			return
		}
		if d.jobs.Contains(cg) {
			d.log.Warn("API call from inside a job refused", keyPID, p.pid, "cgroup", cg, "path", r.URL.Path)
			d.refuseAPI(w, "in_job", http.StatusForbidden, "callers inside a sluice job may not use the sluice API")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r, p)
	}
}

func (d *daemon) refuseAPI(w http.ResponseWriter, reason string, code int, msg string) {
	d.metrics.apiRefused.WithLabelValues(reason).Inc()
	writeError(w, code, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad request body: trailing data")
	}
	return nil
}

func (d *daemon) handleEnroll(w http.ResponseWriter, r *http.Request, p peer) {
	var req api.EnrollRequest
	if err := decode(r, &req); err != nil {
		d.metrics.enrollments.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d.mu.Lock()
	v := d.verifier
	d.mu.Unlock()
	id, err := v.Verify(r.Context(), req.Token)
	if err != nil {
		d.metrics.enrollments.WithLabelValues("token_rejected").Inc()
		// The error names the check that failed, never the token.
		d.log.Warn("enrollment refused", keyPID, p.pid, keyErr, err)
		code := http.StatusUnauthorized
		if errors.Is(err, identity.ErrUnavailable) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, err.Error())
		return
	}
	root, err := intercept.Ancestors("", p.pid)
	if err != nil {
		d.metrics.enrollments.WithLabelValues("error").Inc()
		writeError(w, http.StatusConflict, "cannot read the caller's process: "+err.Error())
		return
	}
	b, err := d.jobs.Enroll(p.pid, p.uid, id, root)
	if err != nil {
		d.metrics.enrollments.WithLabelValues("error").Inc()
		d.log.Error("enrollment failed", keyPID, p.pid, keySubject, id.Subject, keyErr, err)
		code := http.StatusInternalServerError
		if errors.Is(err, job.ErrEnroll) {
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
		return
	}
	d.metrics.enrollments.WithLabelValues("ok").Inc()
	d.log.Info("job enrolled", keyJob, b.ID, keySubject, id.Subject, keyIssuer, id.Issuer,
		keyPID, p.pid, keyUID, p.uid, "expiry", id.Expiry.UTC().Format(time.RFC3339))
	writeJSON(w, http.StatusOK, api.EnrollResponse{
		Job: b.ID, Cgroup: b.Cgroup, Subject: id.Subject, Issuer: id.Issuer, Expiry: id.Expiry, CABundle: d.caBundle,
	})
}

func (d *daemon) handleToken(w http.ResponseWriter, r *http.Request, p peer) {
	var req api.TokenRequest
	if err := decode(r, &req); err != nil {
		d.metrics.tokens.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			d.metrics.tokens.WithLabelValues("bad_request").Inc()
			writeError(w, http.StatusBadRequest, "bad ttl: "+err.Error())
			return
		}
	}
	tok, exp, err := d.issuer.Mint(identity.MintRequest{Subject: req.Subject, Groups: req.Groups, TTL: ttl, Audience: req.Audience})
	if err != nil {
		d.metrics.tokens.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d.metrics.tokens.WithLabelValues("ok").Inc()
	d.log.Info("token minted", keySubject, req.Subject, "groups", req.Groups, "expiry", exp.UTC().Format(time.RFC3339), keyPID, p.pid)
	writeJSON(w, http.StatusOK, api.TokenResponse{Token: tok, Expiry: exp})
}

func (d *daemon) handleStatus(w http.ResponseWriter, r *http.Request, _ peer) {
	d.mu.Lock()
	cfg := d.cfg
	st := api.Status{
		Version:    api.Version,
		PID:        os.Getpid(),
		Started:    d.started,
		Config:     d.configPath,
		LastReload: d.lastReload,
		Issuer:     d.issuer.URL(),
		Issuers:    d.verifier.Issuers(),
		Policy:     api.Policy{Source: d.policySource, Revision: d.policyRev, Files: d.policyFiles},
	}
	if d.reloadErr != nil {
		st.ReloadError = d.reloadErr.Error()
	}
	d.mu.Unlock()
	if st.Config == "" {
		st.Config = "(embedded defaults)"
	}
	st.Proxy = d.gate.Addrs()
	st.APISocket, st.APIListen, st.MetricsListen = cfg.APISocket, cfg.APIListen, cfg.MetricsListen
	st.CgroupMount = d.mount
	st.Cgroup = d.jobs.RootDir()
	st.PinDir = filepath.Join(cfg.BPFFS, cfg.Cgroup)
	st.Features = d.features
	st.Programs = d.steering.Attachments()
	st.Kernel, _ = d.steering.Stats()
	st.DNS = cfg.DNS
	for _, t := range cfg.Targets {
		st.Targets = append(st.Targets, api.Target{Name: t.Name, Address: t.Address, Protocol: t.Protocol, Labels: t.Labels})
	}
	now := time.Now()
	for _, b := range d.jobs.List() {
		procs, _ := cgroup.Procs(filepath.Join(d.mount, b.Cgroup))
		st.Jobs = append(st.Jobs, api.Job{
			ID: b.ID, Cgroup: b.Cgroup, Subject: b.Identity.Subject, Issuer: b.Identity.Issuer,
			Groups: b.Identity.Groups(), PID: b.PID, Enrolled: b.Enrolled, Expiry: b.Identity.Expiry,
			Expired: b.Expired(now), Procs: len(procs),
		})
	}
	writeJSON(w, http.StatusOK, st)
}

package approval

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gate/sluice/pkg/identity"
)

//go:embed web
var webFS embed.FS

// Verifier authenticates reviewers' tokens. *identity.Verifier implements
// it.
type Verifier interface {
	Verify(ctx context.Context, raw string) (identity.Identity, error)
}

// Paths of the HTTP API and the page.
const (
	PathPage    = "/approvals/"
	PathLogin   = "/v1/login"
	PathLogout  = "/v1/logout"
	PathWhoami  = "/v1/whoami"
	PathList    = "/v1/approvals"
	PathEvents  = "/v1/approvals/events"
	sessionName = "sluice_session"
	// csrfHeader must accompany cookie-authenticated changes: a page on
	// another origin cannot set it without a CORS preflight sluice never
	// answers.
	csrfHeader = "X-Sluice-Request"
)

// API serves the approvals JSON API and web page. Every call is made by a
// reviewer identified by an OIDC token: "Authorization: Bearer" or, for
// the page, a session cookie obtained by logging in with one.
type API struct {
	Service  *Service
	Verifier func() Verifier

	// mu guards sessions.
	mu       sync.Mutex
	sessions map[string]webSession
}

type webSession struct {
	id      identity.Identity
	expires time.Time
}

// Handler returns the HTTP handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	page, _ := fs.Sub(webFS, "web")
	mux.Handle("GET "+PathPage, http.StripPrefix(PathPage, pageHandler(page)))
	mux.HandleFunc("POST "+PathLogin, a.login)
	mux.HandleFunc("POST "+PathLogout, a.logout)
	mux.HandleFunc("GET "+PathWhoami, a.reviewer(a.whoami))
	mux.HandleFunc("GET "+PathEvents, a.reviewer(a.events))
	mux.HandleFunc("GET "+PathList, a.reviewer(a.list))
	mux.HandleFunc("GET "+PathList+"/{id}", a.reviewer(a.get))
	mux.HandleFunc("POST "+PathList+"/{id}/approve", a.reviewer(a.decide(true)))
	mux.HandleFunc("POST "+PathList+"/{id}/deny", a.reviewer(a.decide(false)))
	return mux
}

func pageHandler(page fs.FS) http.Handler {
	files := http.FileServerFS(page)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (a *API) verifier() (Verifier, error) {
	if v := a.Verifier(); v != nil {
		return v, nil
	}
	return nil, errors.New("no token verifier")
}

// authenticate finds the reviewer of a request.
func (a *API) authenticate(r *http.Request) (identity.Identity, bool, error) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		v, err := a.verifier()
		if err != nil {
			return identity.Identity{}, false, err
		}
		id, err := v.Verify(r.Context(), strings.TrimPrefix(h, "Bearer "))
		return id, false, err
	}
	if c, err := r.Cookie(sessionName); err == nil {
		a.mu.Lock()
		s, ok := a.sessions[c.Value]
		a.mu.Unlock()
		if ok && time.Now().Before(s.expires) {
			return s.id, true, nil
		}
		return identity.Identity{}, true, errors.New("session expired; log in again")
	}
	return identity.Identity{}, false, errors.New("a reviewer token is required (Authorization: Bearer, or log in)")
}

func (a *API) reviewer(h func(http.ResponseWriter, *http.Request, identity.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, cookie, err := a.authenticate(r)
		if err != nil {
			a.Service.metrics.refusals.WithLabelValues("auth").Inc()
			writeErr(w, http.StatusUnauthorized, err.Error())
			return
		}
		if cookie && r.Method != http.MethodGet && r.Header.Get(csrfHeader) == "" {
			writeErr(w, http.StatusForbidden, "missing "+csrfHeader+" header")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h(w, r, id)
	}
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad request body")
		return
	}
	v, err := a.verifier()
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	id, err := v.Verify(r.Context(), req.Token)
	if err != nil {
		a.Service.metrics.refusals.WithLabelValues("auth").Inc()
		writeErr(w, http.StatusUnauthorized, err.Error())
		return
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	sid := hex.EncodeToString(b)
	a.mu.Lock()
	if a.sessions == nil {
		a.sessions = map[string]webSession{}
	}
	now := time.Now()
	for k, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sid] = webSession{id: id, expires: id.Expiry}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: sessionName, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Expires: id.Expiry, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, whoami(id))
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionName, Value: "", Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func whoami(id identity.Identity) map[string]any {
	return map[string]any{"subject": id.Subject, "issuer": id.Issuer, "groups": id.Groups(), "expiry": id.Expiry}
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, id identity.Identity) {
	writeJSON(w, http.StatusOK, whoami(id))
}

// visible reports whether a reviewer may see a request: they are in one of
// its reviewer groups (requests hold data; other identities see nothing).
func visible(r *Request, id identity.Identity) bool {
	return slices.ContainsFunc(id.Groups(), func(g string) bool { return slices.Contains(r.Reviewers, g) })
}

func (a *API) list(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	st := Status(r.URL.Query().Get("status"))
	if st == "all" {
		st = ""
	} else if st == "" {
		st = Pending
	}
	all, err := a.Service.List(r.Context(), st, 500)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []*Request{}
	for _, req := range all {
		if visible(req, id) {
			out = append(out, req)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	req, err := a.Service.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) || (err == nil && !visible(req, id)) {
		writeErr(w, http.StatusNotFound, ErrNotFound.Error())
		return
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (a *API) decide(approve bool) func(http.ResponseWriter, *http.Request, identity.Identity) {
	return func(w http.ResponseWriter, r *http.Request, id identity.Identity) {
		var body struct {
			Reason string `json:"reason"`
			Window string `json:"window"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeErr(w, http.StatusBadRequest, "bad request body")
			return
		}
		dec := Decision{Approve: approve, Reason: body.Reason}
		if body.Window != "" {
			d, err := time.ParseDuration(body.Window)
			if err != nil || d <= 0 {
				writeErr(w, http.StatusBadRequest, fmt.Sprintf("bad window %q", body.Window))
				return
			}
			dec.Window = d
		}
		req, err := a.Service.Decide(r.Context(), r.PathValue("id"), id, dec)
		switch {
		case errors.Is(err, ErrNotFound):
			writeErr(w, http.StatusNotFound, err.Error())
		case errors.Is(err, ErrSelfApproval), errors.Is(err, ErrNotReviewer):
			writeErr(w, http.StatusForbidden, err.Error())
		case errors.Is(err, ErrNotPending):
			writeErr(w, http.StatusConflict, err.Error())
		case errors.Is(err, ErrReason):
			writeErr(w, http.StatusBadRequest, err.Error())
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, req)
		}
	}
}

// events streams request changes as server-sent events ("approval" events
// carrying the request), so the page and `sluice approvals watch` update
// without polling.
func (a *API) events(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, stop := a.Service.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": sluice approvals\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		case req := <-ch:
			if !visible(req, id) {
				continue
			}
			b, _ := json.Marshal(req)
			fmt.Fprintf(w, "event: approval\ndata: %s\n\n", b)
			fl.Flush()
		}
	}
}

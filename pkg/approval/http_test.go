package approval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/identity"
)

// tokens is a Verifier whose tokens are the identities' names.
type tokens map[string]identity.Identity

func (t tokens) Verify(_ context.Context, raw string) (identity.Identity, error) {
	if id, ok := t[raw]; ok {
		return id, nil
	}
	return identity.Identity{}, errors.New("token rejected")
}

func TestAPI(t *testing.T) {
	st, _ := openStore(t)
	s := newService(t, st, "one")
	v := tokens{"alice": reviewer("alice", "reviewers"), "mallory": reviewer("mallory", "ci"), "build": reviewer("build-1", "reviewers")}
	api := &API{Service: s, Verifier: func() Verifier { return v }}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	call := func(c *http.Client, method, path, bearer, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return resp.StatusCode, b.String()
	}
	plain := http.DefaultClient

	if code, _ := call(plain, "GET", PathList, "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("list without a token: %d", code)
	}
	if code, _ := call(plain, "GET", PathList, "forged", "", nil); code != http.StatusUnauthorized {
		t.Errorf("list with a bad token: %d", code)
	}

	// The event stream sees the request arrive.
	evReq, _ := http.NewRequest("GET", srv.URL+PathEvents, nil)
	evReq.Header.Set("Authorization", "Bearer alice")
	evResp, err := http.DefaultClient.Do(evReq)
	if err != nil {
		t.Fatal(err)
	}
	defer evResp.Body.Close()
	events := bufio.NewScanner(evResp.Body)
	events.Scan() // the stream's opening comment

	id, _, vc := hold(t, s, context.Background(), session("build-1"), "CREATE TABLE a (i int)")
	deadline := time.Now().Add(5 * time.Second)
	for events.Scan() && !strings.HasPrefix(events.Text(), "data: ") {
		if time.Now().After(deadline) {
			t.Fatal("no event")
		}
	}
	if !strings.Contains(events.Text(), id) {
		t.Errorf("event %q lacks %s", events.Text(), id)
	}

	code, body := call(plain, "GET", PathList, "alice", "", nil)
	var list []Request
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].ID != id || list[0].Requester != "build-1" {
		t.Fatalf("alice's list: %d %s", code, body)
	}
	if _, body := call(plain, "GET", PathList, "mallory", "", nil); body != "[]" {
		t.Errorf("a non-reviewer sees requests: %s", body)
	}
	if code, _ := call(plain, "POST", PathList+"/"+id+"/approve", "build", `{}`, nil); code != http.StatusForbidden {
		t.Errorf("self-approval over the API: %d", code)
	}
	if code, _ := call(plain, "POST", PathList+"/"+id+"/approve", "mallory", `{}`, nil); code != http.StatusForbidden {
		t.Errorf("approval by a non-reviewer over the API: %d", code)
	}

	// The page's way: log in, then the cookie, with the CSRF header.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if code, body := call(browser, "POST", PathLogin, "", `{"token": "alice"}`, nil); code != 200 || !strings.Contains(body, `"subject":"alice"`) {
		t.Fatalf("login: %d %s", code, body)
	}
	if code, _ := call(browser, "POST", PathList+"/"+id+"/approve", "", `{}`, nil); code != http.StatusForbidden {
		t.Errorf("cookie approval without the CSRF header: %d", code)
	}
	code, body = call(browser, "POST", PathList+"/"+id+"/approve", "", `{"reason": "looks fine"}`, map[string]string{csrfHeader: "1"})
	if code != 200 || !strings.Contains(body, `"status":"approved"`) {
		t.Fatalf("approve through the page session: %d %s", code, body)
	}
	if v := <-vc; !v.Approved || v.Reviewer != "alice" {
		t.Errorf("verdict %+v", v)
	}
	if code, _ := call(plain, "GET", PathPage, "", "", nil); code != 200 {
		t.Errorf("page: %d", code)
	}
}

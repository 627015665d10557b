package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/test/testhost"
)

// webWorld is a remote HTTPS API: nginx with a certificate from its own
// CA (not sluice's), serving JSON over HTTP/2 and HTTP/1.1 on 8443 and
// plain HTTP on 8080.
type webWorld struct {
	host   *testhost.Host
	nginx  *testhost.Nginx
	caFile string // the upstream's CA, which sluice verifies it with
	cards  int    // objects in cards.json
}

var (
	theWeb   shared[webWorld]
	webCards = 100000
)

func httpWorld(t *testing.T) *webWorld {
	t.Helper()
	remote(t)
	return theWeb.get(t, "the HTTPS API", (*webWorld).setup)
}

func (w *webWorld) setup() error {
	var err error
	if w.host, err = testhost.New(hostPrefix, 4); err != nil {
		return err
	}
	atExit(func() { w.host.Close() })
	dir, err := os.MkdirTemp("", "sluice-e2e-api-")
	if err != nil {
		return err
	}
	atExit(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // nginx's workers run as nobody
		return err
	}
	upstreamCA, err := ca.Load(filepath.Join(dir, "ca"))
	if err != nil {
		return err
	}
	w.caFile = filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(w.caFile, upstreamCA.CertPEM(), 0o644); err != nil {
		return err
	}
	leaf, err := upstreamCA.Leaf("api.test", w.host.Addr4.String())
	if err != nil {
		return err
	}
	if w.nginx, err = testhost.StartNginxTLS(w.host, filepath.Join(dir, "nginx"), leaf, []int{8443}, 8080); err != nil {
		return err
	}
	atExit(w.nginx.Stop)
	if err := w.nginx.WriteFile("orders.json", []byte(`{"orders":[{"id":1,"total":12.5,"contact":"alice@example.com"}]}`+"\n")); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(`{"items":[`)
	w.cards = webCards
	for i := range w.cards {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"id":%d,"holder":"Customer %d","card":"4111 1111 1111 1111","ssn":"078-05-1120"}`, i, i)
	}
	b.WriteString("]}\n")
	return w.nginx.WriteFile("cards.json", []byte(b.String()))
}

// targets: the HTTPS API (production: no DELETE), verified against its
// own CA, with a bearer token; and its plain-HTTP port with an API key
// header.
func (w *webWorld) targets(t *testing.T, dir string) string {
	t.Helper()
	tok := filepath.Join(dir, "api-token")
	key := filepath.Join(dir, "api-key")
	if err := os.WriteFile(tok, []byte("upstream-token-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("upstream-key-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`  - {name: api, address: "%[1]s:8443", protocol: http, labels: {env: production},
     tls: {mode: verify-full, ca_file: %[2]s, server_name: api.test}, credentials: {token_file: %[3]s}}
  - {name: api-plain, address: "%[1]s:8080", protocol: http, credentials: {header: X-Api-Key, token_file: %[4]s}}
`, w.host.Addr4, w.caFile, tok, key)
}

// accessLog returns nginx's access log once it holds want (nginx logs a
// request after its response is out), or after a few seconds without.
func (w *webWorld) accessLog(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, err := w.nginx.AccessLines()
		if err != nil {
			t.Fatal(err)
		}
		log := strings.Join(lines, "\n")
		if strings.Contains(log, want) || time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHTTP: unmodified curl and a Go client, in a job, reach an HTTPS API
// through sluice without any flag: sluice's certificate verifies (the
// job's trust variables), HTTP/2 works, GET is allowed and DELETE is
// refused with a JSON reason, the target's token replaces the agent's own,
// a large JSON array streams back with its card numbers masked, and it
// is all recorded.
func TestHTTP(t *testing.T) {
	w := remote(t)
	api := httpWorld(t)
	d := newDaemon(t, targetsYAML(w)+api.targets(t, t.TempDir()))
	tok := d.token("deploy-3", "ci", "10m")
	base := "https://" + api.host.Addr4.String() + ":8443"

	t.Run("curl GET over HTTP/2 with the target's token", func(t *testing.T) {
		out, errOut, code := d.job(tok, "nobody", "curl", "-sS", "--http2", "-w", "\n%{http_version} %{http_code}",
			"-H", "Authorization: Bearer agent-own-token", base+"/orders.json")
		if code != 0 || !strings.Contains(out, `"orders"`) || !strings.HasSuffix(out, "2 200") {
			t.Fatalf("curl: exit %d %s %s", code, out, errOut)
		}
		if !strings.Contains(out, "a****@example.com") || strings.Contains(out, "alice@") {
			t.Errorf("the e-mail address is not masked: %s", out)
		}
		log := api.accessLog(t, `"GET /orders.json HTTP/2.0" 200 "Bearer upstream-token-7"`)
		if !strings.Contains(log, `"GET /orders.json HTTP/2.0" 200 "Bearer upstream-token-7"`) || strings.Contains(log, "agent-own-token") {
			t.Errorf("nginx saw:\n%s", log)
		}
	})

	t.Run("curl DELETE refused", func(t *testing.T) {
		out, _, _ := d.job(tok, "nobody", "curl", "-sS", "-X", "DELETE", "-w", "\n%{http_code}", base+"/orders.json")
		i := strings.LastIndexByte(out, '\n')
		body, status := strings.TrimSpace(out[:max(i, 0)]), out[i+1:]
		var refusal map[string]string
		if status != "403" || json.Unmarshal([]byte(body), &refusal) != nil ||
			refusal["reason"] != `sluice: DELETE /orders.json is not allowed on production target "api"` {
			t.Errorf("DELETE: %q", out)
		}
		if strings.Contains(api.accessLog(t, ""), "DELETE") {
			t.Error("the DELETE reached nginx")
		}
	})

	t.Run("large JSON array masked as it streams", func(t *testing.T) {
		out, errOut, code := d.job(tok, "nobody", "curl", "-sS", "--compressed", base+"/cards.json")
		if code != 0 {
			t.Fatalf("curl: exit %d %s", code, errOut)
		}
		var v struct{ Items []map[string]any }
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Items) != api.cards {
			t.Fatalf("masked body: %v, %d items", err, len(v.Items))
		}
		if n := strings.Count(out, "4111 1111") + strings.Count(out, "078-05"); n > 0 {
			t.Errorf("%d card numbers or SSNs passed unmasked", n)
		}
		if v.Items[7]["card"] != "[REDACTED:pan]" || v.Items[7]["holder"] != "Customer 7" {
			t.Errorf("item 7: %v", v.Items[7])
		}
	})

	t.Run("Go client", func(t *testing.T) {
		out, errOut, code := d.job(tok, "nobody", bins.agent, "http", "GET", base+"/orders.json")
		var r struct {
			OK     bool
			Status int
			Proto  string
			Head   string
			Err    string
		}
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.OK || r.Status != 200 || r.Proto != "HTTP/2.0" || !strings.Contains(r.Head, `"orders"`) {
			t.Errorf("Go client: exit %d %s %s", code, out, errOut)
		}
	})

	t.Run("plain HTTP with an API key header", func(t *testing.T) {
		plain := "http://" + api.host.Addr4.String() + ":8080/orders.json"
		out, errOut, code := d.job(tok, "nobody", "curl", "-sS", "-H", "X-Api-Key: agent-key", plain)
		if code != 0 || !strings.Contains(out, `"orders"`) {
			t.Fatalf("curl: exit %d %s %s", code, out, errOut)
		}
		log := api.accessLog(t, `"GET /orders.json HTTP/1.1" 200 "-" "upstream-key-9"`)
		if !strings.Contains(log, `"GET /orders.json HTTP/1.1" 200 "-" "upstream-key-9"`) || strings.Contains(log, "agent-key") {
			t.Errorf("nginx saw:\n%s", log)
		}
	})

	t.Run("recorded", func(t *testing.T) {
		var id string
		waitFor(t, func() bool {
			for _, s := range d.sessions(t, "--target", "api") {
				if s.State == "closed" && s.Refusals == 1 {
					id = s.ID
				}
			}
			return id != ""
		}, "the DELETE session in the index")
		replay, _, _ := d.sluice("replay", id, "--config", d.cfgPath)
		for _, want := range []string{"DELETE /orders.json", "is not allowed on production target", "deploy-3"} {
			if !strings.Contains(replay, want) {
				t.Errorf("replay lacks %q:\n%s", want, replay)
			}
		}
	})
}

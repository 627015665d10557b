package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/test/testhost"
)

// HTTP part of `make bench`: nginx serving a small JSON document over
// HTTPS and plain HTTP; a keep-alive load of 8 connections, directly and
// through sluice (policy, recording and the default masking for every
// request).
const (
	webPlainPort = 9080
	webTLSPort   = 9443
	webConns     = 8
)

type webBench struct {
	nginx  *testhost.Nginx
	host   *testhost.Host
	caFile string
}

func startWebBench(h *testhost.Host, dir string) (*webBench, error) {
	// nginx's workers run as nobody and must reach the document root.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	upstream, err := ca.Load(filepath.Join(dir, "web-ca"))
	if err != nil {
		return nil, err
	}
	w := &webBench{host: h, caFile: filepath.Join(dir, "web-ca.pem")}
	if err := os.WriteFile(w.caFile, upstream.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	leaf, err := upstream.Leaf("bench.test", h.Addr4.String())
	if err != nil {
		return nil, err
	}
	ndir := filepath.Join(dir, "nginx")
	if w.nginx, err = testhost.StartNginxTLS(h, ndir, leaf, []int{webTLSPort}, webPlainPort); err != nil {
		return nil, err
	}
	doc := `{"id":4711,"status":"shipped","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"total":31.5}` + "\n"
	if err := w.nginx.WriteFile("order.json", []byte(doc)); err != nil {
		w.nginx.Stop()
		return nil, err
	}
	return w, nil
}

func (w *webBench) stop() { w.nginx.Stop() }

func (w *webBench) targets() string {
	return fmt.Sprintf("  - {name: web-tls, address: \"%[1]s:%[2]d\", protocol: http, tls: {mode: verify-full, ca_file: %[3]s, server_name: bench.test}}\n"+
		"  - {name: web-plain, address: \"%[1]s:%[4]d\", protocol: http}\n", w.host.Addr4, webTLSPort, w.caFile, webPlainPort)
}

// webResult is what the http client mode prints.
type webResult struct {
	Requests int64   `json:"requests"`
	Nanos    int64   `json:"nanos"`
	Lat      []int64 `json:"lat_ns"` // a sample of latencies
}

// webLoad runs conns keep-alive HTTP/1.1 connections doing GET url in a
// loop for d. ca, when set, is trusted besides the system roots (which
// include, through sluice run, the host CA).
func webLoad(url, caFile string, conns int, d time.Duration) (webResult, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return webResult{}, err
		}
		roots.AppendCertsFromPEM(pem)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, ServerName: "bench.test"},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1: one connection per worker
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu  sync.Mutex
		res webResult
		wg  sync.WaitGroup
		bad error
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			var lat []int64
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						bad = err
						mu.Unlock()
					}
					break
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					if ctx.Err() == nil {
						mu.Lock()
						bad = fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
						mu.Unlock()
					}
					break
				}
				n++
				if n%4 == 0 {
					lat = append(lat, int64(time.Since(t0)))
				}
			}
			mu.Lock()
			res.Requests += n
			res.Lat = append(res.Lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Nanos = int64(time.Since(start))
	return res, bad
}

func p50(ns []int64) time.Duration {
	if len(ns) == 0 {
		return 0
	}
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return time.Duration(s[len(s)/2])
}

// runWeb prints the HTTP table: requests/s and p50 latency, direct vs
// through sluice, for HTTPS and plain HTTP.
func runWeb(w *webBench, self string, gated func(...string) *exec.Cmd, seconds int) error {
	fmt.Printf("\nHTTP: GET of a small JSON document, %d keep-alive connections, %ds per run (through sluice: policy, recording and masking per request)\n", webConns, seconds)
	fmt.Printf("  %-6s %12s %12s %7s %12s %12s %12s\n", "", "req/s direct", "req/s sluice", "ratio", "p50 direct", "p50 sluice", "p50 added")
	for _, v := range []struct {
		name, url string
		port      int
	}{{"https", "https://%s:%d/order.json", webTLSPort}, {"http", "http://%s:%d/order.json", webPlainPort}} {
		url := fmt.Sprintf(v.url, w.host.Addr4, v.port)
		args := []string{"-mode=http", "-url=" + url, fmt.Sprintf("-conns=%d", webConns), fmt.Sprintf("-seconds=%d", seconds)}
		var rd, rg webResult
		if err := measureJSON(exec.Command(self, append([]string{"client", "-ca=" + w.caFile}, args...)...), &rd); err != nil {
			return err
		}
		if err := measureJSON(gated(args...), &rg); err != nil {
			return err
		}
		rpsD := float64(rd.Requests) / (float64(rd.Nanos) / 1e9)
		rpsG := float64(rg.Requests) / (float64(rg.Nanos) / 1e9)
		fmt.Printf("  %-6s %12.0f %12.0f %7.2f %12s %12s %12s\n", v.name, rpsD, rpsG, rpsG/rpsD,
			p50(rd.Lat).Round(time.Microsecond), p50(rg.Lat).Round(time.Microsecond), (p50(rg.Lat) - p50(rd.Lat)).Round(time.Microsecond))
	}
	return nil
}

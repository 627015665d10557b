package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// webResult is what "agent http" prints.
type webResult struct {
	OK     bool   `json:"ok"`
	Err    string `json:"err,omitempty"`
	Status int    `json:"status,omitempty"`
	Proto  string `json:"proto,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Head   string `json:"head,omitempty"` // the first 512 bytes of the body
}

// web does one request with Go's default client, which trusts what
// SSL_CERT_FILE names (sluice run points it at the host CA bundle) and
// speaks HTTP/2 over TLS when the server offers it.
//
//	agent http METHOD URL [HEADER: VALUE]...
func web(args []string) {
	var r webResult
	defer func() {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		if !r.OK {
			os.Exit(1)
		}
	}()
	if len(args) < 2 {
		r.Err = "usage: agent http METHOD URL [HEADER: VALUE]..."
		return
	}
	req, err := http.NewRequest(args[0], args[1], nil)
	if err != nil {
		r.Err = err.Error()
		return
	}
	for _, h := range args[2:] {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.Err = err.Error()
		return
	}
	defer resp.Body.Close()
	r.Status, r.Proto = resp.StatusCode, resp.Proto
	h := sha256.New()
	head := &capped{max: 512}
	r.Bytes, err = io.Copy(io.MultiWriter(h, head), resp.Body)
	r.SHA256, r.Head = hex.EncodeToString(h.Sum(nil)), string(head.b)
	if err != nil {
		r.Err = err.Error()
		return
	}
	r.OK = true
}

// capped keeps the first max bytes written to it.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

package httpproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/sluice-gate/sluice/pkg/policy"
)

// Limits on what an operation carries, so that a request cannot make
// policy input arbitrarily large.
const (
	maxOpHeaders     = 64
	maxOpHeaderValue = 1 << 10
	maxOpQueryKeys   = 64
)

// secretHeaders never reach policy or the recording with their values:
// policy sees that they were sent (operation.credentials), and the target
// never sees them at all (the target's own credentials replace them).
var secretHeaders = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"cookie":              true,
}

// errBadPath refuses paths whose meaning could differ between policy and
// the target.
var errBadPath = errors.New("path has dot segments or an encoded slash; sluice cannot tell what it names")

// operation builds the policy operation of r. A JSON body of up to max
// bytes is read (and put back for the target) so that policy sees it;
// other bodies are not read before the decision, so that a refused
// upload with "Expect: 100-continue" never sends its body.
func operation(proto string, r *http.Request, max int, secretHeader string) (policy.Operation, error) {
	if err := checkPath(r.URL.EscapedPath()); err != nil {
		return policy.Operation{}, err
	}
	method := r.Method
	f := map[string]any{
		"method": method,
		"host":   r.Host,
		"path":   r.URL.Path,
		"http":   r.Proto,
	}
	if r.URL.RawPath != "" {
		f["raw_path"] = r.URL.RawPath
	}
	if q := r.URL.Query(); len(q) > 0 {
		qm := make(map[string]any, len(q))
		for k, vs := range q {
			if len(qm) == maxOpQueryKeys {
				f["query_truncated"] = true
				break
			}
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v
			}
			qm[k] = l
		}
		f["query"] = qm
	}
	headers := map[string]any{}
	var creds []any
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if secretHeaders[lk] || (secretHeader != "" && strings.EqualFold(k, secretHeader)) {
			creds = append(creds, lk)
			continue
		}
		if len(headers) == maxOpHeaders {
			f["headers_truncated"] = true
			continue
		}
		v := strings.Join(vs, ", ")
		if len(v) > maxOpHeaderValue {
			v = v[:maxOpHeaderValue]
		}
		headers[lk] = v
	}
	f["headers"] = headers
	if len(creds) > 0 {
		f["credentials"] = creds
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		f["content_type"] = ct
	}
	if r.ContentLength >= 0 {
		f["content_length"] = r.ContentLength
	}
	if !safe(method) {
		f["effects"] = []any{map[string]any{"action": strings.ToLower(method)}}
	}
	if isJSON(ct) && r.Body != nil && r.Body != http.NoBody {
		body, complete, err := peekBody(r, max)
		if err != nil {
			return policy.Operation{}, fmt.Errorf("read request body: %w", err)
		}
		var v any
		switch {
		case !complete:
			f["body_truncated"] = true
		case len(body) == 0:
		case json.Unmarshal(body, &v) == nil:
			f["body"] = v
		default:
			f["body_invalid"] = true
		}
	}
	return policy.Operation{
		Protocol: proto,
		Action:   strings.ToLower(method),
		Resource: r.Host + r.URL.Path,
		Fields:   f,
	}, nil
}

// safe methods have no effect on the target (RFC 9110, 9.2.1).
func safe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// checkPath refuses "." and ".." segments and encoded slashes: a server
// that normalises them would act on a path policy never saw.
func checkPath(escaped string) error {
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%2e") {
		return errBadPath
	}
	for _, seg := range strings.Split(escaped, "/") {
		if seg == "." || seg == ".." {
			return errBadPath
		}
	}
	return nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// peekBody reads up to max bytes of r's body and puts them back in front
// of the rest. complete reports that the body ended within max.
func peekBody(r *http.Request, max int) (body []byte, complete bool, err error) {
	buf := make([]byte, 0, min(max+1, 4096))
	lr := io.LimitReader(r.Body, int64(max)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	complete = len(buf) <= max
	r.Body = &replayed{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), c: r.Body}
	return buf, complete, nil
}

// replayed is a body whose head was read ahead.
type replayed struct {
	io.Reader
	c io.Closer
}

func (b *replayed) Close() error { return b.c.Close() }

// text is a request as the recording shows it.
func text(r *http.Request) string {
	uri := r.URL.RequestURI()
	if len(uri) > maxRecordedURI {
		uri = uri[:maxRecordedURI] + fmt.Sprintf("… (%d bytes in all)", len(uri))
	}
	return r.Method + " " + uri
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// operationKey identifies op for the session's decision cache: a digest
// of everything policy sees of it, so that a keep-alive client repeating
// a request is decided once. "text" is left out: it is derived from the
// rest.
func operationKey(op policy.Operation) string {
	txt, had := op.Fields["text"]
	delete(op.Fields, "text")
	b, err := json.Marshal(op.Fields)
	if had {
		op.Fields["text"] = txt
	}
	if err != nil {
		return "" // not cached
	}
	h := sha256.New()
	for _, s := range []string{op.Protocol, op.Action, op.Resource} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(b)
	return string(h.Sum(nil))
}

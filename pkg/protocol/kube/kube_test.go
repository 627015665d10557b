package kube

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/record"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, url, ct string
		action, res     string
		want            map[string]any
	}{
		{"GET", "/api/v1/namespaces/default/pods", "", "list", "pods",
			map[string]any{"api_group": "", "api_version": "v1", "namespace": "default", "name": ""}},
		{"GET", "/api/v1/namespaces/default/pods/shell", "", "get", "pods", map[string]any{"name": "shell"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=true", "", "watch", "pods", nil},
		{"GET", "/api/v1/watch/namespaces/default/pods", "", "watch", "pods", nil},
		{"GET", "/apis/apps/v1/namespaces/prod/deployments/web", "", "get", "deployments",
			map[string]any{"api_group": "apps", "namespace": "prod", "name": "web", "text": "get deployments.apps web -n prod"}},
		{"DELETE", "/api/v1/namespaces/prod", "", "delete", "namespaces", map[string]any{"name": "prod", "namespace": "prod", "text": "delete namespaces prod"}},
		{"DELETE", "/api/v1/namespaces/default/pods", "", "deletecollection", "pods", nil},
		{"POST", "/api/v1/namespaces/default/configmaps", "application/json", "create", "configmaps", nil},
		{"PUT", "/api/v1/namespaces/default/configmaps/c", "application/json", "update", "configmaps", nil},
		{"PATCH", "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl", "application/apply-patch+yaml", "patch", "deployments",
			map[string]any{"patch_type": "apply"}},
		{"PATCH", "/api/v1/namespaces/default/pods/p/status", "application/merge-patch+json", "patch", "pods",
			map[string]any{"subresource": "status", "patch_type": "merge", "text": "patch pods/status p -n default"}},
		{"POST", "/api/v1/namespaces/default/pods/shell/exec?command=sh&command=-c&command=id&container=main&stdin=true&tty=true", "", "create", "pods",
			map[string]any{"command": []any{"sh", "-c", "id"}, "container": "main", "stdin": true, "tty": true,
				"subresource": "exec", "text": "create pods/exec shell -n default -- sh -c id"}},
		{"GET", "/api/v1/namespaces/default/pods/shell/exec?command=ls", "", "get", "pods", map[string]any{"command": []any{"ls"}}},
		{"GET", "/api/v1/namespaces/default/secrets?labelSelector=app%3Ddb", "", "list", "secrets", map[string]any{"label_selector": "app=db"}},
		{"GET", "/version", "", "get", "/version", map[string]any{"resource_request": false}},
		{"GET", "/apis", "", "get", "/apis", map[string]any{"resource_request": false}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.url, nil)
		if tt.ct != "" {
			r.Header.Set("Content-Type", tt.ct)
		}
		op := policy.Operation{Fields: map[string]any{}}
		if err := classify(r, &op); err != nil {
			t.Errorf("classify(%s %s): %v", tt.method, tt.url, err)
			continue
		}
		if op.Action != tt.action || op.Resource != tt.res || op.Protocol != "kubernetes" {
			t.Errorf("classify(%s %s) = %s %s, want %s %s", tt.method, tt.url, op.Action, op.Resource, tt.action, tt.res)
		}
		for k, v := range tt.want {
			got, _ := json.Marshal(op.Fields[k])
			want, _ := json.Marshal(v)
			if string(got) != string(want) {
				t.Errorf("classify(%s %s).%s = %s, want %s", tt.method, tt.url, k, got, want)
			}
		}
	}
}

func TestJSONOnly(t *testing.T) {
	const table = "application/json;as=Table;v=v1;g=meta.k8s.io"
	tests := []struct {
		in     string
		tables bool
		want   string
	}{
		{"", true, "application/json"},
		{"application/vnd.kubernetes.protobuf", true, "application/json"},
		{"application/vnd.kubernetes.protobuf,application/json", true, "application/json"},
		{table + ",application/json", true, table + ", application/json"},
		{table + ",application/json", false, "application/json"},
		{table, false, "application/json"},
		{"application/cbor", true, "application/json"},
		{"*/*", true, "application/json"},
	}
	for _, tt := range tests {
		if got := jsonOnly([]string{tt.in}, tt.tables); got != tt.want {
			t.Errorf("jsonOnly(%q, %v) = %q, want %q", tt.in, tt.tables, got, tt.want)
		}
	}
}

func TestRefuseIsStatus(t *testing.T) {
	w := httptest.NewRecorder()
	refuse(w, httptest.NewRequest("DELETE", "/api/v1/namespaces/prod", nil), http.StatusForbidden, "sluice: no")
	var st map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if w.Code != 403 || st["kind"] != "Status" || st["reason"] != "Forbidden" || st["message"] != "sluice: no" || st["code"] != 403.0 {
		t.Errorf("refusal %d %s", w.Code, w.Body.String())
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/api/v1/namespaces/default/pods", "/apis/apps/v1/watch/deployments", "/api/v1/namespaces/a/pods/b/exec?command=x", "/api//v1", "/apis/a/b/c/d/e/f/g/h"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if strings.ContainsAny(path, " \r\n") || !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \r\n\t/") || method == "" {
			return
		}
		r, err := http.NewRequest(method, "https://k"+path, nil)
		if err != nil {
			return
		}
		op := policy.Operation{Fields: map[string]any{}}
		if classify(r, &op) == nil && op.Action == "" {
			t.Errorf("classify(%s %s): no verb", method, path)
		}
	})
}

// streamRec keeps what a stream observer records.
type streamRec struct {
	protocol.Recording
	out []string
}

func (r *streamRec) Stream(dir string, data []byte) error {
	r.out = append(r.out, dir+":"+string(data))
	return nil
}

// TestStreamKeepsRunesWhole: a UTF-8 sequence split across chunks is
// recorded whole, and nothing recorded is overwritten by what is carried.
func TestStreamKeepsRunesWhole(t *testing.T) {
	r := &streamRec{}
	o := &streamObserver{rec: r}
	text := "a€b€éz€"
	for _, chunk := range []string{"a\xe2", "\x82", "\xacb\xe2\x82", "\xac\xc3", "\xa9z\xe2", "\x82", "\xac"} {
		o.stream(record.DirOutput, 1, []byte(chunk))
	}
	var got strings.Builder
	for _, s := range r.out {
		body := strings.TrimPrefix(s, record.DirOutput+":")
		if !utf8.ValidString(body) {
			t.Errorf("recorded %q: not whole runes", body)
		}
		got.WriteString(body)
	}
	if got.String() != text {
		t.Errorf("recorded %q, want %q", got.String(), text)
	}
}

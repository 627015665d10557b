package jsonmask

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-gate/sluice/pkg/mask"
)

var testKey = []byte("test key, not a secret")

func mustMasker(t testing.TB, rules ...map[string]any) *mask.Masker {
	t.Helper()
	rs, err := mask.ParseRules(rules)
	if err != nil {
		t.Fatalf("ParseRules = %v", err)
	}
	m, err := mask.New(rs, testKey)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return m
}

// testMasker has path rules of every strategy and all detectors.
func testMasker(t testing.TB) *mask.Masker {
	return mustMasker(t,
		map[string]any{"path": "$.items[*].card", "strategy": "redact"},
		map[string]any{"path": "$..password", "strategy": "null"},
		map[string]any{"path": "$.secret", "strategy": "partial"},
		map[string]any{"path": "$.h", "strategy": "hash", "name": "hashed"},
		map[string]any{"path": `$.object.spec["api-key"]`, "strategy": "redact"},
		map[string]any{"detector": "*", "strategy": "redact"},
	)
}

// run masks in, written in one piece, and closes the Writer.
func run(m *mask.Masker, in string, opts Options) (string, error) {
	return runChunks(m, in, opts, func(int) int { return len(in) })
}

// runChunks writes in in chunks of the sizes next returns.
func runChunks(m *mask.Masker, in string, opts Options, next func(rest int) int) (string, error) {
	var out bytes.Buffer
	w := New(&out, m, opts)
	for rest := in; len(rest) > 0; {
		n := min(max(next(len(rest)), 1), len(rest))
		if k, err := w.Write([]byte(rest[:n])); err != nil {
			return out.String(), err
		} else if k != n {
			return out.String(), errors.New("short write without an error")
		}
		rest = rest[n:]
	}
	err := w.Close()
	return out.String(), err
}

func pseudonym(s string) string {
	h := hmac.New(sha256.New, testKey)
	h.Write([]byte(s))
	return "h:" + hex.EncodeToString(h.Sum(nil))[:16]
}

var maskTests = []struct {
	name, in, want string
}{
	{"path", `{"items":[{"card":"4111 1111 1111 1111","name":"x"},{"card":"abc"}]}`,
		`{"items":[{"card":"[REDACTED]","name":"x"},{"card":"[REDACTED]"}]}`},
	{"path number", `{"items":[{"card":4111111111111111}]}`, `{"items":[{"card":"[REDACTED]"}]}`},
	{"path skips nested arrays", `{"items":[[{"card":"x"}]]}`, `{"items":[[{"card":"x"}]]}`},
	{"path escaped key", `{"ite\u006ds":[{"c\u0061rd":"x"}]}`, `{"ite\u006ds":[{"c\u0061rd":"[REDACTED]"}]}`},
	{"path quoted name", `{"object":{"spec":{"api-key":"k1","api_key":"k2"}}}`, `{"object":{"spec":{"api-key":"[REDACTED]","api_key":"k2"}}}`},
	{"null covers a container", `{"a":{"password":"x"},"password":{"x":[1,"y",true,false,null,{}],"y":[]}}`,
		`{"a":{"password":null},"password":{"x":[null,null,null,null,null,{}],"y":[]}}`},
	{"partial covers a container", `{"secret":{"a":"abcdefgh","b":12345678,"c":[true]}}`, `{"secret":{"a":"****efgh","b":"****5678","c":["****"]}}`},
	{"hash decodes first", `{"h":"ca\u0072d"}`, `{"h":"` + pseudonym("card") + `"}`},
	{"hash number", `{"h":-1.5e3}`, `{"h":"` + pseudonym("-1.5e3") + `"}`},
	{"rule before detectors", `{"secret":"alice@example.com"}`, `{"secret":"a****@example.com"}`},
	{"detector", `{"note":"mail alice@example.com now"}`, `{"note":"mail [REDACTED:email] now"}`},
	{"detector escaped", `{"note":"card 4111\u00201111\u00201111\u00201111"}`, `{"note":"card [REDACTED:pan]"}`},
	{"detector escaped digits", `{"note":"\u0034111111111111111"}`, `{"note":"[REDACTED:pan]"}`},
	{"detector re-encodes", `{"s":"line\nmail alice@example.com\t\"q\" \\ \/ \u0001\u001f"}`,
		`{"s":"line\nmail [REDACTED:email]\t\"q\" \\ / \u0001\u001f"}`},
	{"detector number", `{"n":4111111111111111,"m":12}`, `{"n":"[REDACTED:pan]","m":12}`},
	{"detector surrogate pair", `{"s":"\ud83d\ude00 alice@example.com"}`, `{"s":"😀 [REDACTED:email]"}`},
	{"detector lone surrogate", `{"s":"\ud800 alice@example.com \udc00"}`, `{"s":"� [REDACTED:email] �"}`},
	{"detector high surrogate twice", `{"s":"\ud800\ud800\udc00 alice@example.com"}`, `{"s":"�𐀀 [REDACTED:email]"}`},
	{"detector unicode", `{"ü":"Grüße 4111111111111111 日本"}`, `{"ü":"Grüße [REDACTED:pan] 日本"}`},
	{"detector invalid UTF-8", "{\"s\":\"\xff alice@example.com\"}", `{"s":"\ufffd [REDACTED:email]"}`},
	{"detector in nested arrays", `[[["4111111111111111"]],[[]]]`, `[[["[REDACTED:pan]"]],[[]]]`},
	{"keys are not masked", `{"alice@example.com":"x","4111111111111111":1}`, `{"alice@example.com":"x","4111111111111111":1}`},
	{"top-level string", `"alice@example.com"`, `"[REDACTED:email]"`},
	{"top-level number", `4111111111111111`, `"[REDACTED:pan]"`},
	{"stream", "{\"items\":[{\"card\":\"a\"}]}\n{\"items\":[{\"card\":\"b\"}]}\n4111111111111111 1\r\n[]{}\"x\"true",
		"{\"items\":[{\"card\":\"[REDACTED]\"}]}\n{\"items\":[{\"card\":\"[REDACTED]\"}]}\n\"[REDACTED:pan]\" 1\r\n[]{}\"x\"true"},
	{"watch", `{"type":"ADDED","object":{"spec":{"api-key":"k"}}}` + "\n" + `{"type":"MODIFIED","object":{"spec":{"api-key":"k"}}}` + "\n",
		`{"type":"ADDED","object":{"spec":{"api-key":"[REDACTED]"}}}` + "\n" + `{"type":"MODIFIED","object":{"spec":{"api-key":"[REDACTED]"}}}` + "\n"},
	{"whitespace kept", "\n{ \"items\" : [ { \"card\" : \"x\" } ,\t{\"name\":\r\n\"alice@example.com\"} ] }\n",
		"\n{ \"items\" : [ { \"card\" : \"[REDACTED]\" } ,\t{\"name\":\r\n\"[REDACTED:email]\"} ] }\n"},
	{"empty", "", ""},
	{"only whitespace", " \n\t ", " \n\t "},
}

func TestMask(t *testing.T) {
	m := testMasker(t)
	for _, tt := range maskTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(m, tt.in, Options{})
			if err != nil || got != tt.want {
				t.Errorf("mask(%s) =\n%s, %v, want\n%s", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestChunks feeds every test document one byte at a time and in random
// chunks: the output must not depend on where Writes split the input.
func TestChunks(t *testing.T) {
	m := testMasker(t)
	r := rand.New(rand.NewPCG(1, 2))
	docs := []string{unchanged, wideList(50)}
	for _, tt := range maskTests {
		docs = append(docs, tt.in)
	}
	for _, in := range docs {
		want, err := run(m, in, Options{})
		if err != nil {
			t.Fatalf("mask(%.40q) = %v", in, err)
		}
		got, err := runChunks(m, in, Options{}, func(int) int { return 1 })
		if err != nil || got != want {
			t.Errorf("mask(%.40q) byte by byte =\n%s, %v, want\n%s", in, got, err, want)
		}
		for range 20 {
			got, err := runChunks(m, in, Options{}, func(int) int { return 1 + r.IntN(16) })
			if err != nil || got != want {
				t.Errorf("mask(%.40q) in random chunks =\n%s, %v, want\n%s", in, got, err, want)
				break
			}
		}
	}
}

// unchanged is a document nothing in testMasker masks, with every kind of
// token and whitespace.
const unchanged = ` {
	"kind" : "List", "apiVersion":"v1",
	"items": [
		{"metadata": {"name": "pod-1", "uid": "0b4e7ac1-2f0e-4d7d-9b1a-6c0e5a1d2f3b",
		 "labels": {"app.kubernetes.io/name": "web", "tier":"front\u0065nd"}},
		 "n": [0, -0, 1.5, -2.25e-3, 1E+10, 12345, 3.0e0], "ok": true, "no": false, "nil": null,
		 "text": "Ünïcödé \u00e9 \ud83d\ude00 \"quoted\" \\ \/ \b\f\n\r\t done", "empty": "", "e": {}, "a": [],
		 "cards": "4111 1111 1111 1112"}
	],
	"items2": {"x": [{"card": "1"}]}
}
[1,2]	"x" 7
`

func TestUnchanged(t *testing.T) {
	for name, m := range map[string]*mask.Masker{
		"nil":       nil,
		"rules":     testMasker(t),
		"no detect": mustMasker(t, map[string]any{"path": "$.zzz", "strategy": "redact"}),
	} {
		var st mask.Stats
		got, err := run(m, unchanged, Options{Stats: &st})
		if err != nil || got != unchanged {
			t.Errorf("%s: mask(unchanged) =\n%s, %v, want the input", name, got, err)
		}
		if s := st.Map(); len(s) != 0 {
			t.Errorf("%s: Stats = %v, want none", name, s)
		}
	}
}

func TestStats(t *testing.T) {
	m := testMasker(t)
	var st mask.Stats
	in := `{"items":[{"card":"1"},{"card":{"a":2,"b":[3]}}],"password":"x","h":"y","secret":null,
		"note":"alice@example.com bob@example.com 4111111111111111"}` + "\n" + `{"h":1,"password":[true]}`
	if _, err := run(m, in, Options{Stats: &st}); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"path:$.items[*].card": 3,
		"path:$..password":     2,
		"hashed":               2,
		"detector:email":       2,
		"detector:pan":         1,
	}
	if got := st.Map(); !maps.Equal(got, want) {
		t.Errorf("Stats = %v, want %v", got, want)
	}
}

func TestMaxToken(t *testing.T) {
	long := strings.Repeat("a", 40)
	digits := strings.Repeat("1", 20) + ".5e-7"
	m := testMasker(t)
	paths := mustMasker(t, map[string]any{"path": "$.secret", "strategy": "partial"}, map[string]any{"path": "$.pw", "strategy": "null"})
	tests := []struct {
		name string
		m    *mask.Masker
		in   string
		want string
		st   map[string]uint64
	}{
		{"detectors", m, `{"s":"` + long + `","t":"` + long[:16] + `"}`, `{"s":"[REDACTED]","t":"` + long[:16] + `"}`,
			map[string]uint64{"jsonmask:oversize": 1}},
		{"escapes count as written", m, `{"s":"\u0061\u0061\u0061"}`, `{"s":"[REDACTED]"}`, map[string]uint64{"jsonmask:oversize": 1}},
		{"number", m, `[` + strings.Repeat("1", 17) + `]`, `["[REDACTED]"]`, map[string]uint64{"jsonmask:oversize": 1}},
		{"top-level number", m, strings.Repeat("1", 17), `"[REDACTED]"`, map[string]uint64{"jsonmask:oversize": 1}},
		{"partial rule redacts", paths, `{"secret":"` + long + `"}`, `{"secret":"[REDACTED]"}`, map[string]uint64{"path:$.secret": 1}},
		{"null rule", paths, `{"pw":"` + long + `"}`, `{"pw":null}`, map[string]uint64{"path:$.pw": 1}},
		{"uncovered streams", paths, `{"x":"` + long + `","y":-` + digits + `}`, `{"x":"` + long + `","y":-` + digits + `}`, nil},
		{"long keys stream", paths, `{"` + long + `":"` + long + `"}`, `{"` + long + `":"` + long + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, len(tt.in)} {
				var st mask.Stats
				got, err := runChunks(tt.m, tt.in, Options{MaxToken: 16, Stats: &st}, func(int) int { return chunk })
				if err != nil || got != tt.want {
					t.Errorf("mask(%s) in chunks of %d = %s, %v, want %s", tt.in, chunk, got, err, tt.want)
				}
				if s := st.Map(); !maps.Equal(s, tt.st) && len(s)+len(tt.st) > 0 {
					t.Errorf("mask(%s) in chunks of %d: Stats = %v, want %v", tt.in, chunk, s, tt.st)
				}
			}
		})
	}
}

// TestLongKey checks that a key too long to keep still moves the path:
// it matches wildcards and no name.
func TestLongKey(t *testing.T) {
	long := strings.Repeat("k", keyLimit+1)
	m := mustMasker(t, map[string]any{"path": "$.*.card", "strategy": "redact"}, map[string]any{"path": "$.k.x", "strategy": "redact"})
	in := `{"` + long + `":{"card":"1","x":"2"},"k":{"card":"3","x":"4"}}`
	want := `{"` + long + `":{"card":"[REDACTED]","x":"2"},"k":{"card":"[REDACTED]","x":"[REDACTED]"}}`
	for _, chunk := range []int{7, len(in)} {
		got, err := runChunks(m, in, Options{}, func(int) int { return chunk })
		if err != nil || got != want {
			t.Errorf("mask(long key) in chunks of %d = %.80s..., %v", chunk, got[len(long):], err)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int64
		msg    string
	}{
		{`{"a":1,}`, 7, "invalid character '}' looking for beginning of object key string"},
		{`[1,]`, 3, "invalid character ']' looking for beginning of value"},
		{`{"a" 1}`, 5, "invalid character '1' after object key"},
		{`{"a":1 "b":2}`, 7, "after object key:value pair"},
		{`[1 2]`, 3, "after array element"},
		{`{"a":1]`, 6, "after object key:value pair"},
		{`[1}`, 2, "after array element"},
		{`]`, 0, "looking for beginning of value"},
		{`{"a":1}}`, 7, "looking for beginning of value"},
		{`{1:2}`, 1, "looking for beginning of object key string"},
		{`"abc`, 4, "unexpected end of JSON input"},
		{`{"a":[1,{"b":2}`, 15, "unexpected end of JSON input"},
		{"\"a\x01\"", 2, "invalid character byte 0x01 in string literal"},
		{"\"a\n\"", 2, "invalid character byte 0x0a in string literal"},
		{`"\x"`, 2, `invalid character 'x' in string escape code`},
		{`"\u12g4"`, 5, `invalid character 'g' in \u hexadecimal character escape`},
		{`"\u12"`, 5, `invalid character '"' in \u hexadecimal character escape`},
		{`tru`, 3, "unexpected end of JSON input"},
		{`trux`, 3, "invalid character 'x' in literal true (expecting 'e')"},
		{`[nul]`, 4, "in literal null"},
		{`[fals e]`, 5, "in literal false"},
		{`[01]`, 2, "after array element"},
		{`-`, 1, "unexpected end of JSON input"},
		{`[-a]`, 2, "in numeric literal"},
		{`[1.]`, 3, "after decimal point"},
		{`[1.e5]`, 3, "after decimal point"},
		{`[1e]`, 3, "in exponent"},
		{`[1e+]`, 4, "in exponent"},
		{`[.5]`, 1, "looking for beginning of value"},
		{`[+1]`, 1, "looking for beginning of value"},
		{`[1.5.2]`, 4, "after array element"},
		{`[1e5e]`, 4, "after array element"},
		{`[NaN]`, 1, "looking for beginning of value"},
		{"\xef\xbb\xbf{}", 0, "invalid character byte 0xef"},
		{`{'a':1}`, 1, "looking for beginning of object key string"},
		{`[1,2`, 4, "unexpected end of JSON input"},
		{`{"a"`, 4, "unexpected end of JSON input"},
		{`{"a":`, 5, "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			for _, m := range []*mask.Masker{nil, testMasker(t)} {
				for _, chunk := range []int{1, len(tt.in)} {
					out, err := runChunks(m, tt.in, Options{}, func(int) int { return chunk })
					var se *SyntaxError
					if !errors.As(err, &se) || se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
						t.Fatalf("mask(%q) in chunks of %d = %v, want a SyntaxError at %d saying %q", tt.in, chunk, err, tt.offset, tt.msg)
					}
					if !strings.HasPrefix(tt.in, out) && m == nil {
						t.Errorf("mask(%q) wrote %q, want a prefix of the input", tt.in, out)
					}
				}
			}
		})
	}
}

func TestErrorsStick(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, testMasker(t), Options{})
	if n, err := w.Write([]byte(`[1, "a", x, 2]`)); n != 9 || err == nil {
		t.Fatalf("Write(bad) = %d, %v, want 9 and an error", n, err)
	}
	if got := out.String(); got != `[1, "a", ` {
		t.Errorf("output before the error = %q, want %q", got, `[1, "a", `)
	}
	first := w.err
	if _, err := w.Write([]byte(`]`)); err != first {
		t.Errorf("Write after an error = %v, want %v again", err, first)
	}
	if err := w.Close(); err != first {
		t.Errorf("Close after an error = %v, want %v again", err, first)
	}

	w = New(&out, nil, Options{})
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := w.Write([]byte(`1`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestMaxDepth(t *testing.T) {
	m := testMasker(t)
	if _, err := run(m, `[[[1]]]`, Options{MaxDepth: 3}); err != nil {
		t.Errorf("mask at depth 3 with MaxDepth 3 = %v", err)
	}
	out, err := run(m, `[[{"a":[1]}]]`, Options{MaxDepth: 3})
	var de *DepthError
	if !errors.As(err, &de) || de.Offset != 7 || de.Limit != 3 {
		t.Errorf("mask at depth 4 with MaxDepth 3 = %v, want a DepthError at 7", err)
	}
	if out != `[[{"a":` {
		t.Errorf("output before the DepthError = %q", out)
	}
	deep := strings.Repeat("[", DefaultMaxDepth+1)
	if _, err := run(nil, deep, Options{}); !errors.As(err, &de) || de.Limit != DefaultMaxDepth {
		t.Errorf("mask(%d x '[') = %v, want a DepthError", len(deep), err)
	}
}

type failWriter struct{ n int }

var errDst = errors.New("dst broke")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errDst
	}
	return len(p), nil
}

func TestDstError(t *testing.T) {
	w := New(&failWriter{n: 1}, nil, Options{})
	if _, err := w.Write([]byte(`[1,`)); err != nil {
		t.Fatalf("first Write = %v", err)
	}
	if _, err := w.Write([]byte(`2]`)); !errors.Is(err, errDst) {
		t.Errorf("Write to a broken dst = %v, want %v", err, errDst)
	}
	if err := w.Close(); !errors.Is(err, errDst) {
		t.Errorf("Close after a broken dst = %v, want %v", err, errDst)
	}
}

func TestDecodeEncode(t *testing.T) {
	tests := []struct{ raw, want string }{
		{``, ""},
		{`abc`, "abc"},
		{`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t"},
		{`\u0041\u00e9\u20ac`, "Aé€"},
		{`\uD83D\uDE00`, "😀"},
		{`\ud83d`, "\ufffd"},
		{`\ude00\ud83d`, "\ufffd\ufffd"},
		{`\ud83dx`, "\ufffdx"},
		{`\ud83d\u0041`, "\ufffdA"},
		{`\u00`, `\u00`}, // not from the tokenizer, but no panic
		{`a\`, `a\`},
	}
	for _, tt := range tests {
		if got := decode(nil, []byte(tt.raw)); string(got) != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	enc := []struct{ s, want string }{
		{"", `""`},
		{"a\"b\\c\n\r\t\x00\x1f\x7f", `"a\"b\\c\n\r\t\u0000\u001f` + "\x7f\""},
		{"é😀\xff\xe2\x82", `"é😀\ufffd\ufffd\ufffd"`},
		{"<&>\u2028", "\"<&>\u2028\""},
	}
	for _, tt := range enc {
		if got := appendString(nil, []byte(tt.s)); string(got) != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestPlainRun(t *testing.T) {
	for n := range 20 {
		for pos := range n + 1 {
			for _, c := range []byte{'"', '\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0xff, 'a', 0x21, 0x23, 0x5b, 0x5d} {
				p := bytes.Repeat([]byte{'x'}, n)
				for k := range p {
					p[k] = "ab\x80\xffZ\x7f ~"[k%8]
				}
				want := n
				if pos < n {
					p[pos] = c
					if !plain[c] {
						want = pos
					}
				}
				for k := range want {
					if !plain[p[k]] {
						want = k
						break
					}
				}
				for start := range min(want, 3) + 1 {
					if got := plainRun(p, start); got != want {
						t.Fatalf("plainRun(%q, %d) = %d, want %d", p, start, got, want)
					}
				}
			}
		}
	}
}

package jsonmask

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// FuzzMask checks, for any input, that the Writer does not panic or hang
// and that where Writes split the input does not matter; and, for valid
// JSON, that the output is valid JSON of the same shape, identical to
// the input when no rule can match.
func FuzzMask(f *testing.F) {
	for _, tt := range maskTests {
		f.Add([]byte(tt.in), uint64(7))
	}
	f.Add([]byte(unchanged), uint64(1))
	f.Add([]byte(wideList(2)), uint64(3))
	f.Add([]byte(`{"a":[1,{"b":"\ud83d\ude00\u0000"},-0.5e+7,true,null],"password":[]}`), uint64(0))
	f.Add([]byte(`{"items":[{"card":"4111 1111 1111 1111"}],"x":[[[[]]]],"y":"\"`), uint64(2))

	full := testMasker(f)
	// paths only, so that unmatched strings stream through unheld.
	paths := mustMasker(f,
		map[string]any{"path": "$.items[*].card", "strategy": "hash"},
		map[string]any{"path": "$..*.password", "strategy": "null"},
		map[string]any{"path": "$[*][*]", "strategy": "partial"},
	)
	never := mustMasker(f, map[string]any{"path": "$..zzz_never", "strategy": "redact"})
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		valid := json.Valid(in)
		for i, m := range []*mask.Masker{full, paths, never} {
			opts := Options{MaxToken: 64, MaxDepth: 64}
			whole, errWhole := run(m, string(in), opts)
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			split, errSplit := runChunks(m, string(in), opts, func(rest int) int { return 1 + r.IntN(9) })
			if (errWhole == nil) != (errSplit == nil) || errWhole != nil && errWhole.Error() != errSplit.Error() {
				t.Fatalf("masker %d: mask(%q) = %v whole, %v in chunks", i, in, errWhole, errSplit)
			}
			if errWhole == nil && whole != split {
				t.Fatalf("masker %d: mask(%q) =\n%q whole,\n%q in chunks", i, in, whole, split)
			}
			if !valid {
				continue
			}
			var de *DepthError
			if errWhole != nil && !errors.As(errWhole, &de) {
				t.Fatalf("masker %d: mask(%q) = %v for valid JSON", i, in, errWhole)
			}
			if errWhole != nil {
				continue
			}
			if !json.Valid([]byte(whole)) {
				t.Fatalf("masker %d: mask(%q) = %q, not valid JSON", i, in, whole)
			}
			if m == never && whole != string(in) {
				t.Fatalf("masker %d: mask(%q) = %q, want the input unchanged", i, in, whole)
			}
			a, errA := unmarshal(in)
			b, errB := unmarshal([]byte(whole))
			if errA != nil || errB != nil {
				t.Fatalf("masker %d: mask(%q) = %q does not unmarshal", i, in, whole)
			}
			if !sameShape(a, b) {
				t.Fatalf("masker %d: mask(%q) = %q, not the same shape", i, in, whole)
			}
		}
	})
}

// unmarshal keeps numbers as written, so that 1e1000 is no error.
func unmarshal(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// sameShape reports whether out has the objects, keys and arrays of in,
// with each scalar either unchanged or masked into a string or null.
func sameShape(in, out any) bool {
	switch x := in.(type) {
	case map[string]any:
		y, ok := out.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameShape(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := out.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameShape(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	switch out.(type) {
	case string, nil:
		return true
	}
	return reflect.DeepEqual(in, out)
}

// TestSameShape keeps the fuzz oracle honest.
func TestSameShape(t *testing.T) {
	parse := func(s string) any {
		v, err := unmarshal([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		in, out string
		want    bool
	}{
		{`{"a":[1,"x",true]}`, `{"a":["m",null,"t"]}`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1e1000}`, `{"a":1e1000}`, true},
		{`{"a":1}`, `{"b":1}`, false},
		{`[1,2]`, `[1]`, false},
		{`{"a":{}}`, `{"a":null}`, false},
	} {
		if got := sameShape(parse(tt.in), parse(tt.out)); got != tt.want {
			t.Errorf("sameShape(%s, %s) = %v, want %v", tt.in, tt.out, got, tt.want)
		}
	}
}

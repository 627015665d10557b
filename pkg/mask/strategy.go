package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"unicode/utf8"
)

// redacted replaces a whole value. Text markers name the detector, so a
// reader knows what was there; neither can be matched by any detector.
const redacted = "[REDACTED]"

var redactMarker = func() (m [numDetectors]string) {
	for d, name := range detectorNames {
		m[d] = "[REDACTED:" + name + "]"
	}
	return m
}()

// keep is how many trailing letters or digits Partial leaves readable:
// enough to tell two cards or accounts apart, too few to use one.
const keep = 4

// appendPartial stars every letter or digit of v except the last four,
// keeping punctuation and spaces so the shape stays recognisable. A
// non-ASCII character counts as a letter and becomes one '*', so ASCII
// input keeps its length and other input never grows. Four or fewer
// letters and digits are all starred: keeping them would keep everything.
func appendPartial(dst, v []byte) []byte {
	units := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if isAlnum(c) {
				units++
			}
			i++
			continue
		}
		_, w := utf8.DecodeRune(v[i:])
		units++
		i += w
	}
	star := units
	if units > keep {
		star = units - keep
	}
	start := len(dst)
	dst = slices.Grow(dst, len(v))[:start+len(v)]
	w := start
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if star > 0 && isAlnum(c) {
				c = '*'
				star--
			}
			dst[w] = c
			w++
			i++
			continue
		}
		_, n := utf8.DecodeRune(v[i:])
		if star > 0 {
			dst[w] = '*'
			w++
			star--
		} else {
			w += copy(dst[w:], v[i:i+n])
		}
		i += n
	}
	return dst[:w]
}

// appendEmailPartial keeps the first character of the local part and the
// domain, starring the rest of the local part one '*' per character. A
// one-character local part becomes "*". v[at] is the '@'.
func appendEmailPartial(dst, v []byte, at int) []byte {
	local := v[:at]
	_, w := utf8.DecodeRune(local)
	if w == len(local) {
		dst = append(dst, '*')
	} else {
		dst = append(dst, local[:w]...)
		for i := w; i < len(local); {
			_, n := utf8.DecodeRune(local[i:])
			dst = append(dst, '*')
			i += n
		}
	}
	return append(dst, v[at:]...)
}

// macState is one keyed HMAC and the buffers to use it without
// allocating; Maskers pool them.
type macState struct {
	h     hash.Hash
	sum   [sha256.Size]byte
	canon [maxLocal + 1 + maxDomain]byte
}

func newMACState(key []byte) *macState {
	return &macState{h: hmac.New(sha256.New, key)}
}

// appendHash appends "h:" and the first 64 bits of HMAC-SHA256(key, b) in
// hex. 64 bits keep pseudonyms apart for any realistic number of distinct
// values while staying short enough for a column.
func appendHash(dst []byte, x *macState, b []byte) []byte {
	x.h.Reset()
	x.h.Write(b)
	sum := x.h.Sum(x.sum[:0])
	dst = append(dst, "h:"...)
	return hex.AppendEncode(dst, sum[:8])
}

// canonical rewrites a match into the form that is hashed, so that the
// same card, number or address written differently gets the same
// pseudonym, and a card found in text hashes like a column holding its
// bare digits: digits only for pan, us_ssn and phone, upper case without
// spaces for iban, lower case for email. Secrets are hashed as found.
func canonical(dst, b []byte, d detector) []byte {
	switch d {
	case detPAN, detSSN, detPhone:
		for _, c := range b {
			if isDigit(c) {
				dst = append(dst, c)
			}
		}
		return dst
	case detIBAN:
		for _, c := range b {
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != ' ' {
				dst = append(dst, c)
			}
		}
		return dst
	case detEmail:
		for _, c := range b {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	return b
}

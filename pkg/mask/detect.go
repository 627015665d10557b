package mask

import "bytes"

// detector is one kind of sensitive token found in free text.
type detector uint8

const (
	detPAN detector = iota
	detEmail
	detSSN
	detIBAN
	detPhone
	detJWT
	detAWS
	detPrivateKey
	numDetectors
)

// detectorNames are the names policies use; they are part of the policy
// contract and never change.
var detectorNames = [numDetectors]string{
	detPAN:        "pan",
	detEmail:      "email",
	detSSN:        "us_ssn",
	detIBAN:       "iban",
	detPhone:      "phone",
	detJWT:        "jwt",
	detAWS:        "aws_access_key_id",
	detPrivateKey: "private_key",
}

type detSet uint16

const (
	allDetectors detSet = 1<<numDetectors - 1
	numeric      detSet = 1<<detPAN | 1<<detSSN | 1<<detPhone
)

func (s detSet) has(d detector) bool { return s&(1<<d) != 0 }

// match is a detected token: v[start:end].
type match struct {
	start, end int
	det        detector
}

// Byte classes. Non-ASCII bytes count as word characters, so a match never
// starts or ends in the middle of a UTF-8 sequence and a digit run glued to
// a non-Latin word is left alone.
const (
	cWord  = 1 << iota // ASCII letter or digit, or any byte >= 0x80
	cDigit             // 0-9
	cUpper             // A-Z
	cLocal             // may appear in an e-mail local part
	cLabel             // may appear in a domain label
	cB64               // base64url alphabet (RFC 4648 §5)
	cTrig              // punctuation that can anchor a match: @ + ( -
)

var class = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= '0' && c <= '9':
			t[c] = cWord | cDigit | cLocal | cLabel | cB64
		case c >= 'A' && c <= 'Z':
			t[c] = cWord | cUpper | cLocal | cLabel | cB64
		case c >= 'a' && c <= 'z':
			t[c] = cWord | cLocal | cLabel | cB64
		case c >= 0x80:
			t[c] = cWord | cLocal | cLabel
		}
	}
	// The practical local-part alphabet rather than RFC 5322 atext: with
	// '=', '/' or '*' allowed, "email=alice@example.com" would swallow the
	// parameter name and a partially masked "a****@example.com" would match
	// again.
	for _, c := range []byte("._%+-") {
		t[c] |= cLocal
	}
	t['-'] |= cLabel | cB64
	t['_'] |= cB64
	for _, c := range []byte("@+(-") {
		t[c] |= cTrig
	}
	return t
}()

func isWord(c byte) bool  { return class[c]&cWord != 0 }
func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isUpper(c byte) bool { return class[c]&cUpper != 0 }
func isAlnum(c byte) bool { return c < 0x80 && class[c]&cWord != 0 }

// find returns the first match in v at or after from. No detector starts a
// match inside a word, so once a word start has been examined the rest of
// the word is skipped in a tight loop; that keeps ordinary text cheap.
func find(v []byte, from int, en detSet) (match, bool) {
	n := len(v)
	for i := from; i < n; {
		c := v[i]
		k := class[c]
		if k&cWord == 0 {
			if k&cTrig != 0 {
				if mt, ok := findAtPunct(v, i, from, en); ok {
					return mt, true
				}
			}
			i++
			continue
		}
		if i == 0 || !isWord(v[i-1]) {
			if c == 'h' && isHashMarker(v, i) {
				i += hashMarkerLen
				continue
			}
			if mt, ok := findAtWord(v, i, en); ok {
				return mt, true
			}
		}
		for i++; i < n && isWord(v[i]); i++ {
		}
	}
	return match{}, false
}

func findAtPunct(v []byte, i, lo int, en detSet) (match, bool) {
	var (
		s, e = i, 0
		d    detector
		ok   bool
	)
	switch v[i] {
	case '@':
		if en.has(detEmail) {
			d = detEmail
			s, e, ok = emailAt(v, i, lo)
		}
	case '+':
		if en.has(detPhone) && (i == 0 || !isWord(v[i-1])) {
			d = detPhone
			e, ok = e164At(v, i)
		}
	case '(':
		if en.has(detPhone) && (i == 0 || !isWord(v[i-1])) {
			d = detPhone
			e, ok = nanpParenAt(v, i)
		}
	case '-':
		if en.has(detPrivateKey) {
			d = detPrivateKey
			e, ok = privateKeyAt(v, i)
		}
	}
	return match{s, e, d}, ok
}

// findAtWord tries the detectors that start at a word start.
func findAtWord(v []byte, i int, en detSet) (match, bool) {
	c := v[i]
	switch {
	case isDigit(c):
		if en&numeric == 0 || joinedBefore(v, i, '.') {
			return match{}, false
		}
		if !joinedBefore(v, i, '-') {
			if en.has(detSSN) {
				if e, ok := ssnAt(v, i); ok {
					return match{i, e, detSSN}, true
				}
			}
			if en.has(detPhone) {
				if e, ok := nanpAt(v, i); ok {
					return match{i, e, detPhone}, true
				}
			}
		}
		if en.has(detPAN) {
			if e, ok := panAt(v, i); ok {
				return match{i, e, detPAN}, true
			}
		}
	case c == 'e':
		// '-' and '_' are base64url but not word characters.
		if en.has(detJWT) && (i == 0 || class[v[i-1]]&cB64 == 0 && v[i-1] != '.') {
			if e, ok := jwtAt(v, i); ok {
				return match{i, e, detJWT}, true
			}
		}
	case isUpper(c):
		if c == 'A' && en.has(detAWS) {
			if e, ok := awsKeyAt(v, i); ok {
				return match{i, e, detAWS}, true
			}
		}
		if en.has(detIBAN) {
			if e, ok := ibanAt(v, i); ok {
				return match{i, e, detIBAN}, true
			}
		}
	}
	return match{}, false
}

// joinedBefore reports whether the number at v[i] continues one to its
// left through sep ("3.14", "12-34"), which makes it part of a longer
// number rather than a token of its own.
func joinedBefore(v []byte, i int, sep byte) bool {
	return i >= 2 && v[i-1] == sep && isDigit(v[i-2])
}

// numEnd reports whether a number may end at v[e]: not glued to a word, not
// continued through '.' by another digit and, when dash is set, not through
// '-' either.
func numEnd(v []byte, e int, dash bool) bool {
	if e >= len(v) {
		return true
	}
	c := v[e]
	if isWord(c) {
		return false
	}
	if (c == '.' || dash && c == '-') && e+1 < len(v) && isDigit(v[e+1]) {
		return false
	}
	return true
}

// digitRun returns the end of the digits starting at v[i], reading at most
// limit+1 of them so callers can tell "too long" apart.
func digitRun(v []byte, i, limit int) int {
	j := i
	for j < len(v) && j-i <= limit && isDigit(v[j]) {
		j++
	}
	return j
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// panAt matches a payment card number (ISO/IEC 7812): 13–19 digits written
// as one run or in the printed 4-4-4-4(-3), 4-6-5 or 4-6-4 groups separated
// by single spaces or dashes, with a valid Luhn check digit.
func panAt(v []byte, i int) (int, bool) {
	n := len(v)
	j := digitRun(v, i, 19)
	switch run := j - i; {
	case run >= 13 && run <= 19:
		if !numEnd(v, j, false) || !plausibleIIN(v[i:j]) || !luhn(v[i:j]) {
			return 0, false
		}
		return j, true
	case run != 4 || j+1 >= n || (v[j] != ' ' && v[j] != '-') || !isDigit(v[j+1]):
		return 0, false
	}
	if !plausibleIIN(v[i:j]) {
		return 0, false
	}
	sep := v[j]
	var groups, ends [5]int
	groups[0], ends[0] = 4, j
	k := 1
	for k < len(groups) && j+1 < n && v[j] == sep && isDigit(v[j+1]) {
		t := digitRun(v, j+1, 6)
		if t-(j+1) > 6 || !numEnd(v, t, false) {
			break
		}
		groups[k], ends[k] = t-(j+1), t
		k++
		j = t
	}
	// Longest first: "4111 1111 1111 1111 2025" is a card followed by a
	// year, and the year must not hide the card.
	for ; k >= 3; k-- {
		if cardLayout(groups[:k]) && luhn(v[i:ends[k-1]]) {
			return ends[k-1], true
		}
	}
	return 0, false
}

func cardLayout(g []int) bool {
	total := 0
	for _, n := range g {
		total += n
	}
	if total < 13 || total > 19 {
		return false
	}
	if len(g) == 3 && g[1] == 6 {
		return g[2] == 4 || g[2] == 5 // Diners 4-6-4, Amex 4-6-5
	}
	for _, n := range g[1 : len(g)-1] {
		if n != 4 {
			return false
		}
	}
	return g[len(g)-1] <= 4
}

// plausibleIIN rejects leading digits no card network issues: 0, and 1
// (only UATP airline cards), which is what millisecond timestamps and
// zero-padded ids start with; a leading 2 must be Mir (2200–2204) or
// Mastercard (2221–2720), which keeps years such as "2024 ..." out. b holds
// at least four digits.
func plausibleIIN(b []byte) bool {
	switch b[0] {
	case '0', '1':
		return false
	case '2':
		p := int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0')
		return p <= 204 || p >= 221 && p <= 720
	}
	return true
}

// luhn checks the Luhn (ISO/IEC 7812-1 annex B) check digit over the digits
// of b, ignoring separators.
func luhn(b []byte) bool {
	sum, double := 0, false
	for k := len(b) - 1; k >= 0; k-- {
		c := b[k]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// ssnAt matches a US Social Security number written ddd-dd-dddd with an
// area, group and serial the SSA can issue: no 000, 666 or 9xx area, no 00
// group, no 0000 serial. The undashed nine-digit form is not detected: it
// is indistinguishable from any other nine-digit number.
func ssnAt(v []byte, i int) (int, bool) {
	if len(v)-i < 11 {
		return 0, false
	}
	b := v[i : i+11]
	if !allDigits(b[0:3]) || b[3] != '-' || !allDigits(b[4:6]) || b[6] != '-' || !allDigits(b[7:11]) {
		return 0, false
	}
	area := string(b[0:3])
	if area == "000" || area == "666" || b[0] == '9' || string(b[4:6]) == "00" || string(b[7:11]) == "0000" {
		return 0, false
	}
	return i + 11, numEnd(v, i+11, true)
}

// nxx reports whether b starts with a NANP area code or exchange: the first
// digit is 2–9.
func nxx(b []byte) bool {
	return b[0] >= '2' && b[0] <= '9' && isDigit(b[1]) && isDigit(b[2])
}

// nanpAt matches a North American number written NXX-NXX-XXXX, optionally
// with a "1-" trunk prefix. Space- or dot-separated forms are left alone:
// they look like too many other things.
func nanpAt(v []byte, i int) (int, bool) {
	j := i
	if v[i] == '1' && i+1 < len(v) && v[i+1] == '-' {
		j = i + 2
	}
	if len(v)-j < 12 {
		return 0, false
	}
	b := v[j : j+12]
	if !nxx(b) || b[3] != '-' || !nxx(b[4:]) || b[7] != '-' || !allDigits(b[8:12]) {
		return 0, false
	}
	return j + 12, numEnd(v, j+12, true)
}

// nanpParenAt matches "(NXX) NXX-XXXX" and "(NXX)NXX-XXXX".
func nanpParenAt(v []byte, i int) (int, bool) {
	if len(v)-i < 13 || !nxx(v[i+1:]) || v[i+4] != ')' {
		return 0, false
	}
	j := i + 5
	if v[j] == ' ' {
		j++
	}
	if len(v)-j < 8 || !nxx(v[j:]) || v[j+3] != '-' || !allDigits(v[j+4:j+8]) {
		return 0, false
	}
	return j + 8, numEnd(v, j+8, true)
}

// e164At matches an international number (ITU-T E.164): '+', a country
// code not starting with 0, and 8–15 digits in total, in groups of at
// least two digits separated by one space or dash, with an optional
// parenthesised group such as the "(0)" trunk prefix.
func e164At(v []byte, i int) (int, bool) {
	n := len(v)
	j := i + 1
	if j >= n || v[j] < '1' || v[j] > '9' {
		return 0, false
	}
	digits, end := 0, j
	for first := true; ; first = false {
		s := j
		j = digitRun(v, s, 15)
		if !first && j-s < 2 {
			break
		}
		if digits += j - s; digits > 15 {
			return 0, false
		}
		end = j
		k := j
		if k < n && (v[k] == ' ' || v[k] == '-') {
			k++
		}
		if k < n && v[k] == '(' {
			q := digitRun(v, k+1, 4)
			pd := q - (k + 1)
			if pd == 0 || pd > 4 || q >= n || v[q] != ')' {
				break
			}
			k = q + 1
			if k < n && (v[k] == ' ' || v[k] == '-') {
				k++
			}
			if k >= n || !isDigit(v[k]) {
				break
			}
			if digits += pd; digits > 15 {
				return 0, false
			}
		}
		if k == j || k >= n || !isDigit(v[k]) {
			break
		}
		j = k
	}
	if digits < 8 {
		return 0, false
	}
	return end, numEnd(v, end, true)
}

// ibanAt matches an IBAN (ISO 13616): two upper-case country letters, two
// check digits and 11–30 letters or digits, written as one word or in the
// printed groups of four separated by single spaces, whose ISO 7064
// mod-97-10 remainder is 1.
func ibanAt(v []byte, i int) (int, bool) {
	n := len(v)
	if n-i < 15 || !isUpper(v[i+1]) || !isDigit(v[i+2]) || !isDigit(v[i+3]) {
		return 0, false
	}
	j := alnumRun(v, i, 34)
	switch run := j - i; {
	case j < n && v[j] >= 0x80:
		return 0, false
	case run >= 15 && run <= 34:
		return j, ibanValid(v[i:j])
	case run != 4:
		return 0, false
	}
	var ends [9]int
	ends[0] = j
	k, total := 1, 4
	for k < len(ends) && j+1 < n && v[j] == ' ' && isAlnum(v[j+1]) {
		t := alnumRun(v, j+1, 4)
		size := t - (j + 1)
		if size > 4 || t < n && v[t] >= 0x80 || total+size > 34 {
			break
		}
		total += size
		ends[k] = t
		k++
		j = t
		if size < 4 {
			break
		}
	}
	for ; k > 1; k-- {
		var buf [34]byte
		b := buf[:0]
		for _, c := range v[i:ends[k-1]] {
			if c != ' ' {
				b = append(b, c)
			}
		}
		if len(b) < 15 {
			break
		}
		if ibanValid(b) {
			return ends[k-1], true
		}
	}
	return 0, false
}

func alnumRun(v []byte, i, limit int) int {
	j := i
	for j < len(v) && j-i <= limit && isAlnum(v[j]) {
		j++
	}
	return j
}

// ibanValid checks an IBAN without spaces: check digits 02–98, and the
// number formed by moving the first four characters to the end and
// replacing letters by 10–35 is 1 mod 97 (ISO 13616-1, ISO 7064 MOD 97-10).
func ibanValid(b []byte) bool {
	if cd := int(b[2]-'0')*10 + int(b[3]-'0'); cd < 2 || cd > 98 {
		return false
	}
	r := 0
	for k := range b {
		c := b[(k+4)%len(b)]
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A') + 10) % 97
		case c >= 'a' && c <= 'z':
			r = (r*100 + int(c-'a') + 10) % 97
		default:
			return false
		}
	}
	return r == 1
}

// awsPrefixes are the access key ID prefixes of long-term and temporary
// credentials.
var awsPrefixes = [...]string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"}

// awsKeyAt matches an AWS access key ID: a known prefix and 16 characters
// of the RFC 4648 base32 alphabet, as a whole word.
func awsKeyAt(v []byte, i int) (int, bool) {
	const size = 20
	if len(v)-i < size {
		return 0, false
	}
	known := false
	for _, p := range awsPrefixes {
		if string(v[i:i+4]) == p {
			known = true
			break
		}
	}
	if !known {
		return 0, false
	}
	for _, c := range v[i+4 : i+size] {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return 0, false
		}
	}
	if i+size < len(v) && isWord(v[i+size]) {
		return 0, false
	}
	return i + size, true
}

func b64Run(v []byte, i int) int {
	for i < len(v) && class[v[i]]&cB64 != 0 {
		i++
	}
	return i
}

// jwtAt matches a compact JWS or JWE (RFC 7515 §7.1, RFC 7516 §7.1): a
// header that is base64url JSON, so it starts with "eyJ" ('{"'), then at
// least two more dot-separated base64url segments. The payload has at least
// two characters; the signature may be empty, as in an unsecured JWT (RFC
// 7519 §6.1), which still carries its claims. No segment has a length of
// 1 mod 4, which unpadded base64 cannot produce. A JWE's five segments are
// all consumed.
func jwtAt(v []byte, i int) (int, bool) {
	const minHeader = 10 // base64url of {"a":1}
	n := len(v)
	if n-i < minHeader || string(v[i:i+3]) != "eyJ" {
		return 0, false
	}
	h := b64Run(v, i)
	if h-i < minHeader || (h-i)%4 == 1 || h >= n || v[h] != '.' {
		return 0, false
	}
	p := b64Run(v, h+1)
	if p-(h+1) < 2 || (p-(h+1))%4 == 1 || p >= n || v[p] != '.' {
		return 0, false
	}
	e := b64Run(v, p+1)
	if (e-(p+1))%4 == 1 {
		return 0, false
	}
	for segs := 3; segs < 5 && e+1 < n && v[e] == '.' && class[v[e+1]]&cB64 != 0; segs++ {
		e = b64Run(v, e+1)
	}
	return e, true
}

const (
	pemBegin = "-----BEGIN "
	pemEnd   = "-----END "
	pemDash  = "-----"
	maxLabel = 64
)

// privateKeyAt matches a PEM (RFC 7468) or PGP armored block whose label
// contains "PRIVATE KEY", through its END line. Without an END line the
// match runs to the end of v: a truncated key is still key material.
func privateKeyAt(v []byte, i int) (int, bool) {
	if len(v)-i < len(pemBegin) || string(v[i:i+len(pemBegin)]) != pemBegin {
		return 0, false
	}
	body, ok := pemLabel(v, i+len(pemBegin))
	if !ok {
		return 0, false
	}
	for p := body; ; {
		k := bytes.Index(v[p:], []byte(pemEnd))
		if k < 0 {
			return len(v), true
		}
		p += k + len(pemEnd)
		if e, ok := pemLabel(v, p); ok {
			return e, true
		}
	}
}

// pemLabel reads a label that mentions a private key and its closing
// dashes at v[j:], returning the end of the dashes.
func pemLabel(v []byte, j int) (int, bool) {
	k := j
	for k < len(v) && k-j < maxLabel && (isUpper(v[k]) || isDigit(v[k]) || v[k] == ' ') {
		k++
	}
	if !bytes.HasPrefix(v[k:], []byte(pemDash)) || !bytes.Contains(v[j:k], []byte("PRIVATE KEY")) {
		return 0, false
	}
	return k + len(pemDash), true
}

const (
	maxLocal  = 64  // RFC 5321 §4.5.3.1.1
	maxDomain = 253 // RFC 1035 §2.3.4, without the trailing dot
	maxDLabel = 63
)

// emailAt matches an e-mail address around the '@' at v[at], whose local
// part may not start before lo. The local part is the practical alphabet
// (letters, digits, ._%+- and non-ASCII), at most 64 bytes; a longer run
// keeps only its last 64, so that padding cannot hide an address. See
// domainEnd for the domain.
func emailAt(v []byte, at, lo int) (int, int, bool) {
	s := at
	for s > lo && at-s < maxLocal && class[v[s-1]]&cLocal != 0 {
		s--
	}
	for s < at && v[s] == '.' {
		s++
	}
	if s == at {
		return 0, 0, false
	}
	e, ok := domainEnd(v, at+1)
	return s, e, ok
}

// domainEnd reads a domain name at v[j:]: at least two dot-separated
// labels of letters, digits, '-' or non-ASCII bytes (IDNs), no label
// starting or ending with '-', and a top-level label of two or more bytes
// that starts with a letter, so "a@b", "user@localhost" and "x@1.2.3.4"
// are not addresses. Trailing dots and dashes are sentence punctuation.
func domainEnd(v []byte, j int) (int, bool) {
	e := j
	for e < len(v) && e-j <= maxDomain && (class[v[e]]&cLabel != 0 || v[e] == '.') {
		e++
	}
	for e > j && (v[e-1] == '.' || v[e-1] == '-') {
		e--
	}
	if e-j > maxDomain {
		return 0, false
	}
	labels, last := 0, []byte(nil)
	for d := v[j:e]; d != nil; labels++ {
		l := d
		if k := bytes.IndexByte(d, '.'); k >= 0 {
			l, d = d[:k], d[k+1:]
		} else {
			d = nil
		}
		if len(l) == 0 || len(l) > maxDLabel || l[0] == '-' || l[len(l)-1] == '-' {
			return 0, false
		}
		last = l
	}
	if labels < 2 || len(last) < 2 || isDigit(last[0]) {
		return 0, false
	}
	return e, true
}

// isEmail reports whether all of v is one e-mail address, and where its
// '@' is.
func isEmail(v []byte) (int, bool) {
	at := bytes.IndexByte(v, '@')
	if at <= 0 || at > maxLocal || v[0] == '.' {
		return 0, false
	}
	for _, c := range v[:at] {
		if class[c]&cLocal == 0 {
			return 0, false
		}
	}
	e, ok := domainEnd(v, at+1)
	return at, ok && e == len(v)
}

const hashMarkerLen = len("h:") + 16

// isHashMarker reports whether a Hash output starts at v[i]. Sixteen hex
// digits can happen to be all decimal and Luhn-valid; skipping our own
// marker keeps masking idempotent instead of hashing the hash.
func isHashMarker(v []byte, i int) bool {
	e := i + hashMarkerLen
	if e > len(v) || v[i+1] != ':' || e < len(v) && isWord(v[e]) {
		return false
	}
	for _, c := range v[i+2 : e] {
		if !(isDigit(c) || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

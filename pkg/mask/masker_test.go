package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"testing"
)

var testKey = []byte("test key, not a secret")

func mustNew(t testing.TB, key []byte, rules ...Rule) *Masker {
	t.Helper()
	m, err := New(rules, key)
	if err != nil {
		t.Fatalf("New(%+v) = %v", rules, err)
	}
	return m
}

// pseudonym is the Hash output computed independently of the package.
func pseudonym(key []byte, s string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return "h:" + hex.EncodeToString(h.Sum(nil))[:16]
}

func TestValue(t *testing.T) {
	m := mustNew(t, testKey, Rule{Column: "x", Strategy: Redact})
	tests := []struct {
		s        Strategy
		in, want string
	}{
		{Redact, "alice@example.com", "[REDACTED]"},
		{Redact, "", "[REDACTED]"},
		{Partial, "4111-1111-1111-1111", "****-****-****-1111"},
		{Partial, "4111111111111111", "************1111"},
		{Partial, "alice@example.com", "a****@example.com"},
		{Partial, "Bob.Smith+tag@mail.example.co.uk", "B************@mail.example.co.uk"},
		{Partial, "a@example.com", "*@example.com"},
		{Partial, "José@example.com", "J***@example.com"},
		{Partial, "John Smith", "**** *mith"},
		{Partial, "+1 (415) 555-2671", "+* (***) ***-2671"},
		{Partial, "abcd", "****"},
		{Partial, "ab-c", "**-*"},
		{Partial, "abcde", "*bcde"},
		{Partial, "Müller", "**ller"},
		{Partial, "Jürgen Groß", "****** Groß"},
		{Partial, "\xff\xfeabcdef", "****cdef"},
		{Partial, "", ""},
		{Partial, "a@b", "*@*"},
		{Partial, "two@at@example.com", "***@**@******e.com"},
		{Hash, "alice@example.com", pseudonym(testKey, "alice@example.com")},
		{Hash, "", pseudonym(testKey, "")},
		{Strategy("bogus"), "secret", "[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(string(tt.s)+"/"+tt.in, func(t *testing.T) {
			got, null := m.Value(nil, []byte(tt.in), Rule{Column: "x", Strategy: tt.s}, nil)
			if string(got) != tt.want || null {
				t.Errorf("Value(%q, %s) = %q, %v, want %q, false", tt.in, tt.s, got, null, tt.want)
			}
		})
	}
}

func TestValueNull(t *testing.T) {
	m := mustNew(t, nil, Rule{Column: "x", Strategy: Null})
	r, _ := m.Column("", "x")
	got, null := m.Value(make([]byte, 8), []byte("secret"), r, nil)
	if !null || len(got) != 0 {
		t.Errorf("Value(null) = %q, %v, want empty, true", got, null)
	}
}

func TestValueHashWithoutKeyRedacts(t *testing.T) {
	m := mustNew(t, nil, Rule{Column: "x", Strategy: Redact})
	got, _ := m.Value(nil, []byte("secret"), Rule{Column: "x", Strategy: Hash}, nil)
	if string(got) != redacted {
		t.Errorf("Value(hash, no key) = %q, want %q", got, redacted)
	}
}

func TestValueReusesBuffer(t *testing.T) {
	m := mustNew(t, nil, Rule{Column: "x", Strategy: Partial})
	r, _ := m.Column("", "x")
	buf := make([]byte, 3, 64)
	got, _ := m.Value(buf, []byte("4111111111111111"), r, nil)
	if &got[0] != &buf[:1][0] || string(got) != "************1111" {
		t.Errorf("Value(buf) = %q at a new address, want %q in buf", got, "************1111")
	}
}

func TestHash(t *testing.T) {
	a := mustNew(t, []byte("key a"), Rule{Column: "x", Strategy: Hash})
	b := mustNew(t, []byte("key b"), Rule{Column: "x", Strategy: Hash})
	r, _ := a.Column("", "x")
	hash := func(m *Masker, s string) string {
		out, _ := m.Value(nil, []byte(s), r, nil)
		return string(out)
	}
	if x, y := hash(a, "4111111111111111"), hash(a, "4111111111111111"); x != y {
		t.Errorf("Value(hash) = %q then %q, want the same pseudonym", x, y)
	}
	if x, y := hash(a, "4111111111111111"), hash(b, "4111111111111111"); x == y {
		t.Errorf("Value(hash) = %q under two keys, want different pseudonyms", x)
	}
	if x, y := hash(a, "4111111111111111"), hash(a, "5555555555554444"); x == y {
		t.Errorf("Value(hash) = %q for two cards, want different pseudonyms", x)
	}
	key := []byte("mutable")
	m := mustNew(t, key, Rule{Column: "x", Strategy: Hash})
	before := hash(m, "v")
	key[0] = 'M'
	if after := hash(m, "v"); after != before {
		t.Errorf("Value(hash) = %q after the caller changed its key slice, want %q", after, before)
	}
}

// TestHashJoins checks that a card found in text gets the pseudonym of a
// column holding its digits, however it was written.
func TestHashJoins(t *testing.T) {
	m := mustNew(t, testKey, Rule{Column: "cards.pan", Strategy: Hash}, Rule{Detector: "*", Strategy: Hash})
	r, _ := m.Column("cards", "pan")
	col, _ := m.Value(nil, []byte("4111111111111111"), r, nil)
	for _, in := range []string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"} {
		got, hits := m.Text(nil, []byte(in), nil)
		if string(got) != string(col) || hits != 1 {
			t.Errorf("Text(%q) = %q, %d, want %q, 1", in, got, hits, col)
		}
	}
	upper, _ := m.Text(nil, []byte("Alice@Example.COM"), nil)
	lower, _ := m.Text(nil, []byte("alice@example.com"), nil)
	if string(upper) != string(lower) {
		t.Errorf("Text(Alice@Example.COM) = %q, want %q as for alice@example.com", upper, lower)
	}
}

const mixed = "card 4111 1111 1111 1111, mail alice@example.com, key AKIAIOSFODNN7EXAMPLE, ssn 123-45-6789, iban GB82 WEST 1234 5698 7654 32, tel +1 (415) 555-2671, tok " + jwtUnsigned + " end"

func TestText(t *testing.T) {
	tests := []struct {
		s    Strategy
		want string
	}{
		{Redact, "card [REDACTED:pan], mail [REDACTED:email], key [REDACTED:aws_access_key_id], ssn [REDACTED:us_ssn], iban [REDACTED:iban], tel [REDACTED:phone], tok [REDACTED:jwt] end"},
		{Partial, "card **** **** **** 1111, mail a****@example.com, key [REDACTED:aws_access_key_id], ssn ***-**-6789, iban **** **** **** **** **54 32, tel +* (***) ***-2671, tok [REDACTED:jwt] end"},
		{Hash, "card " + pseudonym(testKey, "4111111111111111") +
			", mail " + pseudonym(testKey, "alice@example.com") +
			", key " + pseudonym(testKey, "AKIAIOSFODNN7EXAMPLE") +
			", ssn " + pseudonym(testKey, "123456789") +
			", iban " + pseudonym(testKey, "GB82WEST12345698765432") +
			", tel " + pseudonym(testKey, "14155552671") +
			", tok " + pseudonym(testKey, jwtUnsigned) + " end"},
		{Null, "card , mail , key , ssn , iban , tel , tok  end"},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			m := mustNew(t, testKey, Rule{Detector: "*", Strategy: tt.s})
			got, hits := m.Text(nil, []byte(mixed), nil)
			if string(got) != tt.want || hits != 7 {
				t.Errorf("Text(%q, %s) =\n%q, %d, want\n%q, 7", mixed, tt.s, got, hits, tt.want)
			}
		})
	}
}

func TestTextPrivateKey(t *testing.T) {
	in := "id_rsa:\n" + rsaKey + "\nbye"
	for _, s := range []Strategy{Redact, Partial} {
		m := mustNew(t, nil, Rule{Detector: "private_key", Strategy: s})
		got, _ := m.Text(nil, []byte(in), nil)
		if want := "id_rsa:\n[REDACTED:private_key]\nbye"; string(got) != want {
			t.Errorf("Text(%q, %s) = %q, want %q", in, s, got, want)
		}
	}
}

func TestTextRuleOrder(t *testing.T) {
	m := mustNew(t, testKey,
		Rule{Detector: "email", Strategy: Partial},
		Rule{Detector: "*", Strategy: Redact},
		Rule{Detector: "email", Strategy: Null},
	)
	in := "alice@example.com 123-45-6789"
	got, _ := m.Text(nil, []byte(in), nil)
	if want := "a****@example.com [REDACTED:us_ssn]"; string(got) != want {
		t.Errorf("Text(%q) = %q, want %q", in, got, want)
	}
	only := mustNew(t, nil, Rule{Detector: "email", Strategy: Redact})
	got, _ = only.Text(nil, []byte(in), nil)
	if want := "[REDACTED:email] 123-45-6789"; string(got) != want {
		t.Errorf("Text(%q) with only email = %q, want %q", in, got, want)
	}
}

// TestTextRescans covers masking that exposes a new match: the phone number
// runs into the SSN and is too long, until the SSN is masked.
func TestTextRescans(t *testing.T) {
	m := mustNew(t, nil, Rule{Detector: "*", Strategy: Redact})
	in := "+1 415 5555 123-45-6789"
	got, hits := m.Text(nil, []byte(in), nil)
	if want := "[REDACTED:phone] [REDACTED:us_ssn]"; string(got) != want || hits != 2 {
		t.Errorf("Text(%q) = %q, %d, want %q, 2", in, got, hits, want)
	}
}

func TestTextNoMatchAliases(t *testing.T) {
	m := mustNew(t, testKey, Rule{Detector: "*", Strategy: Redact})
	for _, in := range []string{"plain words only", "2024-01-15 192.168.1.10 v1.2.3 4111111111111112 a@b +1 2", ""} {
		v := []byte(in)
		got, hits := m.Text(make([]byte, 0, 64), v, nil)
		if hits != 0 || len(got) != len(v) || len(v) > 0 && &got[0] != &v[0] {
			t.Errorf("Text(%q) = %q, %d, want v itself, 0", in, got, hits)
		}
	}
	if got, hits := mustNew(t, nil, Rule{Column: "x", Strategy: Redact}).Text(nil, []byte("4111111111111111"), nil); hits != 0 || string(got) != "4111111111111111" {
		t.Errorf("Text without detector rules = %q, %d, want the input, 0", got, hits)
	}
}

func TestTextAllocations(t *testing.T) {
	m := mustNew(t, testKey, Rule{Detector: "*", Strategy: Redact})
	quiet := []byte("Jane Doe, 42 Main St, Springfield IL 62704, joined 2024-01-15, v1.2.3 from 192.168.1.10, order #A-10293 total $1,234.56, ping a@b +1 2 eyJx -----B AB12")
	if n := testing.AllocsPerRun(100, func() { m.Text(nil, quiet, nil) }); n != 0 {
		t.Errorf("Text(no match) allocates %v times, want 0", n)
	}
	noisy := []byte(mixed)
	buf := make([]byte, 0, 4*len(noisy))
	var st Stats
	m.Text(buf, noisy, &st)
	if n := testing.AllocsPerRun(100, func() { m.Text(buf, noisy, &st) }); n != 0 {
		t.Errorf("Text(matches, large dst) allocates %v times, want 0", n)
	}
}

func TestValueAllocations(t *testing.T) {
	for _, s := range []Strategy{Redact, Partial, Hash, Null} {
		if s == Hash && raceEnabled {
			continue // the race detector makes sync.Pool drop items
		}
		m := mustNew(t, testKey, Rule{Column: "x", Strategy: s})
		r, _ := m.Column("t", "x")
		buf := make([]byte, 0, 64)
		v := []byte("alice@example.com")
		var st Stats
		m.Value(buf, v, r, &st)
		if n := testing.AllocsPerRun(100, func() { m.Value(buf, v, r, &st) }); n != 0 {
			t.Errorf("Value(%s) allocates %v times, want 0", s, n)
		}
	}
}

func TestColumn(t *testing.T) {
	m := mustNew(t, testKey,
		Rule{Name: "emails", Column: "users.email", Strategy: Partial},
		Rule{Column: "billing.cards.PAN", Strategy: Hash},
		Rule{Column: "*ssn*", Strategy: Redact},
		Rule{Column: "secret_?", Strategy: Null},
		Rule{Column: "audit_*.payload", Strategy: Redact},
		Rule{Column: "phone", Strategy: Partial},
		Rule{Column: "[xy]id", Strategy: Redact},
	)
	tests := []struct {
		table, column string
		want          string // the matching rule's Column, "" for none
	}{
		{"users", "email", "users.email"},
		{"USERS", "Email", "users.email"},
		{"public.users", "email", "users.email"},
		{"app.public.users", "email", "users.email"},
		{"customers", "email", ""},
		{"", "email", ""},
		{"billing.cards", "pan", "billing.cards.PAN"},
		{"cards", "pan", "billing.cards.PAN"},
		{"public.cards", "pan", ""},
		{"", "pan", ""},
		{"people", "customer_SSN_hash", "*ssn*"},
		{"", "ssn", "*ssn*"},
		{"x", "secret_a", "secret_?"},
		{"x", "secret_ab", ""},
		{"audit_2024", "payload", "audit_*.payload"},
		{"audit", "payload", ""},
		{"", "phone", "phone"},
		{"contacts", "mobile_phone", ""},
		{"t", "xid", "[xy]id"},
		{"t", "zid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.table+"."+tt.column, func(t *testing.T) {
			r, ok := m.Column(tt.table, tt.column)
			if ok != (tt.want != "") || r.Column != tt.want {
				t.Errorf("Column(%q, %q) = %q, %v, want %q", tt.table, tt.column, r.Column, ok, tt.want)
			}
		})
	}
	first := mustNew(t, testKey, Rule{Column: "users.email", Strategy: Hash}, Rule{Column: "email", Strategy: Redact})
	if r, _ := first.Column("users", "email"); r.Strategy != Hash {
		t.Errorf("Column(users, email) = %s, want the first rule's hash", r.Strategy)
	}
}

func TestEmptyAndDetects(t *testing.T) {
	tests := []struct {
		rules          []Rule
		empty, detects bool
	}{
		{nil, true, false},
		{[]Rule{{Column: "a", Strategy: Redact}}, false, false},
		{[]Rule{{Detector: "jwt", Strategy: Redact}}, false, true},
	}
	for _, tt := range tests {
		m := mustNew(t, nil, tt.rules...)
		if m.Empty() != tt.empty || m.Detects() != tt.detects {
			t.Errorf("New(%+v): Empty, Detects = %v, %v, want %v, %v", tt.rules, m.Empty(), m.Detects(), tt.empty, tt.detects)
		}
	}
}

func TestStats(t *testing.T) {
	m := mustNew(t, testKey,
		Rule{Name: "emails", Column: "users.email", Strategy: Partial},
		Rule{Column: "*ssn*", Strategy: Redact},
		Rule{Detector: "*", Strategy: Redact},
	)
	var st Stats
	email, _ := m.Column("users", "email")
	ssn, _ := m.Column("", "ssn")
	for range 3 {
		m.Value(nil, []byte("a@example.com"), email, &st)
	}
	m.Value(nil, []byte("123-45-6789"), ssn, &st)
	m.Text(nil, []byte("4111111111111111 and 5555555555554444, a@example.com"), &st)
	m.Text(nil, []byte("nothing here"), &st)
	m.Value(nil, []byte("x"), Rule{Column: "hand.made", Strategy: Redact}, &st)
	want := map[string]uint64{
		"emails":           3,
		"column:*ssn*":     1,
		"detector:pan":     2,
		"detector:email":   1,
		"column:hand.made": 1,
	}
	if got := st.Map(); !maps.Equal(got, want) {
		t.Errorf("Stats.Map() = %v, want %v", got, want)
	}

	// A new policy decision brings a new Masker; the counts carry over.
	m2 := mustNew(t, nil, Rule{Name: "emails", Column: "email", Strategy: Redact}, Rule{Detector: "pan", Strategy: Redact})
	e2, _ := m2.Column("users", "email")
	m2.Value(nil, []byte("b@example.com"), e2, &st)
	m2.Text(nil, []byte("4111111111111111"), &st)
	want["emails"]++
	want["detector:pan"]++
	if got := st.Map(); !maps.Equal(got, want) {
		t.Errorf("Stats.Map() after a second Masker = %v, want %v", got, want)
	}
	// A rule from the first Masker used with the second is still counted.
	m2.Value(nil, []byte("c@example.com"), email, &st)
	want["emails"]++
	if got := st.Map(); !maps.Equal(got, want) {
		t.Errorf("Stats.Map() after a foreign rule = %v, want %v", got, want)
	}

	st.Reset()
	if got := st.Map(); len(got) != 0 {
		t.Errorf("Stats.Map() after Reset = %v, want empty", got)
	}
}

func TestHasColumnsAndTableRule(t *testing.T) {
	m, err := New([]Rule{
		{Detector: "pan", Strategy: Redact},
		{Column: "*ssn*", Strategy: Redact},
		{Column: "public.users.email", Strategy: Partial},
	}, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasColumns() {
		t.Error("HasColumns() = false with column rules")
	}
	tests := []struct {
		table string
		want  bool
	}{
		{"users", true}, {"public.users", true}, {"USERS", true}, {"other.users", false}, {"orders", false},
	}
	for _, tt := range tests {
		r, ok := m.TableRule(tt.table)
		if ok != tt.want || (ok && r.Column != "public.users.email") {
			t.Errorf("TableRule(%q) = %+v, %v; want %v", tt.table, r, ok, tt.want)
		}
	}
	d, _ := New([]Rule{{Detector: "pan", Strategy: Redact}}, nil)
	if d.HasColumns() {
		t.Error("HasColumns() = true without column rules")
	}
}

package mask

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// corpus returns about size bytes of rows resembling what a database hands
// an agent: names, addresses, dates, amounts, ids, versions, IP addresses,
// JSON and prose, generated deterministically. With pii, some rows also
// carry e-mail addresses, phone numbers, a few cards and other secrets.
func corpus(size int, pii bool) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	first := []string{"Jane", "John", "Maria", "Wei", "Olusegun", "Priya", "Lars", "Sofia", "Ahmed", "Emily"}
	last := []string{"Doe", "Smith", "Garcia", "Zhang", "Adeyemi", "Patel", "Nilsson", "Rossi", "Haddad", "Brown"}
	streets := []string{"Main St", "Oak Avenue", "Elm Road", "Harbour Way", "Rue de la Paix", "Königstraße"}
	cities := []string{"Springfield IL 62704", "London SW1A 1AA", "Berlin 10115", "Austin TX 73301", "Toronto ON M5V 2T6"}
	words := strings.Fields("the customer asked about the delayed shipment and wanted a refund before the end of the month, " +
		"support escalated it to billing who confirmed the charge was applied twice due to a retry in the payment service")
	date := func() string { return fmt.Sprintf("%04d-%02d-%02d", 2019+r.IntN(7), 1+r.IntN(12), 1+r.IntN(28)) }
	name := func() string { return pick(first...) + " " + pick(last...) }
	email := func() string {
		return strings.ToLower(pick(first...)) + pick(".", "_", "+news.", "") + strings.ToLower(pick(last...)) + "@" + pick("example.com", "mail.example.org", "corp.example.co.uk")
	}
	phone := func() string {
		return pick(fmt.Sprintf("+1 415 555 %04d", r.IntN(10000)), fmt.Sprintf("(212) 555-%04d", r.IntN(10000)), fmt.Sprintf("+44 20 7946 %04d", r.IntN(10000)))
	}
	card := func() string {
		return pick("4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "4012888888881881")
	}
	secret := func() string {
		return pick("SSN 123-45-6789", "IBAN GB82 WEST 1234 5698 7654 32", "IBAN DE89370400440532013000", "token "+jwtSample, "key AKIAIOSFODNN7EXAMPLE")
	}
	var rows [][]byte
	for total := 0; total < size; {
		var b strings.Builder
		switch r.IntN(5) {
		case 0:
			fmt.Fprintf(&b, "%s lives at %d %s, %s. Customer since %s, last login %sT%02d:%02d:%02dZ from 192.168.%d.%d.",
				name(), 1+r.IntN(999), pick(streets...), pick(cities...), date(), date(), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(256), r.IntN(256))
		case 1:
			fmt.Fprintf(&b, "Order #%d for $%d.%02d shipped %s via %s, tracking 1Z%dAA%d. Items: %d x SKU-%05d.",
				100000+r.IntN(900000), r.IntN(5000), r.IntN(100), date(), pick("UPS", "DHL", "FedEx"), 100+r.IntN(900), 10000000+r.IntN(90000000), 1+r.IntN(9), r.IntN(100000))
		case 2:
			fmt.Fprintf(&b, "Ticket INC-%d: error in v%d.%d.%d after upgrade on %s; see /var/log/app/worker-%d.log line %d (pid %d).",
				r.IntN(100000), r.IntN(5), r.IntN(30), r.IntN(20), date(), r.IntN(16), r.IntN(10000), 1000+r.IntN(60000))
		case 3:
			fmt.Fprintf(&b, `{"id": %d, "status": %q, "updated_at": "%sT10:32:01Z", "score": 0.%04d, "uuid": "%08x-%04x-4%03x-a%03x-%012x"}`,
				r.IntN(10000000), pick("active", "suspended", "closed"), date(), r.IntN(10000), r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&(1<<48-1))
		default:
			n := 8 + r.IntN(20)
			for i := range n {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteByte('.')
		}
		if pii {
			switch x := r.IntN(1000); {
			case x < 100:
				fmt.Fprintf(&b, " Contact %s <%s>.", name(), email())
			case x < 130:
				fmt.Fprintf(&b, " Call %s.", phone())
			case x < 140:
				fmt.Fprintf(&b, " Paid with %s exp %02d/%02d.", card(), 1+r.IntN(12), 25+r.IntN(5))
			case x < 150:
				fmt.Fprintf(&b, " %s.", secret())
			}
		}
		rows = append(rows, []byte(b.String()))
		total += b.Len()
	}
	return rows
}

func corpusBytes(rows [][]byte) int64 {
	var n int64
	for _, r := range rows {
		n += int64(len(r))
	}
	return n
}

// TestCorpus keeps the benchmarks honest: the quiet corpus really has no
// matches and the mixed one has some of every kind.
func TestCorpus(t *testing.T) {
	m := mustNew(t, nil, Rule{Detector: "*", Strategy: Redact})
	var st Stats
	for _, row := range corpus(1<<20, false) {
		if out, hits := m.Text(nil, row, nil); hits != 0 {
			t.Fatalf("Text(%q) = %q: the quiet corpus has a match", row, out)
		}
	}
	for _, row := range corpus(1<<20, true) {
		m.Text(nil, row, &st)
	}
	got := st.Map()
	for _, d := range detectorNames {
		if d != "private_key" && got["detector:"+d] == 0 {
			t.Errorf("mixed corpus: no %s found, counts %v", d, got)
		}
	}
}

func benchmarkText(b *testing.B, rows [][]byte) {
	m := mustNew(b, testKey, Rule{Detector: "*", Strategy: Redact})
	buf := make([]byte, 0, 4096)
	var st Stats
	b.SetBytes(corpusBytes(rows))
	b.ReportAllocs()
	for b.Loop() {
		for _, row := range rows {
			// With no match out is row itself, which must not become
			// the next destination.
			if out, hits := m.Text(buf, row, &st); hits > 0 {
				buf = out[:0]
			}
		}
	}
}

// BenchmarkTextAllDetectors masks about 1 MB of mixed rows, one Text call
// per row, with every detector enabled.
func BenchmarkTextAllDetectors(b *testing.B) { benchmarkText(b, corpus(1<<20, true)) }

// BenchmarkTextNoHits is the common case: rows with nothing to mask.
func BenchmarkTextNoHits(b *testing.B) { benchmarkText(b, corpus(1<<20, false)) }

// BenchmarkValueColumnRule masks whole column values: e-mail addresses,
// card numbers and names, as a column rule would.
func BenchmarkValueColumnRule(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	values := make([][]byte, 10000)
	for i := range values {
		switch i % 3 {
		case 0:
			values[i] = fmt.Appendf(nil, "user%d.name@example.com", r.IntN(100000))
		case 1:
			values[i] = fmt.Appendf(nil, "4%015d", r.Int64N(1e15))
		default:
			values[i] = fmt.Appendf(nil, "Customer %d of branch %d", r.IntN(1e6), r.IntN(100))
		}
	}
	for _, s := range []Strategy{Redact, Partial, Hash, Null} {
		b.Run(string(s), func(b *testing.B) {
			m := mustNew(b, testKey, Rule{Column: "users.*", Strategy: s})
			rule, _ := m.Column("users", "email")
			buf := make([]byte, 0, 64)
			var st Stats
			b.SetBytes(corpusBytes(values))
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range values {
					buf, _ = m.Value(buf, v, rule, &st)
				}
			}
		})
	}
}

package mask

import (
	"slices"
	"strings"
	"testing"
)

// findAll returns the text of every match in v.
func findAll(v string, en detSet) []string {
	var out []string
	b := []byte(v)
	for from := 0; ; {
		mt, ok := find(b, from, en)
		if !ok {
			return out
		}
		out = append(out, v[mt.start:mt.end])
		from = mt.end
	}
}

const (
	jwtSample   = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	jwtUnsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."
	rsaKey      = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n-----END RSA PRIVATE KEY-----"
	sshKey      = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----"
)

func TestDetectors(t *testing.T) {
	tests := []struct {
		det  detector
		in   string
		want []string
	}{
		// pan: true positives.
		{detPAN, "4111 1111 1111 1111", []string{"4111 1111 1111 1111"}},
		{detPAN, "4111111111111111", []string{"4111111111111111"}},
		{detPAN, "amex 378282246310005 ok", []string{"378282246310005"}},
		{detPAN, "amex 3782 822463 10005", []string{"3782 822463 10005"}},
		{detPAN, "5555-5555-5555-4444", []string{"5555-5555-5555-4444"}},
		{detPAN, "visa13 4222222222222.", []string{"4222222222222"}},
		{detPAN, "visa19 4111111111111111110", []string{"4111111111111111110"}},
		{detPAN, "diners 3056 930902 5904", []string{"3056 930902 5904"}},
		{detPAN, "mc2 2221000000000009, mir 2200000000000004", []string{"2221000000000009", "2200000000000004"}},
		{detPAN, "card: 4111-1111-1111-1111, exp 12/27", []string{"4111-1111-1111-1111"}},
		{detPAN, "4111 1111 1111 1111 2025", []string{"4111 1111 1111 1111"}},
		{detPAN, "ref 12 4111 1111 1111 1111", []string{"4111 1111 1111 1111"}},
		{detPAN, "(4111111111111111) pan=5555555555554444; **378282246310005**", []string{"4111111111111111", "5555555555554444", "378282246310005"}},
		{detPAN, `{"pan":"4111111111111111"}`, []string{"4111111111111111"}},
		{detPAN, "card_4111111111111111", []string{"4111111111111111"}},
		// pan: near misses.
		{detPAN, "4111111111111112", nil},
		{detPAN, "4111 1111 1111 1112", nil},
		{detPAN, "41111111111111111111", nil},
		{detPAN, "id 9944111111111111111111", nil},
		{detPAN, "x4111111111111111", nil},
		{detPAN, "4111111111111111x", nil},
		{detPAN, "é4111111111111111", nil},
		{detPAN, "3.4111111111111111", nil},
		{detPAN, "4111111111111111.25", nil},
		{detPAN, "0000000000000000", nil},
		{detPAN, "order 0004111111111111", nil},
		{detPAN, "ts 1705312345678 1705312345678901", nil},
		{detPAN, "2024 0115 1234 5678", nil},
		{detPAN, "41 11 11 11 11 11 11 11", nil},
		{detPAN, "4111 11111111 1111", nil},
		{detPAN, "4111  1111 1111 1111", nil},
		{detPAN, "4111-1111 1111-1111", nil},
		{detPAN, "2024-01-15 192.168.1.10 1.2.3", nil},

		// email
		{detEmail, "alice@example.com", []string{"alice@example.com"}},
		{detEmail, "bob.smith+tag@mail.example.co.uk", []string{"bob.smith+tag@mail.example.co.uk"}},
		{detEmail, "Contact: <alice@example.com>.", []string{"alice@example.com"}},
		{detEmail, "mailto:first.last@sub.domain.org, then", []string{"first.last@sub.domain.org"}},
		{detEmail, "?email=alice@example.com&x=1", []string{"alice@example.com"}},
		{detEmail, "José.müller@bücher.de", []string{"José.müller@bücher.de"}},
		{detEmail, "..x_y%z-1@xn--bcher-kva.example", []string{"x_y%z-1@xn--bcher-kva.example"}},
		{detEmail, "a@b.co@c.org", []string{"a@b.co"}},
		{detEmail, "a@b", nil},
		{detEmail, "user@localhost", nil},
		{detEmail, "x@1.2.3.4", nil},
		{detEmail, "@example.com", nil},
		{detEmail, "alice@.com", nil},
		{detEmail, "alice@-x.com", nil},
		{detEmail, "a@b.c", nil},
		{detEmail, "a****@example.com", nil},
		{detEmail, "@@@ a@@b.com", nil},

		// us_ssn
		{detSSN, "123-45-6789", []string{"123-45-6789"}},
		{detSSN, "SSN: 123-45-6789.", []string{"123-45-6789"}},
		{detSSN, "000-12-3456", nil},
		{detSSN, "666-12-3456", nil},
		{detSSN, "900-12-3456 987-65-4321", nil},
		{detSSN, "123-00-6789", nil},
		{detSSN, "123-45-0000", nil},
		{detSSN, "123456789", nil},
		{detSSN, "1123-45-6789", nil},
		{detSSN, "123-45-67890", nil},
		{detSSN, "12-123-45-6789", nil},
		{detSSN, "123-45-6789-1", nil},
		{detSSN, "a123-45-6789", nil},

		// iban
		{detIBAN, "GB82 WEST 1234 5698 7654 32", []string{"GB82 WEST 1234 5698 7654 32"}},
		{detIBAN, "GB82WEST12345698765432", []string{"GB82WEST12345698765432"}},
		{detIBAN, "DE89370400440532013000", []string{"DE89370400440532013000"}},
		{detIBAN, "IBAN: DE89 3704 0044 0532 0130 00.", []string{"DE89 3704 0044 0532 0130 00"}},
		{detIBAN, "FR1420041010050500013M02606 NL91ABNA0417164300", []string{"FR1420041010050500013M02606", "NL91ABNA0417164300"}},
		{detIBAN, "DE89 3704 0044 0532 0130 00 EUR 12", []string{"DE89 3704 0044 0532 0130 00"}},
		{detIBAN, "GB82 WEST 1234 5698 7654 33", nil},
		{detIBAN, "DE89370400440532013001", nil},
		{detIBAN, "gb82WEST12345698765432", nil},
		{detIBAN, "XDE89370400440532013000", nil},
		{detIBAN, "DE89370400440532013000X", nil},
		{detIBAN, "AB12 product code", nil},

		// phone
		{detPhone, "+1 415 555 2671", []string{"+1 415 555 2671"}},
		{detPhone, "tel:+14155552671", []string{"+14155552671"}},
		{detPhone, "(415) 555-2671", []string{"(415) 555-2671"}},
		{detPhone, "call (415)555-2671 now", []string{"(415)555-2671"}},
		{detPhone, "415-555-2671", []string{"415-555-2671"}},
		{detPhone, "1-800-555-0199", []string{"1-800-555-0199"}},
		{detPhone, "+44 20 7946 0958", []string{"+44 20 7946 0958"}},
		{detPhone, "+44 (0)20 7946 0958", []string{"+44 (0)20 7946 0958"}},
		{detPhone, "+1 (415) 555-2671", []string{"+1 (415) 555-2671"}},
		{detPhone, "+49-30-1234567.", []string{"+49-30-1234567"}},
		{detPhone, "2024-01-15", nil},
		{detPhone, "192.168.1.10", nil},
		{detPhone, "1.2.3 v1.22.3", nil},
		{detPhone, "123-456-7890", nil},
		{detPhone, "415-155-2671", nil},
		{detPhone, "415-555-26710", nil},
		{detPhone, "415-555-2671-12", nil},
		{detPhone, "+1 2 3 4 5 6 7 8", nil},
		{detPhone, "+123 4567", nil},
		{detPhone, "2024-01-15T10:00:00+01:00", nil},
		{detPhone, "3+41234567890", nil},
		{detPhone, "415 555 2671", nil},
		{detPhone, "+4111111111111111", nil},
		{detPhone, "+0 415 555 2671", nil},
		{detPhone, "(123) 555-2671", nil},

		// jwt
		{detJWT, jwtSample, []string{jwtSample}},
		{detJWT, "Authorization: Bearer " + jwtSample + "\n", []string{jwtSample}},
		{detJWT, `{"token":"` + jwtUnsigned + `"}`, []string{jwtUnsigned}},
		{detJWT, "eyJhbGciOiJIUzI1NiJ9", nil},
		{detJWT, "eyJ.abc.def", nil},
		{detJWT, "x" + jwtSample, nil},
		{detJWT, "eyJhbGciOiJIUzI1NiJ9.a.b", nil},
		{detJWT, "eyJhbGciOiJIUzI1NiJ9.eyJzd.sig", nil},

		// aws_access_key_id
		{detAWS, "AKIAIOSFODNN7EXAMPLE", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{detAWS, "key=ASIAY34FZKBOKMUTVV7A;", []string{"ASIAY34FZKBOKMUTVV7A"}},
		{detAWS, "AKIAIOSFODNN7EXAMPL", nil},
		{detAWS, "AKIAIOSFODNN7EXAMPLE1", nil},
		{detAWS, "XAKIAIOSFODNN7EXAMPLE", nil},
		{detAWS, "AKIAIOSFODNN7EXAMPL8", nil},
		{detAWS, "ABCDIOSFODNN7EXAMPLE", nil},
		{detAWS, "akiaiosfodnn7example", nil},

		// private_key
		{detPrivateKey, "key:\n" + rsaKey + "\ntrailer", []string{rsaKey}},
		{detPrivateKey, sshKey, []string{sshKey}},
		{detPrivateKey, "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", []string{"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}},
		{detPrivateKey, `"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END CERTIFICATE-----\n-----END EC PRIVATE KEY-----" x`, []string{`-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END CERTIFICATE-----\n-----END EC PRIVATE KEY-----`}},
		{detPrivateKey, "x -----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF truncated", []string{"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF truncated"}},
		{detPrivateKey, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", nil},
		{detPrivateKey, "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},
		{detPrivateKey, "----- BEGIN PRIVATE KEY", nil},
	}
	for _, tt := range tests {
		t.Run(detectorNames[tt.det]+"/"+tt.in, func(t *testing.T) {
			if got := findAll(tt.in, 1<<tt.det); !slices.Equal(got, tt.want) {
				t.Errorf("find(%q, %s) = %q, want %q", tt.in, detectorNames[tt.det], got, tt.want)
			}
		})
	}
}

// TestDetectorsTogether checks that detectors do not shadow each other in
// mixed text and that ordinary text finds nothing.
func TestDetectorsTogether(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Jane Doe, 42 Main St, Springfield IL 62704, joined 2024-01-15 10:32:01, v1.2.3 from 192.168.1.10, order #A-10293 total $1,234.56", nil},
		{"UUID 550e8400-e29b-41d4-a716-446655440000 sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", nil},
		{"pay 4111 1111 1111 1111 or call +1 415 555 2671, mail a.b@example.com, ssn 123-45-6789",
			[]string{"4111 1111 1111 1111", "+1 415 555 2671", "a.b@example.com", "123-45-6789"}},
		{"+4111111111111111", []string{"4111111111111111"}},
		{"AKIAIOSFODNN7EXAMPLE@example.com", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"iban GB82WEST12345698765432 jwt " + jwtUnsigned + " (415) 555-2671", []string{"GB82WEST12345698765432", jwtUnsigned, "(415) 555-2671"}},
		{"h:4111111111111111 is a hash, 4111111111111111 is not", []string{"4111111111111111"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := findAll(tt.in, allDetectors); !slices.Equal(got, tt.want) {
				t.Errorf("find(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111-1111-1111-1111", true},
		{"79927398713", true},
		{"79927398710", false},
		{"4111111111111112", false},
	}
	for _, tt := range tests {
		if got := luhn([]byte(tt.in)); got != tt.want {
			t.Errorf("luhn(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestIBANValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GB82WEST12345698765432", true},
		{"gb82west12345698765432", true},
		{"DE89370400440532013000", true},
		{"DE89370400440532013001", false},
		{"DE00370400440532013000", false},
		{"DE99370400440532013000", false},
		{"GB82WEST1234569876543!", false},
	}
	for _, tt := range tests {
		if got := ibanValid([]byte(tt.in)); got != tt.want {
			t.Errorf("ibanValid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDetectorNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range detectorNames {
		if n == "" || seen[n] || strings.ToLower(n) != n {
			t.Errorf("detector name %q is empty, repeated or not lower case", n)
		}
		seen[n] = true
	}
}

package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestEncrypted(t *testing.T) {
	id := auditor(t)
	entries := allKinds()
	path, seal := writeSession(t, pgHeader(), entries, Options{Recipient: id.Recipient()}, false)
	b := mustRead(t, path)

	// What the host wrote, it cannot read: no recorded text in the clear.
	// Nor the header's command line, claims and parents, which can carry
	// anything.
	for _, secret := range []string{"customers", "a***@example.com", "daemon stopping", "OPS-42", "-c", "octocat", "Runner.Worker"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("encrypted recording contains %q in the clear", secret)
		}
	}

	t.Run("verify needs no key", func(t *testing.T) {
		rep := Verify(bytes.NewReader(b), &seal)
		if !rep.OK() || rep.State != StateClosed {
			t.Errorf("Verify(encrypted) = %v %q, want closed", rep, rep.Problems)
		}
	})

	t.Run("without identity", func(t *testing.T) {
		recs := readAll(t, b, nil)
		var h Header
		if err := recs[0].Decode(&h); err != nil || recs[0].Encrypted || !h.Recorder.Encrypted || h.Recorder.WrappedKey == "" {
			t.Errorf("header: %v encrypted=%v recorder=%+v, want a readable header with a wrapped key", err, recs[0].Encrypted, h.Recorder)
		}
		for _, r := range recs[1 : len(recs)-1] {
			var v map[string]any
			if !r.Encrypted || !errors.Is(r.Decode(&v), ErrEncrypted) || !bytes.HasPrefix(r.Data, []byte(`{"enc":"`)) {
				t.Errorf("record %d: Encrypted=%v Data=%.40s, want an encrypted placeholder", r.Seq, r.Encrypted, r.Data)
			}
		}
		end := recs[len(recs)-1]
		var e End
		if err := end.Decode(&e); err != nil || e.State != StateClosed {
			t.Errorf("end record: %v %+v, want readable", err, e)
		}
		var out bytes.Buffer
		if err := Transcript(&out, seqOf(recs), TranscriptOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "[encrypted: no identity given]"); n != len(entries) {
			t.Errorf("Transcript without identity: %d encrypted placeholders, want %d:\n%s", n, len(entries), out.String())
		}
	})

	t.Run("with identity", func(t *testing.T) {
		recs := readAll(t, b, id)
		var h Header
		if err := recs[0].Decode(&h); err != nil || h.Private != nil {
			t.Fatalf("header: %v, private %s", err, h.Private)
		}
		want := pgHeader()
		if h.Process.Cmdline[4] != want.Process.Cmdline[4] || h.Identity.Claims["actor"] != "octocat" || len(h.Process.Parents) != 2 {
			t.Errorf("header private fields not restored: %+v %+v", h.Process, h.Identity)
		}
		for i, e := range entries {
			roundTrip(t, recs[i+1], e.data)
		}
	})

	t.Run("wrong identity", func(t *testing.T) {
		other, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		err = Read(bytes.NewReader(b), other, func(Record) error { return nil })
		var le *LineError
		if !errors.As(err, &le) || le.Line != 1 {
			t.Errorf("Read(wrong identity) = %v, want an error at line 1", err)
		}
	})

	// Record 1 and 3 are both requests: a ciphertext moved from one to the
	// other differs only in seq, which the additional data binds.
	t.Run("moved ciphertext", func(t *testing.T) {
		lines := splitLines(b)
		data := func(l []byte) []byte { return l[bytes.Index(l, []byte(`"data":`)):] }
		moved := append([]byte{}, lines[3][:bytes.Index(lines[3], []byte(`"data":`))]...)
		lines[3] = append(moved, data(lines[1])...)
		err := Read(bytes.NewReader(joinLines(lines)), id, func(Record) error { return nil })
		var le *LineError
		if !errors.Is(err, ErrDecrypt) || !errors.As(err, &le) || le.Line != 4 {
			t.Errorf("Read(moved ciphertext) = %v, want ErrDecrypt at line 4", err)
		}
	})

	t.Run("plaintext smuggled in", func(t *testing.T) {
		lines := splitLines(b)
		lines[5] = forge(5, KindNote, lines[4], `{"text":"all fine"}`)
		rep := Verify(bytes.NewReader(joinLines(lines)), nil)
		if rep.OK() || !strings.Contains(rep.Problems[0].What, "plaintext data in an encrypted recording") {
			t.Errorf("Verify(plaintext record) = %v %q, want plaintext problem first", rep, rep.Problems)
		}
	})
}

// A full sample of the largest cap, of the worst characters, still fits
// in a record once encrypted.
func TestEncryptedLargestSample(t *testing.T) {
	id := auditor(t)
	s := newSample(MaxResultCap)
	row := []string{strings.Repeat("\x01", 100), strings.Repeat("\xff", 100), strings.Repeat(`"`, 100)}
	for s.Add(row) {
	}
	entries := []entry{{0, KindResult, Result{Request: "r1", Rows: 1 << 40, RowsSample: s.Rows(), Truncated: s.Truncated(),
		Error: &ResultError{Message: strings.Repeat("e", 1000)}}, true}}
	writeSession(t, pgHeader(), entries, Options{Recipient: id.Recipient(), ResultCap: MaxResultCap}, false)
}

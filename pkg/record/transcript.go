package record

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TranscriptOptions shape a transcript. The zero value is the default.
type TranscriptOptions struct {
	// Rows is how many sample rows are shown per result; 0 means all.
	Rows int
	// CellWidth clips sample cells to this many characters; 0 means 40.
	CellWidth int
}

// Transcript writes recs as a transcript for auditors: the header (who,
// from which process, to what, when, over TLS or not), then one entry per
// record with its time offset from the header: each request with its text
// and decision, each result with its summary, what was masked and its
// sample rows as a table, refusals, approvals, terminal chunks, notes, and
// how the recording ended ("closed", or "INTERRUPTED" when it has no end
// record). The output depends only on recs and opts.
//
// Everything recorded came from an agent or a target and is shown with
// control characters, bidirectional overrides and invalid UTF-8 escaped,
// so that a transcript printed on a terminal cannot drive it. Records
// that are encrypted (read without an identity) or do not decode are
// shown as such rather than stopping the transcript; errors come from
// recs and w.
func Transcript(w io.Writer, recs iter.Seq2[Record, error], opts TranscriptOptions) error {
	if opts.CellWidth <= 0 {
		opts.CellWidth = 40
	}
	t := &transcript{w: bufio.NewWriter(w), opts: opts}
	for rec, err := range recs {
		if err != nil {
			t.w.Flush()
			return err
		}
		t.record(rec)
	}
	t.finish()
	return t.w.Flush()
}

type transcript struct {
	w         *bufio.Writer // keeps the first write error; Flush returns it
	opts      TranscriptOptions
	started   bool
	base      time.Time
	lastSeq   uint64
	ended     bool
	resultCap int
}

func (t *transcript) record(rec Record) {
	if !t.started {
		t.started = true
		t.base = rec.Time
	}
	t.lastSeq = rec.Seq
	if rec.Encrypted {
		t.event(rec, string(rec.Kind)+": [encrypted: no identity given]")
		return
	}
	var err error
	switch rec.Kind {
	case KindHeader:
		var h Header
		if err = rec.Decode(&h); err == nil {
			t.header(h)
		}
	case KindRequest:
		var r Request
		if err = rec.Decode(&r); err == nil {
			t.request(rec, r)
		}
	case KindResult:
		var r Result
		if err = rec.Decode(&r); err == nil {
			t.result(rec, r)
		}
	case KindRefusal:
		var r Refusal
		if err = rec.Decode(&r); err == nil {
			t.refusal(rec, r)
		}
	case KindApproval:
		var a Approval
		if err = rec.Decode(&a); err == nil {
			t.approval(rec, a)
		}
	case KindStream:
		var s Stream
		if err = rec.Decode(&s); err == nil {
			dir := "output"
			if s.Dir == DirInput {
				dir = "input"
			}
			t.event(rec, dir+" "+strconv.Quote(s.Data))
		}
	case KindNote:
		var n Note
		if err = rec.Decode(&n); err == nil {
			lines := textLines(n.Text)
			t.event(rec, "note: "+lines[0])
			t.field("", lines[1:]...)
		}
	case KindEnd:
		var e End
		if err = rec.Decode(&e); err == nil {
			t.ended = true
			t.event(rec, fmt.Sprintf("end: %s at %s, %d records", clean(e.State, false), stamp(e.Time), e.Records+1))
		}
	default:
		t.event(rec, clean(string(rec.Kind), false))
	}
	if err != nil {
		t.event(rec, fmt.Sprintf("%s: [undecodable: %s]", rec.Kind, clean(err.Error(), false)))
	}
}

func (t *transcript) finish() {
	switch {
	case !t.started:
		t.w.WriteString("(no records)\n")
	case !t.ended:
		fmt.Fprintf(t.w, "INTERRUPTED after record %d: no end record\n", t.lastSeq)
	}
}

// event starts an entry: offset from the header, seq, summary.
func (t *transcript) event(rec Record, summary string) {
	fmt.Fprintf(t.w, "%+.3fs #%d %s\n", rec.Time.Sub(t.base).Seconds(), rec.Seq, summary)
}

// field writes a labelled detail, one line per value; nothing when there
// are no values.
func (t *transcript) field(label string, values ...string) {
	for i, v := range values {
		if i > 0 {
			label = ""
		}
		t.w.WriteString(strings.TrimRight(fmt.Sprintf("    %-10s %s", label, v), " "))
		t.w.WriteByte('\n')
	}
}

func (t *transcript) header(h Header) {
	t.resultCap = h.Recorder.ResultCap
	fmt.Fprintf(t.w, "Session %s (recording format %d)\n", clean(h.Session, false), h.Version)
	t.field("host", clean(h.Host, false))
	t.field("started", stamp(h.Start))
	t.field("protocol", clean(h.Protocol, false))
	target := clean(h.Target.Name, false) + " at " + clean(h.Target.Address, false)
	if len(h.Target.Labels) > 0 {
		var l []string
		for _, k := range slices.Sorted(maps.Keys(h.Target.Labels)) {
			l = append(l, clean(k, false)+"="+clean(h.Target.Labels[k], false))
		}
		target += " (" + strings.Join(l, ", ") + ")"
	}
	t.field("target", target)
	id := h.Identity
	t.field("subject", clean(id.Subject, false))
	t.field("issuer", clean(id.Issuer, false))
	if id.Job != "" {
		t.field("job", clean(id.Job, false))
	}
	if id.Cgroup != "" {
		t.field("cgroup", clean(id.Cgroup, false))
	}
	if len(id.Claims) > 0 {
		var l []string
		for _, k := range slices.Sorted(maps.Keys(id.Claims)) {
			l = append(l, clean(k, false)+"="+value(id.Claims[k]))
		}
		t.field("claims", l...)
	}
	p := h.Process
	proc := fmt.Sprintf("pid %d, uid %d", p.PID, p.UID)
	if p.Comm != "" {
		proc = clean(p.Comm, false) + ", " + proc
	}
	if p.Exe != "" {
		proc += ", " + clean(p.Exe, false)
	}
	t.field("process", proc)
	if len(p.Cmdline) > 0 {
		q := make([]string, len(p.Cmdline))
		for i, a := range p.Cmdline {
			q[i] = shellQuote(a)
		}
		t.field("cmdline", strings.Join(q, " "))
	}
	for _, pp := range p.Parents {
		t.field("parent", strings.TrimSpace(fmt.Sprintf("%d %s %s", pp.PID, clean(pp.Comm, false), clean(pp.Exe, false))))
	}
	c := h.Connection
	t.field("client", clean(c.Client, false)+tls(c.AgentTLS))
	t.field("upstream", clean(c.Upstream, false)+tls(c.UpstreamTLS))
	if tm := h.Terminal; tm != nil {
		t.field("terminal", strings.TrimSpace(fmt.Sprintf("%dx%d %s", tm.Width, tm.Height, clean(tm.Term, false))))
	}
	enc := "not encrypted"
	if h.Recorder.Encrypted {
		enc = "encrypted"
	}
	t.field("recording", fmt.Sprintf("result samples up to %d bytes, %s", h.Recorder.ResultCap, enc))
	t.w.WriteByte('\n')
}

// tls marks a leg known to be TLS when the session started; handlers
// that negotiate TLS later say so in notes.
func tls(on bool) string {
	if on {
		return ", TLS"
	}
	return ""
}

func (t *transcript) request(rec Record, r Request) {
	d := r.Decision
	verdict := "REFUSED"
	switch {
	case d.Allowed:
		verdict = "ALLOWED"
	case d.ApprovalRequired:
		verdict = "HELD FOR APPROVAL"
	}
	s := fmt.Sprintf("request %s: %s %s", clean(r.ID, false), clean(r.Action, false), verdict)
	if r.Critical {
		s += " (critical)"
	}
	t.event(rec, s)
	if r.Text != "" {
		t.field("text", textLines(r.Text)...)
	}
	if len(r.Operation) > 0 {
		t.field("operation", value(r.Operation))
	}
	for _, why := range d.Reasons {
		t.field("reason", textLines(why)...)
	}
	if len(d.Reviewers) > 0 {
		t.field("reviewers", cleanAll(d.Reviewers))
	}
	for _, m := range d.Mask {
		t.field("mask", value(m))
	}
}

func (t *transcript) result(rec Record, r Result) {
	s := fmt.Sprintf("result %s: %s, %s, %s", clean(r.Request, false), count(r.Rows, "row"), count(r.Bytes, "byte"), r.Duration)
	if r.Tag != "" {
		s += ", " + clean(r.Tag, false)
	}
	t.event(rec, s)
	if e := r.Error; e != nil {
		msg := clean(e.Message, false)
		if e.Code != "" {
			msg = clean(e.Code, false) + ": " + msg
		}
		t.field("error", msg)
	}
	if len(r.Masked) > 0 {
		var l []string
		for _, k := range slices.Sorted(maps.Keys(r.Masked)) {
			l = append(l, fmt.Sprintf("%s %d", clean(k, false), r.Masked[k]))
		}
		t.field("masked", strings.Join(l, ", "))
	}
	rows := r.RowsSample
	if t.opts.Rows > 0 && len(rows) > t.opts.Rows {
		rows = rows[:t.opts.Rows]
	}
	if len(rows) > 0 || len(r.Columns) > 0 {
		t.field("sample", t.table(r.Columns, rows)...)
	}
	var notes []string
	if n := len(r.RowsSample) - len(rows); n > 0 {
		notes = append(notes, fmt.Sprintf("%d more sample rows not shown", n))
	}
	if r.Truncated {
		notes = append(notes, fmt.Sprintf("sample truncated at the %d-byte cap: %d of %d rows kept", t.resultCap, len(r.RowsSample), r.Rows))
	}
	if len(notes) > 0 {
		t.field("", "("+strings.Join(notes, "; ")+")")
	}
}

// table lays rows out in columns; the header row and rule only when there
// are column names.
func (t *transcript) table(columns []string, rows [][]string) []string {
	var cells [][]string
	if len(columns) > 0 {
		cells = append(cells, t.cells(columns))
	}
	for _, r := range rows {
		cells = append(cells, t.cells(r))
	}
	var width []int
	for _, r := range cells {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var out []string
	line := func(r []string) string {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			}
		}
		return b.String()
	}
	for i, r := range cells {
		out = append(out, line(r))
		if i == 0 && len(columns) > 0 {
			rule := make([]string, len(width))
			for j, n := range width {
				rule[j] = strings.Repeat("-", n)
			}
			out = append(out, strings.ReplaceAll(line(rule), " | ", "-+-"))
		}
	}
	return out
}

func (t *transcript) cells(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		c = clean(c, false)
		if utf8.RuneCountInString(c) > t.opts.CellWidth {
			r := []rune(c)
			c = string(r[:t.opts.CellWidth-1]) + "…"
		}
		out[i] = c
	}
	return out
}

func (t *transcript) refusal(rec Record, r Refusal) {
	t.event(rec, fmt.Sprintf("refusal at %s: %s", clean(r.Stage, false), clean(r.Outcome, false)))
	if r.Reason != "" {
		t.field("reason", textLines(r.Reason)...)
	}
	if r.Request != "" {
		t.field("request", clean(r.Request, false))
	}
	if r.Text != "" {
		t.field("text", textLines(r.Text)...)
	}
	if len(r.Operation) > 0 {
		t.field("operation", value(r.Operation))
	}
}

func (t *transcript) approval(rec Record, a Approval) {
	s := fmt.Sprintf("approval %s for %s: %s", clean(a.ID, false), clean(a.Request, false), clean(a.Status, false))
	if a.Reviewer != "" {
		s += " by " + clean(a.Reviewer, false)
	}
	t.event(rec, s)
	if a.Reason != "" {
		t.field("reason", textLines(a.Reason)...)
	}
	if !a.Decided.IsZero() {
		t.field("decided", stamp(a.Decided))
	}
	if !a.Until.IsZero() {
		t.field("until", stamp(a.Until))
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// value renders a decoded JSON value on one line, map keys sorted.
func value(v any) string {
	if s, ok := v.(string); ok {
		return clean(s, false)
	}
	b, err := marshalValue(v)
	if err != nil {
		return "[" + clean(err.Error(), false) + "]"
	}
	return clean(string(b), false)
}

func cleanAll(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = clean(s, false)
	}
	return strings.Join(out, ", ")
}

// textLines splits recorded text (a statement, a reason) into cleaned
// lines; it always returns at least one.
func textLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = clean(l, true)
	}
	return lines
}

// clean makes recorded text safe to print on a terminal: control
// characters (C0, DEL, C1), format characters (bidirectional overrides,
// zero-width characters: the "Trojan Source" tricks), line and paragraph
// separators and bytes that are not UTF-8 are shown as Go-style escapes.
// Tabs are kept when keepTab is set.
func clean(s string, keepTab bool) string {
	ok := true
	for _, r := range s {
		if needsEscape(r, keepTab) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t' && !keepTab:
			b.WriteString(`\t`)
		case r < 0x80 && needsEscape(r, keepTab):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r, keepTab):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune, keepTab bool) bool {
	if r == '\t' {
		return !keepTab
	}
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// shellQuote leaves plain arguments alone and quotes the others (Go
// syntax, which also escapes what a terminal would act on), so that an
// argument with spaces stays visibly one argument.
func shellQuote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// count writes n and the noun, plural unless n is 1.
func count(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

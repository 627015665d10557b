package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/protocol/postgres/pgsql"
)

// Type OIDs whose values are text in both formats (binary text is the
// UTF-8 itself; binary jsonb is a version byte, then text).
var textual = map[uint32]bool{
	pgtype.TextOID: true, pgtype.VarcharOID: true, pgtype.BPCharOID: true, pgtype.NameOID: true,
	pgtype.JSONOID: true, pgtype.JSONBOID: true, pgtype.XMLOID: true, pgtype.UnknownOID: true,
	pgtype.QCharOID: true,
}

// firstUserOID: types above it (enums, domains, extension types such as
// citext) are unknown here; in text format their values are text.
const firstUserOID = 16384

// colPlan says how one result column is masked.
type colPlan struct {
	rule    *mask.Rule // whole-value rule; nil: detectors only
	text    bool       // values can be rewritten in place as text
	format  int16
	typeOID uint32
}

// rowPlan masks the rows of one result set.
type rowPlan struct {
	m    *mask.Masker
	cols []colPlan
	buf  []byte
}

// newRowPlan prepares masking for a result described by fields. reads are
// the relations the statement reads: an expression column in a statement
// that reads a table covered by a column rule is masked as if it were that
// column (an expression can carry the column's value out, renamed).
func (c *conn) newRowPlan(m *mask.Masker, fields []pgproto3.FieldDescription, reads []string) *rowPlan {
	if m == nil || m.Empty() {
		return nil
	}
	p := &rowPlan{m: m, cols: make([]colPlan, len(fields))}
	var rels map[uint32]*relation
	if m.HasColumns() {
		var oids []uint32
		for _, f := range fields {
			if f.TableOID != 0 {
				oids = append(oids, f.TableOID)
			}
		}
		if len(oids) > 0 {
			var err error
			rels, err = c.h.catalogs.relations(context.Background(), c.s, c.database, oids)
			if err != nil {
				// Without names the column rules cannot be matched:
				// fail closed, every column redacted.
				c.log.Error("catalog lookup failed; redacting every column", "err", err)
				redact := mask.Rule{Strategy: mask.Redact, Name: "catalog-unavailable"}
				for i, f := range fields {
					p.cols[i] = colPlan{rule: &redact, format: f.Format, typeOID: f.DataTypeOID}
				}
				return p
			}
		}
	}
	for i, f := range fields {
		cp := colPlan{format: f.Format, typeOID: f.DataTypeOID}
		cp.text = textual[f.DataTypeOID] || (f.Format == 0 && f.DataTypeOID >= firstUserOID)
		if m.HasColumns() {
			if r, ok := c.columnRule(m, f, rels, reads, cp.text); ok {
				cp.rule = &r
			}
		}
		p.cols[i] = cp
	}
	return p
}

// columnRule finds the column rule for a result column: by the column it
// comes from (table OID and attribute number, so an alias does not hide
// it), else by its output name; a text expression column of a statement
// that reads a covered table takes that table's first rule (a count or a
// sum cannot carry a masked text out; upper(ssn) can).
func (c *conn) columnRule(m *mask.Masker, f pgproto3.FieldDescription, rels map[uint32]*relation, reads []string, text bool) (mask.Rule, bool) {
	if f.TableOID != 0 {
		if rel, ok := rels[f.TableOID]; ok {
			if col, ok := rel.cols[f.TableAttributeNumber]; ok {
				if r, ok := m.Column(rel.qualified(), col); ok {
					return r, true
				}
			}
		}
	}
	if r, ok := m.Column("", string(f.Name)); ok {
		return r, true
	}
	if f.TableOID == 0 && text {
		for _, t := range reads {
			if r, ok := m.TableRule(t); ok {
				return r, true
			}
		}
	}
	return mask.Rule{}, false
}

// executePlan is the row plan of an Execute: the portal's description,
// or the statement's with the formats the Bind asked for.
func (c *conn) executePlan(p *pending) *rowPlan {
	if p.masker == nil || p.masker.Empty() || p.portal == nil {
		return nil
	}
	fields := p.portal.desc
	if fields == nil && p.portal.stmt != nil && p.portal.stmt.desc != nil {
		fields = cloneFields(p.portal.stmt.desc)
		for i := range fields {
			switch {
			case len(p.portal.formats) == 1:
				fields[i].Format = p.portal.formats[0]
			case i < len(p.portal.formats):
				fields[i].Format = p.portal.formats[i]
			}
		}
	}
	var reads []string
	if p.portal.stmt != nil && len(p.portal.stmt.statements) > 0 {
		reads = p.portal.stmt.statements[0].Reads
	}
	if fields == nil {
		// No description (cannot happen: one is always requested when
		// masking is on); redact everything rather than guess.
		return &rowPlan{m: p.masker}
	}
	return c.newRowPlan(p.masker, fields, reads)
}

// maskRow rewrites a DataRow in place. Values are replaced, lengths are
// recomputed when the row is encoded.
func (p *rowPlan) maskRow(row *pgproto3.DataRow, st *mask.Stats) {
	if p.cols == nil {
		for i := range row.Values {
			if row.Values[i] != nil {
				row.Values[i] = []byte("[REDACTED]")
			}
		}
		return
	}
	for i, v := range row.Values {
		if v == nil || i >= len(p.cols) {
			continue
		}
		cp := &p.cols[i]
		out, changed, null := p.maskValue(cp, v, st)
		switch {
		case null:
			row.Values[i] = nil
		case changed:
			row.Values[i] = out
		}
	}
}

// maskValue masks one non-NULL value. Textual values are rewritten in
// place; a value of any other type cannot hold "[REDACTED]" and still be a
// valid value of its type, so a rule or a detector hit turns it into NULL.
func (p *rowPlan) maskValue(cp *colPlan, v []byte, st *mask.Stats) (out []byte, changed, null bool) {
	// Binary jsonb is a version byte (1) and the JSON text; anything else
	// is scanned whole.
	jsonb := cp.typeOID == pgtype.JSONBOID && cp.format == 1 && len(v) > 0 && v[0] == 1
	if cp.rule != nil {
		if !cp.text {
			return nil, false, true
		}
		body := v
		if jsonb {
			body = v[1:]
		}
		out, isNull := p.m.Value(nil, body, *cp.rule, st)
		if isNull {
			return nil, false, true
		}
		if jsonb {
			out = append([]byte{v[0]}, out...)
		}
		if cp.typeOID == pgtype.JSONOID || cp.typeOID == pgtype.JSONBOID {
			// Keep it valid JSON: a masked JSON value becomes a string.
			out = jsonString(out, jsonb)
		}
		return out, true, false
	}
	if !p.m.Detects() {
		return nil, false, false
	}
	if cp.text {
		body := v
		if jsonb {
			body = v[1:]
		}
		out, hits := p.m.Text(p.buf[:0], body, st)
		if hits == 0 {
			return nil, false, false
		}
		res := make([]byte, 0, len(out)+1)
		if jsonb {
			res = append(res, v[0])
		}
		res = append(res, out...)
		p.buf = out[:0]
		return res, true, false
	}
	// Not text: look at its text form (decoding the common binary
	// numeric types), and null it on a hit.
	form := v
	if cp.format == 1 {
		form = binaryText(cp.typeOID, v)
	}
	if _, hits := p.m.Text(p.buf[:0], form, st); hits > 0 {
		return nil, false, true
	}
	return nil, false, false
}

// jsonString quotes masked text as a JSON string.
func jsonString(b []byte, jsonb bool) []byte {
	start := 0
	var prefix []byte
	if jsonb {
		prefix, start = b[:1], 1
	}
	q := strconv.AppendQuote(append([]byte(nil), prefix...), string(b[start:]))
	return q
}

// binaryText renders binary integers and floats as text for detection;
// other types are scanned as raw bytes (text embedded in arrays, records
// and the like is found that way).
func binaryText(oid uint32, v []byte) []byte {
	switch {
	case oid == pgtype.Int8OID && len(v) == 8:
		return strconv.AppendInt(nil, int64(binary.BigEndian.Uint64(v)), 10)
	case oid == pgtype.Int4OID && len(v) == 4:
		return strconv.AppendInt(nil, int64(int32(binary.BigEndian.Uint32(v))), 10)
	case oid == pgtype.Int2OID && len(v) == 2:
		return strconv.AppendInt(nil, int64(int16(binary.BigEndian.Uint16(v))), 10)
	case oid == pgtype.Float8OID && len(v) == 8:
		return strconv.AppendFloat(nil, math.Float64frombits(binary.BigEndian.Uint64(v)), 'f', -1, 64)
	case oid == pgtype.NumericOID:
		return numericText(v)
	}
	return v
}

// numericText decodes a binary numeric (PostgreSQL's base-10000 digits)
// to its digits; only the digits matter for detection. src/backend/utils/
// adt/numeric.c, numeric_send.
func numericText(v []byte) []byte {
	if len(v) < 8 {
		return v
	}
	n := int(binary.BigEndian.Uint16(v))
	if len(v) < 8+2*n || n > 1000 {
		return v
	}
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	if weight > 256 {
		// Beyond any number a detector looks for; scan the raw bytes.
		return v
	}
	var out []byte
	for i := 0; i < n; i++ {
		d := binary.BigEndian.Uint16(v[8+2*i:])
		if d > 9999 {
			return v // not a valid base-10000 digit
		}
		s := strconv.Itoa(int(d))
		if i > 0 {
			s = strings.Repeat("0", 4-len(s)) + s
		}
		if i == weight+1 {
			out = append(out, '.')
		}
		out = append(out, s...)
	}
	for i := n; i <= weight; i++ {
		out = append(out, "0000"...)
	}
	return out
}

// copyPlan masks COPY ... TO STDOUT rows.
type copyPlan struct {
	m *mask.Masker
	// cols are the rules per field; nil: detectors only on the whole row.
	cols  []*mask.Rule
	delim byte
	buf   []byte
}

// planCopy prepares masking for COPY TO, or refuses a COPY whose output
// cannot be masked faithfully.
func (c *conn) planCopy(ctx context.Context, st *pgsql.Statement, m *mask.Masker) (*copyPlan, *refusal) {
	cp := st.Copy
	if cp.Direction != "to" || m == nil || m.Empty() {
		return nil, nil
	}
	if cp.Binary {
		return nil, denied("COPY in binary format cannot be masked; use text or csv format")
	}
	plan := &copyPlan{m: m, delim: '\t'}
	if cp.CSV {
		plan.delim = ','
	}
	if cp.Delimiter != "" {
		plan.delim = cp.Delimiter[0]
	}
	if !m.HasColumns() {
		return plan, nil
	}
	if cp.CSV || cp.Delimiter != "" {
		return nil, denied("COPY with column masking supports the default text format only")
	}
	if cp.Query {
		for _, t := range st.Reads {
			if _, ok := m.TableRule(t); ok {
				return nil, denied("COPY (query) TO reads a table with masked columns; use COPY table or SELECT")
			}
		}
		return plan, nil
	}
	table, cols := cp.Table, cp.Columns
	qualified := table
	if len(cols) == 0 || !strings.Contains(table, ".") {
		name, all, err := c.h.catalogs.columns(ctx, c.s, c.database, table)
		if err != nil {
			return nil, denied("cannot resolve the columns of " + table + " for masking")
		}
		qualified = name
		if len(cols) == 0 {
			cols = all
		}
	}
	for _, col := range cols {
		if r, ok := m.Column(qualified, col); ok {
			plan.cols = append(plan.cols, &r)
		} else {
			plan.cols = append(plan.cols, nil)
		}
	}
	return plan, nil
}

// maskRow masks one CopyData message (PostgreSQL sends one row per
// message). Fields are split on the delimiter for column rules; detectors
// run over the whole row: their replacements contain no delimiter, quote,
// backslash or newline, so the row keeps its format.
func (p *copyPlan) maskRow(msg *pgproto3.CopyData, st *mask.Stats) {
	data := msg.Data
	if len(p.cols) > 0 {
		data = p.maskFields(data, st)
	}
	if p.m.Detects() {
		if out, hits := p.m.Text(p.buf[:0], data, st); hits > 0 {
			data = append([]byte(nil), out...)
			p.buf = out[:0]
		}
	}
	msg.Data = data
}

func (p *copyPlan) maskFields(row []byte, st *mask.Stats) []byte {
	nl := bytes.HasSuffix(row, []byte{'\n'})
	body := bytes.TrimSuffix(row, []byte{'\n'})
	fields := bytes.Split(body, []byte{p.delim})
	var out []byte
	for i, f := range fields {
		if i > 0 {
			out = append(out, p.delim)
		}
		if i < len(p.cols) && p.cols[i] != nil && !bytes.Equal(f, []byte(`\N`)) {
			v, null := p.m.Value(nil, f, *p.cols[i], st)
			if null {
				out = append(out, `\N`...)
			} else {
				out = append(out, v...)
			}
			continue
		}
		out = append(out, f...)
	}
	if nl {
		out = append(out, '\n')
	}
	return out
}

// maskNotice masks the text fields of an error or notice: messages echo
// data ("Key (email)=(a@b.example) already exists").
func (c *conn) maskNotice(e *pgproto3.ErrorResponse) {
	m := c.lastMasker()
	if m == nil {
		return
	}
	for _, f := range []*string{&e.Message, &e.Detail, &e.Hint, &e.Where, &e.InternalQuery} {
		if *f == "" {
			continue
		}
		if out, hits := m.Text(nil, []byte(*f), nil); hits > 0 {
			*f = string(out)
		}
	}
	if m.HasColumns() && strings.Contains(e.Detail, ")=(") {
		// The value part of a key detail may be a masked column's.
		i := strings.Index(e.Detail, ")=(")
		if j := strings.LastIndexByte(e.Detail, ')'); j > i+2 {
			e.Detail = e.Detail[:i+3] + "[REDACTED]" + e.Detail[j:]
		}
	}
}

func (c *conn) maskNotification(n *pgproto3.NotificationResponse) {
	if m := c.lastMasker(); m != nil {
		if out, hits := m.Text(nil, []byte(n.Payload), nil); hits > 0 {
			n.Payload = string(out)
		}
	}
}

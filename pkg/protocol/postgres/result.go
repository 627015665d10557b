package postgres

import (
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/record"
)

// result gathers what the recording says about one statement's response:
// how many rows and bytes, what was masked, and the first rows as the
// agent saw them (after masking), within the recording's cap.
type result struct {
	req     string
	started time.Time
	rows    int64
	bytes   int64
	fields  []pgproto3.FieldDescription
	columns []string
	sample  *record.Sample
	full    bool // the sample is full: stop converting rows
	stats   mask.Stats
}

// resultFor returns acc if it is for p's current statement, else a new
// result for it.
func (c *conn) resultFor(acc *result, p *pending, qi int) *result {
	req, started := p.req, p.started
	if p.kind == kQuery && qi < len(p.query) {
		req = p.query[qi].req
	}
	if acc != nil && acc.req == req {
		return acc
	}
	return &result{req: req, started: started, sample: c.s.Rec.Sample()}
}

func (r *result) describe(fields []pgproto3.FieldDescription) {
	r.fields = fields
	r.columns = make([]string, len(fields))
	for i, f := range fields {
		r.columns[i] = string(f.Name)
	}
}

// row counts a DataRow (already masked) and samples it.
func (r *result) row(m *pgproto3.DataRow) {
	r.rows++
	for _, v := range m.Values {
		r.bytes += int64(len(v))
	}
	if r.full {
		return
	}
	cells := make([]string, len(m.Values))
	for i, v := range m.Values {
		var f pgproto3.FieldDescription
		if i < len(r.fields) {
			f = r.fields[i]
		}
		cells[i] = cellText(f, v)
	}
	r.full = !r.sample.Add(cells)
}

// copyRow counts and samples one COPY data row.
func (r *result) copyRow(data []byte) {
	r.rows++
	r.bytes += int64(len(data))
	if !r.full {
		r.full = !r.sample.Add([]string{string(data)})
	}
}

// cellText renders a (masked) value for the recording's sample.
func cellText(f pgproto3.FieldDescription, v []byte) string {
	switch {
	case v == nil:
		return "NULL"
	case f.Format == 0 || textual[f.DataTypeOID]:
		if f.DataTypeOID == pgtype.JSONBOID && f.Format == 1 && len(v) > 0 && v[0] == 1 {
			v = v[1:]
		}
		return string(v)
	}
	switch f.DataTypeOID {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float8OID, pgtype.NumericOID:
		return string(binaryText(f.DataTypeOID, v))
	}
	if len(v) > 64 {
		return `\x` + hex.EncodeToString(v[:64]) + "…"
	}
	return `\x` + hex.EncodeToString(v)
}

func executeFields(p *pending) []pgproto3.FieldDescription {
	if p.portal == nil {
		return nil
	}
	if p.portal.desc != nil {
		return p.portal.desc
	}
	if p.portal.stmt != nil {
		return p.portal.stmt.desc
	}
	return nil
}

func tag(m pgproto3.BackendMessage) string {
	if cc, ok := m.(*pgproto3.CommandComplete); ok {
		return string(cc.CommandTag)
	}
	return "(empty query)"
}

// finishResult writes the result record. It is written after the response
// went to the agent: the request record, written before the request went
// on, is the one that must not be missing.
func (c *conn) finishResult(r *result, tag string, e *pgproto3.ErrorResponse) {
	if r == nil || r.req == "" {
		return
	}
	res := record.Result{
		Request: r.req, Rows: r.rows, Bytes: r.bytes, Tag: tag,
		Columns: r.columns, RowsSample: r.sample.Rows(), Truncated: r.sample.Truncated(),
	}
	if !r.started.IsZero() {
		res.Duration = time.Since(r.started)
	}
	if m := r.stats.Map(); len(m) > 0 {
		res.Masked = m
		for k, n := range m {
			c.masked[k] += n
		}
	}
	if e != nil {
		res.Error = &record.ResultError{Code: e.Code, Message: e.Message}
	}
	if err := c.s.Rec.Result(res); err != nil {
		c.log.Error("record result", "err", err)
	}
}

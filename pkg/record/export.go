package record

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"
)

// exported is the shape of one Export line.
type exported struct {
	Seq       uint64          `json:"seq"`
	T         string          `json:"t"`
	Kind      Kind            `json:"kind"`
	Prev      string          `json:"prev"`
	Hash      string          `json:"hash"`
	Encrypted bool            `json:"encrypted,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// Export writes recs as JSON Lines for other tools: one object per record
// with seq, t, kind, prev, hash, data (decrypted if the records were read
// with an identity) and "encrypted":true where they were not. Unlike the
// recording itself, the lines are not hashed: Export is a view, and the
// hashes it carries are those of the recorded lines.
func Export(w io.Writer, recs iter.Seq2[Record, error]) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for rec, err := range recs {
		if err != nil {
			bw.Flush()
			return err
		}
		if err := enc.Encode(exported{
			Seq:       rec.Seq,
			T:         rec.Time.UTC().Format(time.RFC3339Nano),
			Kind:      rec.Kind,
			Prev:      rec.Prev,
			Hash:      rec.Hash,
			Encrypted: rec.Encrypted,
			Data:      rec.Data,
		}); err != nil {
			return fmt.Errorf("export record %d: %w", rec.Seq, err)
		}
	}
	return bw.Flush()
}

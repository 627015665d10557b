// Package record writes and reads session recordings: one append-only,
// tamper-evident, crash-safe log file per proxied connection. The daemon
// creates a Writer per connection and appends a record for every request,
// decision, result, refusal, approval and terminal chunk as it happens; the
// CLI (sluice replay, verify, export) reads the files back, months later,
// on a machine that need not trust the host that wrote them.
//
// The writing side is Create and Writer (Append, Close, Position, Seal,
// NewSample). The reading side decodes with Read or Records, checks with
// Verify (against the index's Seal when there is one), and renders with
// Transcript (for people), Play and Asciicast (terminal sessions) and
// Export (JSON Lines for tools).
//
// # File format (version 1)
//
// A recording is JSON Lines: one record per line, UTF-8, each line ended by
// "\n". Every line is an object with exactly these fields, in this order
// and with no insignificant whitespace outside data:
//
//	{"seq":N,"t":"<RFC 3339, nanoseconds, UTC>","kind":"<kind>","prev":"<hex>","data":{...}}
//
// seq counts from 0. Record 0 is the header (who, what, where, how it is
// recorded); the last record of a properly closed file is the end record,
// which seals it: its data repeats the number of records before it and the
// hash of the last one, and nothing may follow it.
//
// prev is the lowercase hex SHA-256 of the previous line's bytes, newline
// excluded. The header's prev is Genesis, the SHA-256 of the ASCII string
// "sluice-record-v1": a fixed domain-separation value rather than the hash
// of the empty string, so that a recording cannot be confused with (or
// spliced onto) some other hash chain, and so that a verifier can tell the
// start of a recording from a header that was cut out of the middle of
// one. Because every line commits to the one before it, an edit, deletion,
// insertion or reordering breaks the chain at the following line. What the
// chain cannot show on its own is a cut at a record boundary, or a whole
// file rewritten with a fresh chain: for that, the index keeps a Seal
// (record count and hash of the final line) taken at Close, and Verify
// compares the file with it.
//
// # Durability
//
// Append encodes a record and hands it to the kernel in a single write(2)
// before it returns; there is no user-space buffer. A crash of the process
// (kill -9, a panic elsewhere) therefore loses nothing that was appended.
// A power loss or kernel crash loses what was not yet on disk: records
// appended with durable set are fsynced before Append returns, the others
// reach the disk when the kernel writes them back, or at the next durable
// append or Close. Create fsyncs the header and the directory entry, so a
// recording that Create returned survives a power loss.
//
// A crash in the middle of a write can leave a final line without its
// newline. Such a torn line was never acknowledged to the caller (Append
// had not returned), so readers ignore it and Verify reports the file as
// "interrupted" with the torn length in Report.Torn, not as tampered —
// unless the file was sealed, or an index Seal says it was: then anything
// missing or extra is tampering.
//
// # Encryption at rest
//
// With Options.Recipient set (an age recipient: the auditor's public key),
// Create generates a random 32-byte file key, wraps it to the recipient
// with age and stores the wrapped key in the header. The key is kept only
// in the Writer's memory, so the host can write a recording but cannot
// read it back. The data of every record after the header, except the end
// record, is replaced by {"enc":"<base64 of nonce||ciphertext>"}: the JSON
// data sealed with XChaCha20-Poly1305 under a random nonce, with the
// record's seq and kind as additional data so that a ciphertext moved to
// another record does not open. The header (who, when, where) and the end
// record (counts and hashes, nothing secret) stay in the clear, so Verify
// needs no key. Readers given the matching age.Identity see the plaintext;
// without one they see the envelopes, marked Record.Encrypted.
//
// # Limits
//
// One encoded line, newline included, is at most MaxRecordSize (1 MiB).
// Append refuses larger records with ErrTooLarge (callers bound result
// samples with Sample and should bound statement text); readers refuse
// longer lines without holding more than that in memory.
package record

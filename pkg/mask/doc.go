// Package mask rewrites sensitive values before they leave sluice.
//
// A policy decision carries mask rules (see policy.Decision.Mask). ParseRules
// turns them into Rules and New compiles them into a Masker, which every
// protocol handler shares: the PostgreSQL handler rewrites DataRow fields
// with it, and package jsonmask rewrites JSON bodies (HTTP and Kubernetes
// API responses) with it; MySQL rows and SSH output will later. The
// handler decides which values to pass in; this package decides how a value
// is masked and knows nothing about wire protocols.
//
// There are three kinds of rule:
//
//   - A column rule ({"column": "users.email", "strategy": "partial"})
//     covers every value of a result column. The handler asks
//     Masker.Column once per column (for example per RowDescription) and
//     then masks each value with Masker.Value.
//   - A detector rule ({"detector": "pan", "strategy": "redact"}) covers
//     sensitive tokens inside free text. Masker.Text finds them with a
//     single-pass scanner and replaces only the matched bytes.
//   - A path rule ({"path": "$.items[*].card", "strategy": "redact"})
//     covers values of a JSON document by where they sit in it, and every
//     value inside a covered object or array. A JSON walker tracks where
//     it is with a PathWalker and masks each covered value with
//     Masker.Value.
//
// Paths are a small subset of JSONPath (RFC 9535), enough to name fields
// of API objects:
//
//	$          the root value; must come first
//	.name      the member called name; name is letters, digits, '_' and
//	           non-ASCII characters, not starting with a digit (RFC 9535
//	           member-name-shorthand)
//	["name"]   the member called name, written as a JSON string, for
//	           other names: ["kubernetes.io/name"], ["api-key"]
//	.* or [*]  any member of an object or any element of an array
//	..name     the member called name at any depth below; also ..*, ..[*]
//	           and ..["name"]
//
// Names match exactly, case included, as JSON keys do. Array indexes,
// slices, filters and single-quoted names are rejected rather than guessed
// at. Paths are compiled once, by New; when several path rules cover a
// value, directly or through a value enclosing it, the first in rule order
// wins.
//
// Detectors: pan (payment card numbers, Luhn-checked), email, us_ssn
// (ddd-dd-dddd only), iban (ISO 13616, mod-97 checked), phone (E.164 and
// North American), jwt, aws_access_key_id and private_key (PEM blocks).
// They are deliberately conservative: a false positive garbles ordinary
// data such as dates, versions, IP addresses and order numbers, and a
// scanner that is too eager gets switched off.
//
// Strategies: redact, partial, hash (a keyed HMAC-SHA256 pseudonym, stable
// for one key) and null. A column value masked with null must be sent as
// SQL NULL or JSON null; Value reports that with its null result rather
// than with a magic byte string, so callers cannot confuse it with data.
//
// A Masker is immutable and safe for concurrent use. Counting what was
// masked is the caller's business: pass a Stats, which is cheap on the hot
// path and turns into a map for audit records.
package mask

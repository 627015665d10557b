// Package jsonmask masks JSON bodies as they stream through sluice: HTTP
// API responses and Kubernetes API responses, including watch streams,
// which can be hundreds of megabytes (a list of a million objects) or never
// end. The HTTP and Kubernetes handlers wrap the response body's
// destination in a Writer for JSON content types; what is masked, and how,
// comes from the policy decision's mask rules (package mask).
//
// A Writer tokenizes its input incrementally (RFC 8259) and copies it to
// its destination token by token, as soon as each token is complete. It
// never holds the document: at most one string or number, bounded by
// Options.MaxToken, and the path from the root to the current value,
// bounded by Options.MaxDepth. Whitespace, keys, structure and every value
// nothing masks pass through byte for byte, so a body nothing matches comes
// out identical.
//
// Each string, number and boolean value is masked by
//
//   - the path rule covering it (see mask.PathWalker), if any: the rule's
//     strategy applies to the whole value, decoded, through Masker.Value.
//     A rule selecting an object or array covers every value inside it.
//     null stays null, as SQL NULL does: it carries no data.
//   - otherwise the detector rules, run over the decoded string (or the
//     number as written) through Masker.Text, replacing only the matches.
//
// Object keys are never masked, only used to follow paths.
//
// Strings are decoded before masking, escapes (\n, \uXXXX, surrogate
// pairs) included, so a card written as "4111\u00201111 1111 1111" is
// found and a hash pseudonym does not depend on how the value was escaped.
// A masked string is encoded again as JSON; a lone surrogate escape in it
// becomes U+FFFD. Unmasked strings are copied as written.
//
// A masked number or boolean becomes a JSON string: 4111111111111111
// turns into "[REDACTED:pan]" or "************1111", and true under a
// redact rule into "[REDACTED]". The type changes because no number can
// say "redacted"; clients that insist on a number see a type error rather
// than a plausible fake. With the null strategy it becomes null.
//
// A string or number longer than Options.MaxToken that a rule could cover
// (a path rule covers it, or any detector is on) is not held in memory to
// be inspected: it is replaced whole, by null under a null rule and by
// "[REDACTED]" otherwise, and counted against its rule or, for detectors,
// as "jsonmask:oversize". Masking fails closed. Values no rule can cover
// stream through whatever their length.
//
// Input that is not JSON stops the Writer with a *SyntaxError giving the
// byte offset; nesting deeper than Options.MaxDepth stops it with a
// *DepthError. Everything written before the offending token is passed on,
// so the output is a prefix of what valid input would have produced. A
// Writer accepts one JSON value or a stream of them, separated by
// whitespace or not, as in newline-delimited JSON and Kubernetes watch
// responses; each value's paths start again at $.
package jsonmask

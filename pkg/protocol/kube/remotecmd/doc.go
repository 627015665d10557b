// Package remotecmd watches the byte streams of Kubernetes exec, attach
// and port-forward sessions after the HTTP upgrade, and turns them into
// Events a recording can keep: stdin, stdout and stderr as a replayable
// terminal stream, terminal resizes, the exit status, and port-forward data
// per port. The kube protocol handler feeds it both directions of a
// connection while it copies them; it never alters, delays or answers
// anything, so a session it cannot follow still works, and Err says why
// the record stops.
//
// Two wire protocols carry these sessions:
//
//   - WebSocket (RFC 6455) with the channel subprotocols channel.k8s.io,
//     v4.channel.k8s.io, v5.channel.k8s.io and their base64 variants: the
//     first byte of each message names the channel (0 stdin, 1 stdout,
//     2 stderr, 3 error, 4 resize; v5 adds 255, "close this channel").
//     Port-forward over WebSocket uses the same subprotocols with two
//     channels per port; newer clients instead tunnel SPDY inside binary
//     messages (SPDY/3.1+portforward.k8s.io).
//   - SPDY/3.1 (draft 3.1, as spoken by github.com/moby/spdystream): the
//     client opens one stream per channel, named by its streamType header,
//     and DATA frames carry the bytes.
//
// Where the specifications and the real peers (kubelet's wsstream,
// client-go, spdystream) differ, the observer follows the peers: it reports
// what the far end will act on. Bytes the far end would drop (DATA on a
// stream it never accepted, frames after a WebSocket close) are dropped
// here too; input the far end would reject stops observation with an
// error, so the record never claims something that did not happen.
//
// Nothing is buffered whole: data frames of any size come out as Events
// piece by piece, and every length that must be buffered (frame headers,
// control frames, SPDY header blocks, status and resize messages) has a
// limit that errors name.
package remotecmd

// Package identity is sluice's view of workload identity: OIDC ID tokens.
//
// Issuer is the embedded issuer every sluiced carries, so a fresh host needs
// no external IdP: it keeps an ECDSA key in the state directory, mints
// short-lived tokens (`sluice token`) and serves its discovery document and
// JWKS like any OIDC provider. Verifier checks tokens from that issuer and
// from configured external ones (GitHub Actions, GitLab, ...) with
// github.com/coreos/go-oidc/v3: signature, issuer, audience and expiry.
//
// The daemon uses both at enrollment; the verified claims are handed to
// policy unchanged.
package identity

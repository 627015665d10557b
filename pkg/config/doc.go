// Package config reads sluiced's YAML configuration, fills in defaults and
// validates it. The embedded sluice.yaml is both the documented example and
// the configuration the daemon runs on when no file is given.
//
// Decoding is strict: an unknown key is an error, so a typo in a security
// setting cannot silently fall back to a default.
package config

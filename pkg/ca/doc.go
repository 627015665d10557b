// Package ca is the host certificate authority. sluiced keeps one CA key
// and certificate in its state directory and mints short-lived leaf
// certificates for the names agents dial (a PostgreSQL target's host name
// or address, later HTTP hosts), so that an agent's TLS connection to a
// target terminates at sluice with a certificate the agent can verify once
// it trusts the host CA (`sluice ca` prints it; `sluice run` points the
// usual trust variables at it).
package ca

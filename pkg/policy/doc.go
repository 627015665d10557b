// Package policy evaluates Rego policies with Open Policy Agent, in process.
//
// An Engine is compiled once from a set of modules (package sluice) and
// answers Evaluate(Input) with a Decision for every connection and, later,
// every request a protocol handler parses. The input and decision documents
// are the contract between sluice and policy authors; see Input and
// Decision. Any failure to evaluate, or a decision of the wrong shape, is an
// error, and callers refuse on error.
package policy

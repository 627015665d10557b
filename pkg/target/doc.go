// Package target maps an original destination (what an agent dialed) to a
// configured target: name, protocol, labels, credentials. The gate refuses
// every destination that matches none.
package target

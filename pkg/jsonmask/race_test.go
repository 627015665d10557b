//go:build race

package jsonmask

const raceEnabled = true

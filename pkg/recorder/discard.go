package recorder

import "github.com/sluice-gate/sluice/pkg/record"

// Discard is a recording that keeps nothing, for daemons configured not
// to record. Requests still get ids.
type Discard struct{}

func (Discard) Request(r record.Request) (string, error) { return "r", nil }
func (Discard) Result(record.Result) error               { return nil }
func (Discard) Refusal(record.Refusal) error             { return nil }
func (Discard) Approval(record.Approval) error           { return nil }
func (Discard) Stream(string, []byte) error              { return nil }
func (Discard) Note(string) error                        { return nil }
func (Discard) Sample() *record.Sample                   { return record.NewSample(0) }

package protocol

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/record"
)

// Held is the outcome of holding a request for approval.
type Held struct {
	// Status is approved, rejected, expired, cancelled (the agent gave
	// up), failed (the approval service erred) or unavailable (there is
	// none).
	Status string
	// Reason says, for the agent, why a request that is not approved is
	// refused.
	Reason string
	// Verdict is the reviewer's answer, when there was one.
	Verdict Verdict
}

// Approved reports whether the request may go on.
func (h Held) Approved() bool { return h.Status == "approved" }

// Hold holds op, which policy decided d about (approval required), until
// a reviewer decides, the deadline passes or ctx ends; and records the
// outcome as the approval of request reqID. An outcome that cannot be
// recorded refuses the request. The caller's request simply waits.
func Hold(ctx context.Context, s *Session, op policy.Operation, d policy.Decision, reqID string) Held {
	if s.Approve == nil {
		return Held{Status: "unavailable", Reason: "approval required (" + d.Reason() + ") but no approval service is available"}
	}
	v, err := s.Approve(ctx, op, d)
	h := Held{Verdict: v}
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		h.Status, h.Reason = "cancelled", "the request was cancelled while it waited for approval"
	case err != nil:
		h.Status, h.Reason = "failed", "approval failed: "+err.Error()
	case !v.Approved:
		h.Status = "rejected"
		if v.Reason == "approval timed out" {
			h.Status = "expired"
		}
		h.Reason = "denied by " + v.Reviewer
		if v.Reason != "" {
			h.Reason += ": " + v.Reason
		}
	default:
		h.Status = "approved"
	}
	if s.Rec != nil {
		rec := record.Approval{Request: reqID, ID: v.ApprovalID, Status: h.Status, Reviewer: v.Reviewer, Reason: v.Reason, Decided: time.Now().UTC()}
		if err := s.Rec.Approval(rec); err != nil && h.Approved() {
			h.Status, h.Reason = "failed", "the approval cannot be recorded; refused"
		}
	}
	return h
}

// RecordDecision is the record of a policy decision, for a Request
// record; refusal, when not empty, is why sluice refused the request
// (which may be for reasons of its own, beyond policy's).
func RecordDecision(d policy.Decision, refusal string) record.Decision {
	rd := record.Decision{
		Allowed: refusal == "" && d.Allow && len(d.Deny) == 0, ApprovalRequired: d.Approval.Required,
		Reviewers: d.Approval.Reviewers, Mask: d.Mask,
	}
	switch {
	case refusal != "":
		rd.Reasons = []string{refusal}
	case len(d.Deny) > 0:
		rd.Reasons = d.Deny
	}
	return rd
}

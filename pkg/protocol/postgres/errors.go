package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes sluice answers with.
const (
	codeInsufficientPrivilege = "42501"
	codeSyntaxError           = "42601"
	codeProtocolViolation     = "08P01"
	codeFeatureNotSupported   = "0A000"
	codeInvalidAuthorization  = "28000"
	codeConnectionFailure     = "08006"
	codeProgramLimitExceeded  = "54000"
	codeInFailedTransaction   = "25P02"
	codeQueryCanceled         = "57014"
)

// refusal is an error sluice answers with in the protocol's own form.
type refusal struct {
	code    string
	message string
	detail  string
	hint    string
	fatal   bool
}

func (r *refusal) Error() string { return r.message }

// response renders the refusal as an ErrorResponse.
func (r *refusal) response() *pgproto3.ErrorResponse {
	sev := "ERROR"
	if r.fatal {
		sev = "FATAL"
	}
	return &pgproto3.ErrorResponse{
		Severity: sev, SeverityUnlocalized: sev, Code: r.code,
		Message: r.message, Detail: r.detail, Hint: r.hint,
	}
}

func denied(reason string) *refusal {
	return &refusal{code: codeInsufficientPrivilege, message: "sluice: " + reason}
}

func fatalf(code, format string, args ...any) *refusal {
	return &refusal{code: code, message: "sluice: " + fmt.Sprintf(format, args...), fatal: true}
}

// upstreamFailure turns an error from logging in to the target into what
// the agent may see. Server errors pass through, except authentication
// failures: their text names sluice's upstream login, which is sluice's
// business, not the agent's.
func upstreamFailure(target string, err error) *refusal {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if len(pe.Code) >= 2 && pe.Code[:2] == "28" {
			return fatalf(codeInvalidAuthorization, "target %s refused sluice's login; ask the operator to check its credentials", target)
		}
		return &refusal{code: pe.Code, message: pe.Message, detail: pe.Detail, hint: pe.Hint, fatal: true}
	}
	return fatalf(codeConnectionFailure, "cannot reach target %s", target)
}

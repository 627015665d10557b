package record

import (
	"encoding/json"
	"errors"
	"time"
)

// FormatVersion is the version of the file format this package writes and
// reads; it is stored in the header.
const FormatVersion = 1

// Genesis is the prev of every header: the hex SHA-256 of the ASCII string
// "sluice-record-v1" (see the package documentation for why).
const Genesis = "a6d3e8eecb6076996e83391a5e4af909af03a1cc58c93f3c6979c0f47a2ea746"

// MaxRecordSize bounds one encoded line, newline included. Writers refuse
// larger records; readers refuse longer lines.
const MaxRecordSize = 1 << 20

// Result sample caps (Options.ResultCap).
const (
	DefaultResultCap = 64 << 10
	// MaxResultCap leaves room in a MaxRecordSize line for the rest of a
	// Result and for the 4/3 growth of base64 when the data is encrypted.
	MaxResultCap = 512 << 10
)

// Errors callers branch on.
var (
	// ErrTooLarge: a record's encoded line would exceed MaxRecordSize, or
	// a read line does.
	ErrTooLarge = errors.New("record larger than 1 MiB")
	// ErrClosed: Append after Close, or after a failed write left the
	// file in a state the writer cannot extend.
	ErrClosed = errors.New("recording closed")
	// ErrEncrypted: the record's data is encrypted and no identity that
	// opens it was given.
	ErrEncrypted = errors.New("record data is encrypted")
	// ErrDecrypt: the record's data is encrypted and does not open with
	// the recording's file key (altered, or moved from another record).
	ErrDecrypt = errors.New("record data does not decrypt")
)

// Kind says what a record is, and so which data type it carries.
type Kind string

// Record kinds.
const (
	KindHeader   Kind = "header"   // Header; record 0
	KindRequest  Kind = "request"  // Request
	KindResult   Kind = "result"   // Result
	KindRefusal  Kind = "refusal"  // Refusal
	KindApproval Kind = "approval" // Approval
	KindStream   Kind = "stream"   // Stream
	KindNote     Kind = "note"     // Note
	KindEnd      Kind = "end"      // End; the last record of a closed file
)

func (k Kind) valid() bool {
	switch k {
	case KindHeader, KindRequest, KindResult, KindRefusal, KindApproval, KindStream, KindNote, KindEnd:
		return true
	}
	return false
}

// Record is one decoded line.
type Record struct {
	Seq  uint64
	Time time.Time
	Kind Kind
	// Prev is the hex SHA-256 of the previous line (Genesis for record 0).
	Prev string
	// Data is the record's data as JSON: decrypted when the recording is
	// encrypted and an identity was given, else as written.
	Data json.RawMessage
	// Hash is the hex SHA-256 of this line as written, newline excluded.
	Hash string
	// Encrypted is set when Data is still the {"enc":...} envelope
	// because no identity was given.
	Encrypted bool
}

// Decode unmarshals the record's data into v (a *Header, *Request, ...).
// It returns ErrEncrypted when the data could not be decrypted.
func (r Record) Decode(v any) error {
	if r.Encrypted {
		return ErrEncrypted
	}
	return json.Unmarshal(r.Data, v)
}

// Header is the data of record 0: who connected, from which process, to
// which target, and how the session is recorded. Its field set is meant
// to serve every protocol: what is protocol-specific goes into labels and
// claims, not new fields.
type Header struct {
	Version    int        `json:"version"` // FormatVersion; set by Create
	Session    string     `json:"session"`
	Host       string     `json:"host"`
	Start      time.Time  `json:"start"` // zero: set by Create from the clock
	Protocol   string     `json:"protocol"`
	Target     Target     `json:"target"`
	Identity   Identity   `json:"identity"`
	Process    Process    `json:"process"`
	Connection Connection `json:"connection"`
	// Terminal is set for sessions with a terminal (SSH shells, kubectl
	// exec); Asciicast uses its size.
	Terminal *Terminal `json:"terminal,omitempty"`
	Recorder Recorder  `json:"recorder"` // set by Create
	// Private holds, in an encrypted recording, the header's fields that
	// may carry secrets (Identity.Claims, Process.Cmdline and Parents),
	// sealed like a record's data; Read puts them back for a reader with
	// the key. What stays clear is what the index holds anyway.
	Private json.RawMessage `json:"private,omitempty"`
}

// private is the part of a header an encrypted recording seals.
type private struct {
	Claims  map[string]any `json:"claims,omitempty"`
	Cmdline []string       `json:"cmdline,omitempty"`
	Parents []Parent       `json:"parents,omitempty"`
}

// Target is the configured target the connection was bound to.
type Target struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Identity is the workload identity the connection was attributed to.
type Identity struct {
	Subject string         `json:"subject"`
	Issuer  string         `json:"issuer"`
	Claims  map[string]any `json:"claims,omitempty"`
	Job     string         `json:"job,omitempty"`
	Cgroup  string         `json:"cgroup,omitempty"`
}

// Process is the process that opened the connection.
type Process struct {
	PID     int      `json:"pid"`
	UID     int      `json:"uid"`
	Exe     string   `json:"exe,omitempty"`
	Cmdline []string `json:"cmdline,omitempty"`
	Comm    string   `json:"comm,omitempty"`
	Parents []Parent `json:"parents,omitempty"` // nearest first
}

// Parent is one ancestor of the process.
type Parent struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm,omitempty"`
	Exe  string `json:"exe,omitempty"`
}

// Connection describes both legs of the proxied connection.
type Connection struct {
	Client   string `json:"client"`   // the agent's address as the proxy saw it
	Upstream string `json:"upstream"` // the address the daemon dialed
	// AgentTLS and UpstreamTLS say a leg was TLS when the session
	// started. Handlers that negotiate TLS later (PostgreSQL's
	// SSLRequest, HTTP) record what they negotiated in notes.
	AgentTLS    bool `json:"agent_tls"`
	UpstreamTLS bool `json:"upstream_tls"`
}

// Terminal is the size and type of a session's terminal.
type Terminal struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Term   string `json:"term,omitempty"`
}

// Recorder says how the file was recorded. Create fills it in.
type Recorder struct {
	ResultCap int  `json:"result_cap"` // bytes of result sample per request
	Encrypted bool `json:"encrypted"`
	// WrappedKey is the file key encrypted with age to the recipient,
	// base64 (standard encoding) of the binary age file.
	WrappedKey string `json:"wrapped_key,omitempty"`
}

// Request is one operation an agent asked for and the decision on it.
type Request struct {
	ID     string `json:"id"`     // unique within the session, e.g. "r12"
	Action string `json:"action"` // the policy action, e.g. "select", "get"
	// Operation is what policy saw, as the protocol handler built it.
	Operation map[string]any `json:"operation,omitempty"`
	Text      string         `json:"text,omitempty"` // the statement, path or command as sent
	Decision  Decision       `json:"decision"`
	Critical  bool           `json:"critical,omitempty"` // recorded durably before the request went on
	Started   time.Time      `json:"started"`
}

// Decision is policy's answer to a request.
type Decision struct {
	Allowed          bool             `json:"allowed"`
	Reasons          []string         `json:"reasons,omitempty"`
	ApprovalRequired bool             `json:"approval_required,omitempty"`
	Reviewers        []string         `json:"reviewers,omitempty"`
	Mask             []map[string]any `json:"mask,omitempty"` // rules as policy wrote them
}

// Result summarises the response to a request.
type Result struct {
	Request  string        `json:"request"` // Request.ID
	Duration time.Duration `json:"duration_ns"`
	Rows     int64         `json:"rows"`
	Bytes    int64         `json:"bytes"`
	Tag      string        `json:"tag,omitempty"` // command tag, HTTP status, exit status
	Error    *ResultError  `json:"error,omitempty"`
	// Masked counts the values masked, by rule or detector name.
	Masked map[string]uint64 `json:"masked,omitempty"`
	// Columns names the columns of RowsSample, when the protocol has them.
	Columns []string `json:"columns,omitempty"`
	// RowsSample holds the first rows of the response, as sent to the
	// agent (after masking), within the header's result cap; Truncated
	// says the cap was hit. Build both with a Sample.
	RowsSample [][]string `json:"rows_sample,omitempty"`
	Truncated  bool       `json:"truncated,omitempty"`
}

// ResultError is the error the target (or the proxy) answered with.
type ResultError struct {
	Code    string `json:"code,omitempty"` // SQLSTATE, HTTP status, ...
	Message string `json:"message"`
}

// Refusal stages.
const (
	StageGate      = "gate"      // before a handler: attribution, binding, target
	StageConnect   = "connect"   // policy refused the connection
	StageStatement = "statement" // policy refused one request
)

// Refusal is a connection or request the gate refused.
type Refusal struct {
	Stage     string         `json:"stage"`
	Outcome   string         `json:"outcome"` // as in the gate's outcome label, e.g. "denied"
	Reason    string         `json:"reason"`
	Request   string         `json:"request,omitempty"` // Request.ID, if one was recorded
	Text      string         `json:"text,omitempty"`
	Operation map[string]any `json:"operation,omitempty"`
}

// Approval is the fate of a request held for a human's approval.
type Approval struct {
	Request  string    `json:"request"` // Request.ID
	ID       string    `json:"id"`      // the approval request's id
	Status   string    `json:"status"`  // "pending", "approved", "rejected", "expired"
	Reviewer string    `json:"reviewer,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Decided  time.Time `json:"decided,omitzero"`
	Until    time.Time `json:"until,omitzero"` // end of the approved window
}

// Stream directions, as in asciicast v2.
const (
	DirInput  = "i" // typed by the agent
	DirOutput = "o" // shown to the agent
)

// Stream is a chunk of a terminal session. Data is a JSON string, so bytes
// that are not UTF-8 are stored as U+FFFD (as in asciicast); handlers
// should not split a UTF-8 sequence across chunks.
type Stream struct {
	Dir  string `json:"dir"`
	Data string `json:"data"`
}

// Note is free text from the daemon, e.g. "daemon stopping".
type Note struct {
	Text string `json:"text"`
}

// StateClosed is End.State and Report.State for a sealed, intact file.
const StateClosed = "closed"

// End is the data of the last record, written by Close. It is never
// encrypted.
type End struct {
	Records  uint64    `json:"records"`   // records before it (= its seq)
	LastHash string    `json:"last_hash"` // hash of the record before it
	Time     time.Time `json:"time"`
	State    string    `json:"state"` // StateClosed
}

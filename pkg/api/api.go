package api

import (
	"time"

	"github.com/sluice-gate/sluice/pkg/bpf"
)

// Version is sluice's version, reported by `sluice status`.
const Version = "0.1.0"

// Paths on the API socket.
const (
	PathEnroll = "/v1/enroll"
	PathToken  = "/v1/token"
	PathStatus = "/v1/status"
	PathCA     = "/v1/ca"
)

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
}

// EnrollRequest asks the daemon to put the caller into a new job cgroup
// bound to the token's identity. The caller is the process on the other
// end of the socket (SO_PEERCRED), never a pid named in the request.
type EnrollRequest struct {
	Token string `json:"token"`
}

// EnrollResponse describes the new job.
type EnrollResponse struct {
	Job     string    `json:"job"`
	Cgroup  string    `json:"cgroup"`
	Subject string    `json:"subject"`
	Issuer  string    `json:"issuer"`
	Expiry  time.Time `json:"expiry"`
	// CABundle is a file readable by every user with the system's
	// trusted roots and the host CA, for the job's trust variables
	// (SSL_CERT_FILE, ...): sluice's certificates for the targets verify.
	CABundle string `json:"ca_bundle,omitempty"`
}

// TokenRequest asks the embedded issuer for a token.
type TokenRequest struct {
	Subject  string   `json:"subject"`
	Groups   []string `json:"groups,omitempty"`
	TTL      string   `json:"ttl,omitempty"` // Go duration; empty: 15m
	Audience string   `json:"audience,omitempty"`
}

// TokenResponse carries a minted token.
type TokenResponse struct {
	Token  string    `json:"token"`
	Expiry time.Time `json:"expiry"`
}

// Status is the daemon's health report.
type Status struct {
	Version     string    `json:"version"`
	PID         int       `json:"pid"`
	Started     time.Time `json:"started"`
	Config      string    `json:"config"`
	LastReload  time.Time `json:"last_reload"`
	ReloadError string    `json:"reload_error,omitempty"`

	Proxy         []string `json:"proxy"`
	APISocket     string   `json:"api_socket"`
	APIListen     string   `json:"api_listen,omitempty"`
	MetricsListen string   `json:"metrics_listen,omitempty"`

	CgroupMount string           `json:"cgroup_mount"`
	Cgroup      string           `json:"cgroup"`
	PinDir      string           `json:"pin_dir"`
	Features    []bpf.Feature    `json:"features"`
	Programs    []bpf.Attachment `json:"programs"`
	Kernel      bpf.Stats        `json:"kernel_stats"`
	DNS         []string         `json:"dns"`

	Issuer  string   `json:"issuer"`
	Issuers []string `json:"issuers"`
	Policy  Policy   `json:"policy"`
	Targets []Target `json:"targets"`
	Jobs    []Job    `json:"jobs"`
}

// Policy describes the loaded policy.
type Policy struct {
	Source   string   `json:"source"`
	Revision string   `json:"revision"`
	Files    []string `json:"files"`
}

// Target is a configured target.
type Target struct {
	Name     string            `json:"name"`
	Address  string            `json:"address"`
	Protocol string            `json:"protocol"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Job is an enrolled job.
type Job struct {
	ID       string    `json:"id"`
	Cgroup   string    `json:"cgroup"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Groups   []string  `json:"groups,omitempty"`
	PID      int       `json:"pid"`
	Enrolled time.Time `json:"enrolled"`
	Expiry   time.Time `json:"expiry"`
	Expired  bool      `json:"expired"`
	Procs    int       `json:"procs"`
}

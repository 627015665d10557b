package policy

import "time"

// Input is the document a policy sees as `input`.
type Input struct {
	Identity   Identity
	Process    Process
	Target     Target
	Connection Connection
	Operation  Operation
	Time       time.Time
}

// Identity is the verified workload identity bound to the job.
type Identity struct {
	Issuer  string
	Subject string
	// Claims are the token's claims, unchanged.
	Claims map[string]any
	// Job is the job id, Cgroup its cgroup path below the cgroup2 mount.
	Job    string
	Cgroup string
	Expiry time.Time
}

// Process is the process that opened the connection.
type Process struct {
	PID, TID int
	UID, GID int
	Comm     string
	Exe      string
	Cmdline  []string
	// Verified is false when /proc no longer describes the process that
	// connected (it exited, or its pid was reused); then only the
	// kernel-recorded fields (pid, uid, gid, comm) are filled in.
	Verified bool
	Parents  []Parent
}

// Parent is an ancestor of the process, nearest first.
type Parent struct {
	PID  int
	Comm string
	Exe  string
}

// Target is the configured target the destination matched.
type Target struct {
	Name     string
	Protocol string
	Address  string
	Labels   map[string]string
}

// Connection describes the network connection.
type Connection struct {
	ID          string
	Destination string
	Family      int
	Mapped      bool
}

// Operation is what is being asked for: for the connection gate
// {protocol: tcp, action: connect}; protocol handlers fill in the rest.
type Operation struct {
	Protocol string
	Action   string
	Resource string
	// Fields carries protocol-specific fields (statement kind, tables,
	// HTTP path, ...), merged into the operation object.
	Fields map[string]any
	// Key identifies the operation for decision caching within a session:
	// two operations with the same Key must have the same fields, except
	// "params" and "text". Empty: never cached.
	Key string
}

func (o Operation) value() map[string]any {
	op := make(map[string]any, len(o.Fields)+3)
	for k, v := range o.Fields {
		op[k] = v
	}
	op["protocol"] = o.Protocol
	op["action"] = o.Action
	op["resource"] = o.Resource
	return op
}

// value renders the input as the plain map OPA converts without a JSON
// round trip. Keys are the documented snake_case names.
func (in *Input) value() map[string]any {
	parents := make([]any, 0, len(in.Process.Parents))
	for _, p := range in.Process.Parents {
		parents = append(parents, map[string]any{"pid": p.PID, "comm": p.Comm, "exe": p.Exe})
	}
	cmdline := make([]any, 0, len(in.Process.Cmdline))
	for _, a := range in.Process.Cmdline {
		cmdline = append(cmdline, a)
	}
	labels := make(map[string]any, len(in.Target.Labels))
	for k, v := range in.Target.Labels {
		labels[k] = v
	}
	op := in.Operation.value()
	claims := in.Identity.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	id := map[string]any{
		"issuer":  in.Identity.Issuer,
		"subject": in.Identity.Subject,
		"claims":  claims,
		"job":     in.Identity.Job,
		"cgroup":  in.Identity.Cgroup,
	}
	if !in.Identity.Expiry.IsZero() {
		id["expiry"] = in.Identity.Expiry.UTC().Format(time.RFC3339)
	}
	target := map[string]any{}
	if in.Target.Name != "" {
		target = map[string]any{
			"name":     in.Target.Name,
			"protocol": in.Target.Protocol,
			"address":  in.Target.Address,
			"labels":   labels,
		}
	}
	return map[string]any{
		"identity": id,
		"process": map[string]any{
			"pid":      in.Process.PID,
			"tid":      in.Process.TID,
			"uid":      in.Process.UID,
			"gid":      in.Process.GID,
			"comm":     in.Process.Comm,
			"exe":      in.Process.Exe,
			"cmdline":  cmdline,
			"verified": in.Process.Verified,
			"parents":  parents,
		},
		"target": target,
		"connection": map[string]any{
			"id":          in.Connection.ID,
			"destination": in.Connection.Destination,
			"family":      in.Connection.Family,
			"mapped":      in.Connection.Mapped,
		},
		"operation": op,
		"time":      in.Time.UTC().Format(time.RFC3339Nano),
	}
}

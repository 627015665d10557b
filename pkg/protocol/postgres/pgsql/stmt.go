package pgsql

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// stmt records what the statement node does and returns its kind and
// command tag. Statement-level details (Copy, Inner, Prepared, Setting)
// go into s.
func (a *analyzer) stmt(node *pg_query.Node, s *Statement) (Kind, string) {
	switch v := node.GetNode().(type) {
	// Plannable statements.
	case *pg_query.Node_SelectStmt:
		a.selectStmt(v.SelectStmt)
		if v.SelectStmt.GetIntoClause() != nil {
			return KindDDL, "SELECT INTO"
		}
		return KindSelect, "SELECT"
	case *pg_query.Node_InsertStmt:
		a.insertStmt(v.InsertStmt)
		return KindInsert, "INSERT"
	case *pg_query.Node_UpdateStmt:
		a.updateStmt(v.UpdateStmt)
		return KindUpdate, "UPDATE"
	case *pg_query.Node_DeleteStmt:
		a.deleteStmt(v.DeleteStmt)
		return KindDelete, "DELETE"
	case *pg_query.Node_MergeStmt:
		a.mergeStmt(v.MergeStmt)
		return KindMerge, "MERGE"
	case *pg_query.Node_DeclareCursorStmt:
		a.walk(v.DeclareCursorStmt.GetQuery())
		return KindSelect, "DECLARE CURSOR"

	case *pg_query.Node_CopyStmt:
		return a.copyStmt(v.CopyStmt, s)
	case *pg_query.Node_ExplainStmt:
		return a.explain(v.ExplainStmt, s)

	// SQL-level prepared statements.
	case *pg_query.Node_PrepareStmt:
		n := v.PrepareStmt
		s.Prepared = n.GetName()
		s.Inner = a.inner(n.GetQuery(), prepareTail(s.Text))
		return KindPrepare, "PREPARE"
	case *pg_query.Node_ExecuteStmt:
		s.Prepared = v.ExecuteStmt.GetName()
		a.walk(v.ExecuteStmt)
		return KindExecute, "EXECUTE"
	case *pg_query.Node_DeallocateStmt:
		s.Prepared = v.DeallocateStmt.GetName()
		if v.DeallocateStmt.GetIsall() || s.Prepared == "" {
			return KindDeallocate, "DEALLOCATE ALL"
		}
		return KindDeallocate, "DEALLOCATE"

	// Code.
	case *pg_query.Node_CallStmt:
		a.opaque = true
		a.walk(v.CallStmt.GetFunccall())
		return KindCall, "CALL"
	case *pg_query.Node_DoStmt:
		a.do(v.DoStmt)
		return KindDo, "DO"
	case *pg_query.Node_LoadStmt:
		a.opaque = true
		return KindUtility, "LOAD"

	// Transactions, sessions, notifications.
	case *pg_query.Node_TransactionStmt:
		return KindTransaction, transactionTag(v.TransactionStmt.GetKind())
	case *pg_query.Node_VariableSetStmt:
		n := v.VariableSetStmt
		s.Setting = settingName(n)
		a.setting(n)
		if n.GetKind() == pg_query.VariableSetKind_VAR_RESET || n.GetKind() == pg_query.VariableSetKind_VAR_RESET_ALL {
			return KindSet, "RESET"
		}
		a.fields(n)
		return KindSet, "SET"
	case *pg_query.Node_VariableShowStmt:
		s.Setting = strings.ToLower(v.VariableShowStmt.GetName())
		return KindShow, "SHOW"
	case *pg_query.Node_ConstraintsSetStmt:
		return KindSet, "SET CONSTRAINTS"
	case *pg_query.Node_DiscardStmt:
		return KindUtility, "DISCARD " + strings.TrimPrefix(v.DiscardStmt.GetTarget().String(), "DISCARD_")
	case *pg_query.Node_ListenStmt:
		return KindListen, "LISTEN"
	case *pg_query.Node_UnlistenStmt:
		return KindListen, "UNLISTEN"
	case *pg_query.Node_NotifyStmt:
		return KindNotify, "NOTIFY"
	case *pg_query.Node_FetchStmt:
		if v.FetchStmt.GetIsmove() {
			return KindUtility, "MOVE"
		}
		return KindUtility, "FETCH"
	case *pg_query.Node_ClosePortalStmt:
		if v.ClosePortalStmt.GetPortalname() == "" {
			return KindUtility, "CLOSE CURSOR ALL"
		}
		return KindUtility, "CLOSE CURSOR"
	case *pg_query.Node_LockStmt:
		if a.deferred == 0 {
			a.lock = true
		}
		a.fields(v.LockStmt)
		return KindLock, "LOCK TABLE"

	// Maintenance.
	case *pg_query.Node_VacuumStmt:
		a.fields(v.VacuumStmt)
		if v.VacuumStmt.GetIsVacuumcmd() {
			return KindMaintenance, "VACUUM"
		}
		return KindMaintenance, "ANALYZE"
	case *pg_query.Node_ClusterStmt:
		a.fields(v.ClusterStmt)
		return KindMaintenance, "CLUSTER"
	case *pg_query.Node_ReindexStmt:
		a.fields(v.ReindexStmt)
		return KindMaintenance, "REINDEX"
	case *pg_query.Node_CheckPointStmt:
		return KindMaintenance, "CHECKPOINT"

	// Privileges.
	case *pg_query.Node_GrantStmt:
		a.grant(v.GrantStmt, nil)
		if v.GrantStmt.GetIsGrant() {
			return KindGrant, "GRANT"
		}
		return KindGrant, "REVOKE"
	case *pg_query.Node_GrantRoleStmt:
		n := v.GrantRoleStmt
		action, tag := ActionGrant, "GRANT ROLE"
		if !n.GetIsGrant() {
			action, tag = ActionRevoke, "REVOKE ROLE"
		}
		for _, r := range n.GetGrantedRoles() {
			a.add(Effect{Action: action, Object: "role", Name: quoteIdent(r.GetAccessPriv().GetPrivName())})
		}
		return KindGrant, tag
	case *pg_query.Node_AlterDefaultPrivilegesStmt:
		n := v.AlterDefaultPrivilegesStmt
		var schemas []string
		for _, o := range n.GetOptions() {
			if d := o.GetDefElem(); d.GetDefname() == "schemas" {
				schemas = append(schemas, nodeStrings(d.GetArg().GetList().GetItems())...)
			}
		}
		if len(schemas) == 0 {
			schemas = []string{""}
		}
		a.grant(n.GetAction(), schemas)
		return KindGrant, "ALTER DEFAULT PRIVILEGES"

	// Removal.
	case *pg_query.Node_DropStmt:
		n := v.DropStmt
		obj := objectType(n.GetRemoveType())
		cascadeSchema := n.GetRemoveType() == pg_query.ObjectType_OBJECT_SCHEMA && n.GetBehavior() == pg_query.DropBehavior_DROP_CASCADE
		for _, o := range n.GetObjects() {
			name, table := objectName(n.GetRemoveType(), o)
			a.add(Effect{Action: ActionDrop, Object: obj, Name: name, Table: table})
			if cascadeSchema {
				// Everything in the schema goes with it.
				a.add(Effect{Action: ActionDrop, Object: "table", Name: wildcard(o.GetString_().GetSval())})
			}
		}
		return KindDrop, dropTag(n.GetRemoveType())
	case *pg_query.Node_TruncateStmt:
		for _, r := range v.TruncateStmt.GetRelations() {
			a.add(Effect{Action: ActionTruncate, Object: "table", Name: rangeVarName(r.GetRangeVar())})
		}
		return KindTruncate, "TRUNCATE TABLE"
	case *pg_query.Node_DropdbStmt:
		a.add(Effect{Action: ActionDrop, Object: "database", Name: quoteIdent(v.DropdbStmt.GetDbname())})
		return KindDrop, "DROP DATABASE"
	case *pg_query.Node_DropRoleStmt:
		for _, r := range v.DropRoleStmt.GetRoles() {
			a.add(Effect{Action: ActionDrop, Object: "role", Name: roleName(r.GetRoleSpec())})
		}
		return KindDrop, "DROP ROLE"
	case *pg_query.Node_DropTableSpaceStmt:
		a.add(Effect{Action: ActionDrop, Object: "tablespace", Name: quoteIdent(v.DropTableSpaceStmt.GetTablespacename())})
		return KindDrop, "DROP TABLESPACE"
	case *pg_query.Node_DropUserMappingStmt:
		a.add(Effect{Action: ActionDrop, Object: "user mapping", Name: userMapping(v.DropUserMappingStmt.GetUser(), v.DropUserMappingStmt.GetServername())})
		return KindDrop, "DROP USER MAPPING"
	case *pg_query.Node_DropSubscriptionStmt:
		a.add(Effect{Action: ActionDrop, Object: "subscription", Name: quoteIdent(v.DropSubscriptionStmt.GetSubname())})
		return KindDrop, "DROP SUBSCRIPTION"
	case *pg_query.Node_DropOwnedStmt:
		for _, r := range v.DropOwnedStmt.GetRoles() {
			a.add(Effect{Action: ActionDrop, Object: "owned", Name: roleName(r.GetRoleSpec())})
		}
		return KindDrop, "DROP OWNED"
	}
	if kind, tag, ok := a.ddl(node, s); ok {
		return kind, tag
	}
	// A statement this package does not know: say so rather than guess.
	a.opaque = true
	a.walk(node)
	return KindUtility, "???"
}

// copyStmt handles COPY.
func (a *analyzer) copyStmt(n *pg_query.CopyStmt, s *Statement) (Kind, string) {
	c := &Copy{
		Direction: "to",
		Query:     n.GetQuery() != nil,
		Program:   n.GetIsProgram(),
		File:      n.GetFilename(),
		Stdio:     n.GetFilename() == "" && !n.GetIsProgram(),
	}
	if n.GetIsFrom() {
		c.Direction = "from"
	}
	if rv := n.GetRelation(); rv != nil {
		c.Table = rangeVarName(rv)
		if n.GetIsFrom() {
			a.add(Effect{Action: ActionInsert, Object: "table", Name: c.Table})
		} else {
			a.read(c.Table)
		}
	}
	for _, col := range nodeStrings(n.GetAttlist()) {
		c.Columns = append(c.Columns, quoteIdent(col))
	}
	for _, o := range n.GetOptions() {
		d := o.GetDefElem()
		switch d.GetDefname() {
		case "format":
			switch strings.ToLower(d.GetArg().GetString_().GetSval()) {
			case "binary":
				c.Binary = true
			case "csv":
				c.CSV = true
			}
		case "delimiter":
			c.Delimiter = d.GetArg().GetString_().GetSval()
			if c.Delimiter == "" {
				// Not a plain string (normalized to a parameter):
				// unknown, which the proxy must treat as unusual.
				c.Delimiter = "?"
			}
		}
	}
	if n.GetIsProgram() {
		a.opaque = true
	}
	a.fields(n, n.GetRelation())
	s.Copy = c
	return KindCopy, "COPY"
}

// explain handles EXPLAIN. With ANALYZE the inner statement runs.
func (a *analyzer) explain(n *pg_query.ExplainStmt, s *Statement) (Kind, string) {
	in := a.inner(n.GetQuery(), explainTail(s.Text, len(n.GetOptions()) > 0))
	if in == nil {
		return KindExplain, "EXPLAIN"
	}
	s.Inner = in
	s.Prepared = in.Prepared
	if explainAnalyze(n.GetOptions()) {
		a.include(in)
	} else {
		a.includeRefs(in)
	}
	return KindExplain, "EXPLAIN"
}

// explainAnalyze reports whether EXPLAIN options run the statement. Any
// "analyze" option not plainly false counts: PostgreSQL rejects values it
// does not understand, and the last of several wins, so this can only
// over-report.
func explainAnalyze(opts []*pg_query.Node) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if !strings.EqualFold(d.GetDefname(), "analyze") {
			continue
		}
		arg := d.GetArg()
		switch {
		case arg == nil:
			return true
		case arg.GetInteger() != nil:
			if arg.GetInteger().GetIval() != 0 {
				return true
			}
		case arg.GetString_() != nil:
			switch strings.ToLower(arg.GetString_().GetSval()) {
			case "false", "off", "no", "0":
			default:
				return true
			}
		case arg.GetBoolean() != nil:
			if arg.GetBoolean().GetBoolval() {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// inner classifies the statement inside EXPLAIN or PREPARE. text is its
// text if it could be cut out of the outer statement's.
func (a *analyzer) inner(node *pg_query.Node, text string) *Statement {
	if a.err != nil || node == nil {
		return nil
	}
	if text == "" && a.nest == 0 {
		// The text is only needed for the caller's own statements, to
		// normalise and fingerprint.
		if t, err := pg_query.Deparse(&pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: node}}}); err == nil {
			text = t
		}
	}
	in, err := classify(node, text, a.nest, a.depth)
	if err != nil {
		a.err = err
		return nil
	}
	return in
}

// grant handles GRANT and REVOKE on objects. For ALTER DEFAULT PRIVILEGES
// schemas lists the schemas concerned ("" for all).
func (a *analyzer) grant(n *pg_query.GrantStmt, schemas []string) {
	action := ActionGrant
	if !n.GetIsGrant() {
		action = ActionRevoke
	}
	obj := objectType(n.GetObjtype())
	switch n.GetTargtype() {
	case pg_query.GrantTargetType_ACL_TARGET_DEFAULTS:
		for _, sc := range schemas {
			a.add(Effect{Action: action, Object: obj, Name: wildcard(sc)})
		}
		return
	case pg_query.GrantTargetType_ACL_TARGET_ALL_IN_SCHEMA:
		for _, sc := range n.GetObjects() {
			a.add(Effect{Action: action, Object: obj, Name: wildcard(sc.GetString_().GetSval())})
		}
		return
	}
	for _, o := range n.GetObjects() {
		name, _ := objectName(n.GetObjtype(), o)
		a.add(Effect{Action: action, Object: obj, Name: name})
	}
}

// userMapping names a user mapping: "role@server".
func userMapping(user *pg_query.RoleSpec, server string) string {
	return roleName(user) + "@" + quoteIdent(server)
}

// settingName is the parameter a SET or RESET names.
func settingName(n *pg_query.VariableSetStmt) string {
	if n.GetKind() == pg_query.VariableSetKind_VAR_RESET_ALL {
		return "all"
	}
	return strings.ToLower(n.GetName())
}

// setting marks a change of a parameter that affects lexing as opaque,
// unless it sets the value this package lexes with.
func (a *analyzer) setting(n *pg_query.VariableSetStmt) {
	if n == nil || !lexerSetting(n.GetName()) || a.deferred > 0 {
		return
	}
	safe := false
	if n.GetKind() == pg_query.VariableSetKind_VAR_SET_VALUE && len(n.GetArgs()) == 1 {
		c := n.GetArgs()[0].GetAConst()
		var val string
		switch {
		case c.GetSval() != nil:
			val = c.GetSval().GetSval()
		case c.GetIval() != nil:
			val = "0"
			if c.GetIval().GetIval() == 1 {
				val = "1"
			}
		case c.GetBoolval() != nil:
			val = "false"
			if c.GetBoolval().GetBoolval() {
				val = "true"
			}
		}
		val = strings.ToLower(val)
		if strings.EqualFold(n.GetName(), "client_encoding") {
			// PostgreSQL ignores case and punctuation in encoding names.
			val = strings.Map(func(r rune) rune {
				if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
					return r
				}
				return -1
			}, val)
			safe = val == "utf8" || val == "unicode"
		} else {
			safe = val == "on" || val == "true" || val == "yes" || val == "1"
		}
	}
	if !safe {
		a.opaque = true
	}
}

// transactionTag is the command tag of a transaction statement.
func transactionTag(k pg_query.TransactionStmtKind) string {
	switch k {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "???"
}

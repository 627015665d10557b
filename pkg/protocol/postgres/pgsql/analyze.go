package pgsql

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// analyzer collects what one statement does while walking its parse tree.
type analyzer struct {
	nest  int // how deeply the SQL text being analysed is nested in other SQL
	depth int // current depth of the tree walk
	err   error

	effects []Effect
	reads   map[string]struct{}
	funcs   map[string]struct{}
	opaque  bool
	lock    bool

	// ctes holds the names of the CTEs in scope, innermost last. A
	// relation reference without schema that matches one is not a table.
	ctes []string
	// deferred counts the enclosing parts of the tree that are stored
	// rather than run (view queries, rule actions, policy expressions,
	// trigger conditions). Statements inside them change nothing now: their
	// targets are reported as reads, their locks not at all.
	deferred int
	// except holds nodes the generic walk must skip because a statement
	// handler has already accounted for them (targets of writes, which the
	// walk would otherwise report as reads).
	except []proto.Message
}

func newAnalyzer(nest, depth int) *analyzer {
	return &analyzer{
		nest:  nest,
		depth: depth,
		reads: make(map[string]struct{}),
		funcs: make(map[string]struct{}),
	}
}

// classify analyses one statement's parse tree. text is the statement's
// own text, used to find the text of an inner statement.
func classify(node *pg_query.Node, text string, nest, depth int) (*Statement, error) {
	a := newAnalyzer(nest, depth)
	s := &Statement{Text: text}
	s.Kind, s.Command = a.stmt(node, s)
	if a.err != nil {
		return nil, a.err
	}
	a.finish(s)
	return s, nil
}

// finish copies what a collected into s.
func (a *analyzer) finish(s *Statement) {
	s.Effects = make([]Effect, 0, len(a.effects))
	seen := make(map[Effect]bool, len(a.effects))
	writes := make(map[string]struct{})
	for _, e := range a.effects {
		if seen[e] {
			continue
		}
		seen[e] = true
		s.Effects = append(s.Effects, e)
		if isRelation(e.Object) {
			for _, n := range [...]string{e.Name, e.NewName} {
				if n != "" {
					writes[n] = struct{}{}
				}
			}
		}
		if e.Table != "" {
			writes[e.Table] = struct{}{}
		}
	}
	s.Reads = sortedKeys(a.reads)
	s.Writes = sortedKeys(writes)
	s.Functions = sortedKeys(a.funcs)
	s.Opaque = a.opaque
	s.Lock = a.lock
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// include adds what a nested statement does to a.
func (a *analyzer) include(s *Statement) {
	if a.deferred > 0 {
		a.includeRefs(s)
		for _, w := range s.Writes {
			a.reads[w] = struct{}{}
		}
		return
	}
	a.effects = append(a.effects, s.Effects...)
	a.includeRefs(s)
	a.opaque = a.opaque || s.Opaque
	a.lock = a.lock || s.Lock
}

// includeRefs adds what a nested statement reads and calls to a.
func (a *analyzer) includeRefs(s *Statement) {
	for _, r := range s.Reads {
		a.reads[r] = struct{}{}
	}
	for _, f := range s.Functions {
		a.funcs[f] = struct{}{}
	}
}

// add records an effect; in stored code it records the target as a read.
func (a *analyzer) add(e Effect) {
	if a.deferred > 0 {
		if isRelation(e.Object) && e.Name != "" {
			a.reads[e.Name] = struct{}{}
		}
		return
	}
	a.effects = append(a.effects, e)
}

// read records a relation name as read.
func (a *analyzer) read(name string) {
	if name != "" {
		a.reads[name] = struct{}{}
	}
}

// readRel records a relation reference found in a query, unless it names
// a CTE in scope.
func (a *analyzer) readRel(rv *pg_query.RangeVar) {
	if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" && slices.Contains(a.ctes, rv.GetRelname()) {
		return
	}
	a.read(rangeVarName(rv))
}

// fields walks the children of m, skipping the given descendants. Statement
// handlers use it after dealing with the parts they understand.
func (a *analyzer) fields(m proto.Message, except ...proto.Message) {
	saved := a.except
	a.except = append(a.except[:len(a.except):len(a.except)], except...)
	a.children(m.ProtoReflect())
	a.except = saved
}

// walkDeferred walks parts of a statement that are stored, not run.
func (a *analyzer) walkDeferred(ms ...proto.Message) {
	a.deferred++
	for _, m := range ms {
		a.walk(m)
	}
	a.deferred--
}

// walkNodes walks a list of nodes.
func (a *analyzer) walkNodes(nodes []*pg_query.Node) {
	for _, n := range nodes {
		a.walk(n)
	}
}

// walk visits every message below m, looking for relation references,
// function calls and nested statements. This is the generic part: any
// field pg_query may add later is visited too.
func (a *analyzer) walk(m proto.Message) {
	if a.err != nil || m == nil {
		return
	}
	r := m.ProtoReflect()
	if !r.IsValid() {
		return
	}
	for _, e := range a.except {
		if e == m {
			return
		}
	}
	a.depth++
	if a.depth > maxDepth {
		a.err = &LimitError{Limit: "nesting depth", Max: maxDepth}
		a.depth--
		return
	}
	if !a.node(m) {
		a.children(r)
	}
	a.depth--
}

// children walks the message-valued fields of r.
func (a *analyzer) children(r protoreflect.Message) {
	r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && a.err == nil; i++ {
				a.walk(l.Get(i).Message().Interface())
			}
		} else {
			a.walk(v.Message().Interface())
		}
		return a.err == nil
	})
}

// node handles the messages that need more than a generic walk. It
// reports whether it has dealt with m's children itself.
func (a *analyzer) node(m proto.Message) bool {
	switch n := m.(type) {
	case *pg_query.RangeVar:
		a.readRel(n)
		return true
	case *pg_query.FuncCall:
		a.call(n)
		return false
	case *pg_query.SelectStmt:
		a.selectStmt(n)
		return true
	case *pg_query.InsertStmt:
		a.insertStmt(n)
		return true
	case *pg_query.UpdateStmt:
		a.updateStmt(n)
		return true
	case *pg_query.DeleteStmt:
		a.deleteStmt(n)
		return true
	case *pg_query.MergeStmt:
		a.mergeStmt(n)
		return true
	case *pg_query.ExecuteStmt:
		// CREATE TABLE ... AS EXECUTE, EXPLAIN EXECUTE.
		a.opaque = a.opaque || a.deferred == 0
		a.walkNodes(n.GetParams())
		return true
	case *pg_query.LockingClause:
		// Its relation list names FROM items, often by alias.
		if a.deferred == 0 {
			a.lock = true
		}
		return true
	case *pg_query.ColumnRef, *pg_query.A_Const, *pg_query.String, *pg_query.ParamRef:
		return true
	case *pg_query.ReplicaIdentityStmt:
		// ALTER TABLE ... REPLICA IDENTITY: a part of ALTER TABLE.
		return true
	}
	if a.deferred == 0 && strings.HasSuffix(string(m.ProtoReflect().Descriptor().Name()), "Stmt") {
		// A statement where this package does not expect one: it may do
		// anything.
		a.opaque = true
	}
	return false
}

// call records a function call.
func (a *analyzer) call(f *pg_query.FuncCall) {
	name := listName(f.GetFuncname())
	if name == "" {
		return
	}
	a.funcs[name] = struct{}{}
	if a.deferred > 0 {
		return
	}
	parts := nodeStrings(f.GetFuncname())
	switch base := parts[len(parts)-1]; base {
	case "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
		"ts_stat", "dblink", "dblink_exec", "dblink_open", "dblink_send_query":
		// They run SQL given as a string: opaque, but what a constant
		// string does is reported too (connection strings among the
		// arguments just fail to parse).
		a.opaque = true
		for _, arg := range f.GetArgs() {
			if s := arg.GetAConst().GetSval(); s != nil {
				a.nested(s.GetSval())
			}
		}
	case "set_config":
		args := f.GetArgs()
		if len(args) == 0 {
			break
		}
		c := args[0].GetAConst()
		if c == nil || c.GetSval() == nil || lexerSetting(c.GetSval().GetSval()) {
			a.opaque = true
		}
	}
}

// with walks the CTEs of a WITH clause and brings their names into scope.
// The caller must call the returned function when leaving the statement.
// In a plain WITH a CTE sees only the CTEs before it, so that in
// `WITH t AS (SELECT * FROM t)` the inner t is the table; in WITH
// RECURSIVE every CTE sees all of them.
func (a *analyzer) with(w *pg_query.WithClause) (leave func()) {
	base := len(a.ctes)
	leave = func() { a.ctes = a.ctes[:base] }
	if w == nil {
		return leave
	}
	if w.GetRecursive() {
		for _, c := range w.GetCtes() {
			a.ctes = append(a.ctes, c.GetCommonTableExpr().GetCtename())
		}
	}
	for _, c := range w.GetCtes() {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			a.walk(c)
			continue
		}
		a.walk(cte.GetCtequery())
		if !w.GetRecursive() {
			a.ctes = append(a.ctes, cte.GetCtename())
		}
	}
	return leave
}

func (a *analyzer) selectStmt(s *pg_query.SelectStmt) {
	leave := a.with(s.GetWithClause())
	defer leave()
	if into := s.GetIntoClause(); into != nil {
		a.add(Effect{Action: ActionCreate, Object: "table", Name: rangeVarName(into.GetRel())})
	}
	a.fields(s, s.GetWithClause(), s.GetIntoClause().GetRel())
}

func (a *analyzer) insertStmt(s *pg_query.InsertStmt) {
	leave := a.with(s.GetWithClause())
	defer leave()
	name := rangeVarName(s.GetRelation())
	a.add(Effect{Action: ActionInsert, Object: "table", Name: name})
	if s.GetOnConflictClause().GetAction() == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
		a.add(Effect{Action: ActionUpdate, Object: "table", Name: name, HasWhere: true})
		a.read(name)
	}
	a.fields(s, s.GetWithClause(), s.GetRelation())
}

func (a *analyzer) updateStmt(s *pg_query.UpdateStmt) {
	leave := a.with(s.GetWithClause())
	defer leave()
	name := rangeVarName(s.GetRelation())
	a.add(Effect{Action: ActionUpdate, Object: "table", Name: name, HasWhere: s.GetWhereClause() != nil})
	a.read(name)
	a.fields(s, s.GetWithClause(), s.GetRelation())
}

func (a *analyzer) deleteStmt(s *pg_query.DeleteStmt) {
	leave := a.with(s.GetWithClause())
	defer leave()
	name := rangeVarName(s.GetRelation())
	a.add(Effect{Action: ActionDelete, Object: "table", Name: name, HasWhere: s.GetWhereClause() != nil})
	a.read(name)
	a.fields(s, s.GetWithClause(), s.GetRelation())
}

// mergeStmt handles MERGE.
func (a *analyzer) mergeStmt(s *pg_query.MergeStmt) {
	leave := a.with(s.GetWithClause())
	defer leave()
	name := rangeVarName(s.GetRelation())
	a.add(Effect{Action: ActionMerge, Object: "table", Name: name})
	a.read(name)
	for _, c := range s.GetMergeWhenClauses() {
		w := c.GetMergeWhenClause()
		restricted := w.GetMatchKind() == pg_query.MergeMatchKind_MERGE_WHEN_MATCHED || w.GetCondition() != nil
		switch w.GetCommandType() {
		case pg_query.CmdType_CMD_INSERT:
			a.add(Effect{Action: ActionInsert, Object: "table", Name: name})
		case pg_query.CmdType_CMD_UPDATE:
			a.add(Effect{Action: ActionUpdate, Object: "table", Name: name, HasWhere: restricted})
		case pg_query.CmdType_CMD_DELETE:
			a.add(Effect{Action: ActionDelete, Object: "table", Name: name, HasWhere: restricted})
		}
	}
	a.fields(s, s.GetWithClause(), s.GetRelation())
}

// lexerSetting reports whether a configuration parameter changes how the
// server splits query text into tokens, so that this package's view of
// later queries would no longer match the server's.
func lexerSetting(name string) bool {
	switch strings.ToLower(name) {
	case "standard_conforming_strings", "client_encoding":
		return true
	}
	return false
}

package pgsql

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// ddl handles the statements that create, alter, rename, comment on or
// refresh objects. ok is false for a node that is none of them.
//
// The pattern for each: record the Effect on the target, then walk the
// rest of the statement (minus the target, which would otherwise count as
// a read) for relation references and function calls: column defaults,
// CHECK constraints, index expressions, foreign key targets, and so on.
func (a *analyzer) ddl(node *pg_query.Node, s *Statement) (kind Kind, tag string, ok bool) {
	create := func(obj, name string, target proto.Message, n proto.Message) {
		a.add(Effect{Action: ActionCreate, Object: obj, Name: name})
		a.fields(n, target)
	}
	alter := func(obj, name string, target proto.Message, n proto.Message) {
		a.add(Effect{Action: ActionAlter, Object: obj, Name: name})
		a.fields(n, target)
	}
	kind, ok = KindDDL, true
	switch v := node.GetNode().(type) {
	// Relations.
	case *pg_query.Node_CreateStmt:
		a.createTable(v.CreateStmt, "table")
		return kind, "CREATE TABLE", ok
	case *pg_query.Node_CreateForeignTableStmt:
		a.createTable(v.CreateForeignTableStmt.GetBaseStmt(), "foreign table")
		return kind, "CREATE FOREIGN TABLE", ok
	case *pg_query.Node_CreateTableAsStmt:
		n := v.CreateTableAsStmt
		a.add(Effect{Action: ActionCreate, Object: objectType(n.GetObjtype()), Name: rangeVarName(n.GetInto().GetRel())})
		a.fields(n, n.GetInto().GetRel())
		switch {
		case n.GetObjtype() == pg_query.ObjectType_OBJECT_MATVIEW:
			return kind, "CREATE MATERIALIZED VIEW", ok
		case n.GetIsSelectInto():
			return kind, "SELECT INTO", ok
		}
		return kind, "CREATE TABLE AS", ok
	case *pg_query.Node_ViewStmt:
		n := v.ViewStmt
		a.add(Effect{Action: ActionCreate, Object: "view", Name: rangeVarName(n.GetView())})
		a.walkDeferred(n.GetQuery())
		return kind, "CREATE VIEW", ok
	case *pg_query.Node_RefreshMatViewStmt:
		n := v.RefreshMatViewStmt
		a.add(Effect{Action: ActionRefresh, Object: "materialized view", Name: rangeVarName(n.GetRelation())})
		return kind, "REFRESH MATERIALIZED VIEW", ok
	case *pg_query.Node_IndexStmt:
		n := v.IndexStmt
		name := ""
		if n.GetIdxname() != "" {
			// An index lives in its table's schema.
			name = joinName(n.GetRelation().GetCatalogname(), n.GetRelation().GetSchemaname(), n.GetIdxname())
		}
		a.add(Effect{Action: ActionCreate, Object: "index", Name: name, Table: rangeVarName(n.GetRelation())})
		a.fields(n, n.GetRelation())
		return kind, "CREATE INDEX", ok
	case *pg_query.Node_CreateSeqStmt:
		n := v.CreateSeqStmt
		create("sequence", rangeVarName(n.GetSequence()), n.GetSequence(), n)
		return kind, "CREATE SEQUENCE", ok
	case *pg_query.Node_AlterSeqStmt:
		n := v.AlterSeqStmt
		alter("sequence", rangeVarName(n.GetSequence()), n.GetSequence(), n)
		return kind, "ALTER SEQUENCE", ok
	case *pg_query.Node_AlterTableStmt:
		a.alterTable(v.AlterTableStmt)
		return kind, alterTag(v.AlterTableStmt.GetObjtype()), ok
	case *pg_query.Node_AlterTableMoveAllStmt:
		n := v.AlterTableMoveAllStmt
		a.add(Effect{Action: ActionAlter, Object: objectType(n.GetObjtype()), Name: wildcard("")})
		return kind, alterTag(n.GetObjtype()), ok
	case *pg_query.Node_CreateStatsStmt:
		n := v.CreateStatsStmt
		table := ""
		if rels := n.GetRelations(); len(rels) == 1 {
			table = rangeVarName(rels[0].GetRangeVar())
		}
		a.add(Effect{Action: ActionCreate, Object: "statistics", Name: listName(n.GetDefnames()), Table: table})
		a.fields(n)
		return kind, "CREATE STATISTICS", ok
	case *pg_query.Node_AlterStatsStmt:
		n := v.AlterStatsStmt
		alter("statistics", listName(n.GetDefnames()), nil, n)
		return kind, "ALTER STATISTICS", ok

	// Objects that belong to a table.
	case *pg_query.Node_CreateTrigStmt:
		n := v.CreateTrigStmt
		a.add(Effect{Action: ActionCreate, Object: "trigger", Name: quoteIdent(n.GetTrigname()), Table: rangeVarName(n.GetRelation())})
		a.read(rangeVarName(n.GetConstrrel()))
		a.walkDeferred(n.GetWhenClause())
		return kind, "CREATE TRIGGER", ok
	case *pg_query.Node_RuleStmt:
		n := v.RuleStmt
		a.add(Effect{Action: ActionCreate, Object: "rule", Name: quoteIdent(n.GetRulename()), Table: rangeVarName(n.GetRelation())})
		a.walkDeferred(n.GetWhereClause())
		for _, act := range n.GetActions() {
			a.walkDeferred(act)
		}
		return kind, "CREATE RULE", ok
	case *pg_query.Node_CreatePolicyStmt:
		n := v.CreatePolicyStmt
		a.add(Effect{Action: ActionCreate, Object: "policy", Name: quoteIdent(n.GetPolicyName()), Table: rangeVarName(n.GetTable())})
		a.walkDeferred(n.GetQual(), n.GetWithCheck())
		return kind, "CREATE POLICY", ok
	case *pg_query.Node_AlterPolicyStmt:
		n := v.AlterPolicyStmt
		a.add(Effect{Action: ActionAlter, Object: "policy", Name: quoteIdent(n.GetPolicyName()), Table: rangeVarName(n.GetTable())})
		a.walkDeferred(n.GetQual(), n.GetWithCheck())
		return kind, "ALTER POLICY", ok

	// Generic ALTER forms.
	case *pg_query.Node_RenameStmt:
		a.rename(v.RenameStmt)
		n := v.RenameStmt
		t := n.GetRenameType()
		if t == pg_query.ObjectType_OBJECT_COLUMN {
			t = n.GetRelationType()
		}
		return kind, alterTag(t), ok
	case *pg_query.Node_AlterObjectSchemaStmt:
		n := v.AlterObjectSchemaStmt
		name, parts := a.target(n.GetObjectType(), n.GetRelation(), n.GetObject())
		newName := ""
		if len(parts) > 0 {
			newName = joinName(n.GetNewschema(), parts[len(parts)-1])
		}
		a.add(Effect{Action: ActionAlter, Object: objectType(n.GetObjectType()), Name: name, NewName: newName})
		return kind, alterTag(n.GetObjectType()), ok
	case *pg_query.Node_AlterOwnerStmt:
		n := v.AlterOwnerStmt
		name, _ := a.target(n.GetObjectType(), n.GetRelation(), n.GetObject())
		a.add(Effect{Action: ActionAlter, Object: objectType(n.GetObjectType()), Name: name})
		return kind, alterTag(n.GetObjectType()), ok
	case *pg_query.Node_AlterObjectDependsStmt:
		n := v.AlterObjectDependsStmt
		name, _ := a.target(n.GetObjectType(), n.GetRelation(), n.GetObject())
		a.add(Effect{Action: ActionAlter, Object: objectType(n.GetObjectType()), Name: name})
		return kind, alterTag(n.GetObjectType()), ok
	case *pg_query.Node_CommentStmt:
		n := v.CommentStmt
		name, table := objectName(n.GetObjtype(), n.GetObject())
		a.add(Effect{Action: ActionComment, Object: objectType(n.GetObjtype()), Name: name, Table: table})
		return kind, "COMMENT", ok
	case *pg_query.Node_SecLabelStmt:
		n := v.SecLabelStmt
		name, table := objectName(n.GetObjtype(), n.GetObject())
		a.add(Effect{Action: ActionLabel, Object: objectType(n.GetObjtype()), Name: name, Table: table})
		return kind, "SECURITY LABEL", ok

	// Schemas, databases, roles, tablespaces, settings.
	case *pg_query.Node_CreateSchemaStmt:
		a.createSchema(v.CreateSchemaStmt)
		return kind, "CREATE SCHEMA", ok
	case *pg_query.Node_CreatedbStmt:
		n := v.CreatedbStmt
		create("database", quoteIdent(n.GetDbname()), nil, n)
		return kind, "CREATE DATABASE", ok
	case *pg_query.Node_AlterDatabaseStmt:
		n := v.AlterDatabaseStmt
		alter("database", quoteIdent(n.GetDbname()), nil, n)
		return kind, "ALTER DATABASE", ok
	case *pg_query.Node_AlterDatabaseRefreshCollStmt:
		a.add(Effect{Action: ActionAlter, Object: "database", Name: quoteIdent(v.AlterDatabaseRefreshCollStmt.GetDbname())})
		return kind, "ALTER DATABASE", ok
	case *pg_query.Node_AlterDatabaseSetStmt:
		n := v.AlterDatabaseSetStmt
		a.add(Effect{Action: ActionAlter, Object: "database", Name: quoteIdent(n.GetDbname())})
		s.Setting = settingName(n.GetSetstmt())
		a.setting(n.GetSetstmt())
		return kind, "ALTER DATABASE", ok
	case *pg_query.Node_CreateRoleStmt:
		n := v.CreateRoleStmt
		create("role", quoteIdent(n.GetRole()), nil, n)
		return kind, "CREATE ROLE", ok
	case *pg_query.Node_AlterRoleStmt:
		n := v.AlterRoleStmt
		alter("role", roleName(n.GetRole()), nil, n)
		return kind, "ALTER ROLE", ok
	case *pg_query.Node_AlterRoleSetStmt:
		n := v.AlterRoleSetStmt
		name := wildcard("")
		if n.GetRole() != nil {
			name = roleName(n.GetRole())
		}
		a.add(Effect{Action: ActionAlter, Object: "role", Name: name})
		s.Setting = settingName(n.GetSetstmt())
		a.setting(n.GetSetstmt())
		return kind, "ALTER ROLE", ok
	case *pg_query.Node_ReassignOwnedStmt:
		for _, r := range v.ReassignOwnedStmt.GetRoles() {
			a.add(Effect{Action: ActionAlter, Object: "owned", Name: roleName(r.GetRoleSpec())})
		}
		return kind, "REASSIGN OWNED", ok
	case *pg_query.Node_AlterSystemStmt:
		n := v.AlterSystemStmt
		s.Setting = settingName(n.GetSetstmt())
		a.add(Effect{Action: ActionAlter, Object: "system", Name: s.Setting})
		a.setting(n.GetSetstmt())
		return kind, "ALTER SYSTEM", ok
	case *pg_query.Node_CreateTableSpaceStmt:
		create("tablespace", quoteIdent(v.CreateTableSpaceStmt.GetTablespacename()), nil, v.CreateTableSpaceStmt)
		return kind, "CREATE TABLESPACE", ok
	case *pg_query.Node_AlterTableSpaceOptionsStmt:
		alter("tablespace", quoteIdent(v.AlterTableSpaceOptionsStmt.GetTablespacename()), nil, v.AlterTableSpaceOptionsStmt)
		return kind, "ALTER TABLESPACE", ok

	// Routines and code.
	case *pg_query.Node_CreateFunctionStmt:
		// The body is stored, not run: it is not analysed.
		n := v.CreateFunctionStmt
		if n.GetIsProcedure() {
			a.add(Effect{Action: ActionCreate, Object: "procedure", Name: listName(n.GetFuncname())})
			return kind, "CREATE PROCEDURE", ok
		}
		a.add(Effect{Action: ActionCreate, Object: "function", Name: listName(n.GetFuncname())})
		return kind, "CREATE FUNCTION", ok
	case *pg_query.Node_AlterFunctionStmt:
		n := v.AlterFunctionStmt
		a.add(Effect{Action: ActionAlter, Object: objectType(n.GetObjtype()), Name: listName(n.GetFunc().GetObjname())})
		return kind, alterTag(n.GetObjtype()), ok
	case *pg_query.Node_CreateEventTrigStmt:
		a.add(Effect{Action: ActionCreate, Object: "event trigger", Name: quoteIdent(v.CreateEventTrigStmt.GetTrigname())})
		return kind, "CREATE EVENT TRIGGER", ok
	case *pg_query.Node_AlterEventTrigStmt:
		a.add(Effect{Action: ActionAlter, Object: "event trigger", Name: quoteIdent(v.AlterEventTrigStmt.GetTrigname())})
		return kind, "ALTER EVENT TRIGGER", ok
	case *pg_query.Node_CreatePlangStmt:
		a.add(Effect{Action: ActionCreate, Object: "language", Name: quoteIdent(v.CreatePlangStmt.GetPlname())})
		return kind, "CREATE LANGUAGE", ok
	case *pg_query.Node_CreateExtensionStmt:
		// Runs the extension's install script.
		a.opaque = true
		a.add(Effect{Action: ActionCreate, Object: "extension", Name: quoteIdent(v.CreateExtensionStmt.GetExtname())})
		return kind, "CREATE EXTENSION", ok
	case *pg_query.Node_AlterExtensionStmt:
		// ALTER EXTENSION ... UPDATE runs update scripts.
		a.opaque = true
		a.add(Effect{Action: ActionAlter, Object: "extension", Name: quoteIdent(v.AlterExtensionStmt.GetExtname())})
		return kind, "ALTER EXTENSION", ok
	case *pg_query.Node_AlterExtensionContentsStmt:
		a.add(Effect{Action: ActionAlter, Object: "extension", Name: quoteIdent(v.AlterExtensionContentsStmt.GetExtname())})
		return kind, "ALTER EXTENSION", ok

	// Types and operators.
	case *pg_query.Node_DefineStmt:
		n := v.DefineStmt
		a.add(Effect{Action: ActionCreate, Object: objectType(n.GetKind()), Name: listName(n.GetDefnames())})
		return kind, "CREATE " + upper(objectType(n.GetKind())), ok
	case *pg_query.Node_CompositeTypeStmt:
		n := v.CompositeTypeStmt
		create("type", rangeVarName(n.GetTypevar()), n.GetTypevar(), n)
		return kind, "CREATE TYPE", ok
	case *pg_query.Node_CreateEnumStmt:
		a.add(Effect{Action: ActionCreate, Object: "type", Name: listName(v.CreateEnumStmt.GetTypeName())})
		return kind, "CREATE TYPE", ok
	case *pg_query.Node_CreateRangeStmt:
		a.add(Effect{Action: ActionCreate, Object: "type", Name: listName(v.CreateRangeStmt.GetTypeName())})
		return kind, "CREATE TYPE", ok
	case *pg_query.Node_AlterEnumStmt:
		a.add(Effect{Action: ActionAlter, Object: "type", Name: listName(v.AlterEnumStmt.GetTypeName())})
		return kind, "ALTER TYPE", ok
	case *pg_query.Node_AlterTypeStmt:
		a.add(Effect{Action: ActionAlter, Object: "type", Name: listName(v.AlterTypeStmt.GetTypeName())})
		return kind, "ALTER TYPE", ok
	case *pg_query.Node_CreateDomainStmt:
		n := v.CreateDomainStmt
		create("domain", listName(n.GetDomainname()), nil, n)
		return kind, "CREATE DOMAIN", ok
	case *pg_query.Node_AlterDomainStmt:
		n := v.AlterDomainStmt
		alter("domain", listName(n.GetTypeName()), nil, n)
		return kind, "ALTER DOMAIN", ok
	case *pg_query.Node_CreateOpClassStmt:
		a.add(Effect{Action: ActionCreate, Object: "operator class", Name: listName(v.CreateOpClassStmt.GetOpclassname())})
		return kind, "CREATE OPERATOR CLASS", ok
	case *pg_query.Node_CreateOpFamilyStmt:
		a.add(Effect{Action: ActionCreate, Object: "operator family", Name: listName(v.CreateOpFamilyStmt.GetOpfamilyname())})
		return kind, "CREATE OPERATOR FAMILY", ok
	case *pg_query.Node_AlterOpFamilyStmt:
		a.add(Effect{Action: ActionAlter, Object: "operator family", Name: listName(v.AlterOpFamilyStmt.GetOpfamilyname())})
		return kind, "ALTER OPERATOR FAMILY", ok
	case *pg_query.Node_AlterOperatorStmt:
		a.add(Effect{Action: ActionAlter, Object: "operator", Name: listName(v.AlterOperatorStmt.GetOpername().GetObjname())})
		return kind, "ALTER OPERATOR", ok
	case *pg_query.Node_CreateCastStmt:
		n := v.CreateCastStmt
		a.add(Effect{Action: ActionCreate, Object: "cast", Name: typeName(n.GetSourcetype()) + " AS " + typeName(n.GetTargettype())})
		return kind, "CREATE CAST", ok
	case *pg_query.Node_CreateTransformStmt:
		n := v.CreateTransformStmt
		a.add(Effect{Action: ActionCreate, Object: "transform", Name: typeName(n.GetTypeName()) + " FOR " + quoteIdent(n.GetLang())})
		return kind, "CREATE TRANSFORM", ok
	case *pg_query.Node_CreateConversionStmt:
		a.add(Effect{Action: ActionCreate, Object: "conversion", Name: listName(v.CreateConversionStmt.GetConversionName())})
		return kind, "CREATE CONVERSION", ok
	case *pg_query.Node_AlterCollationStmt:
		a.add(Effect{Action: ActionAlter, Object: "collation", Name: listName(v.AlterCollationStmt.GetCollname())})
		return kind, "ALTER COLLATION", ok
	case *pg_query.Node_CreateAmStmt:
		a.add(Effect{Action: ActionCreate, Object: "access method", Name: quoteIdent(v.CreateAmStmt.GetAmname())})
		return kind, "CREATE ACCESS METHOD", ok
	case *pg_query.Node_AlterTsdictionaryStmt:
		a.add(Effect{Action: ActionAlter, Object: "text search dictionary", Name: listName(v.AlterTsdictionaryStmt.GetDictname())})
		return kind, "ALTER TEXT SEARCH DICTIONARY", ok
	case *pg_query.Node_AlterTsconfigurationStmt:
		a.add(Effect{Action: ActionAlter, Object: "text search configuration", Name: listName(v.AlterTsconfigurationStmt.GetCfgname())})
		return kind, "ALTER TEXT SEARCH CONFIGURATION", ok

	// Foreign data.
	case *pg_query.Node_CreateFdwStmt:
		a.add(Effect{Action: ActionCreate, Object: "foreign data wrapper", Name: quoteIdent(v.CreateFdwStmt.GetFdwname())})
		return kind, "CREATE FOREIGN DATA WRAPPER", ok
	case *pg_query.Node_AlterFdwStmt:
		a.add(Effect{Action: ActionAlter, Object: "foreign data wrapper", Name: quoteIdent(v.AlterFdwStmt.GetFdwname())})
		return kind, "ALTER FOREIGN DATA WRAPPER", ok
	case *pg_query.Node_CreateForeignServerStmt:
		a.add(Effect{Action: ActionCreate, Object: "server", Name: quoteIdent(v.CreateForeignServerStmt.GetServername())})
		return kind, "CREATE SERVER", ok
	case *pg_query.Node_AlterForeignServerStmt:
		a.add(Effect{Action: ActionAlter, Object: "server", Name: quoteIdent(v.AlterForeignServerStmt.GetServername())})
		return kind, "ALTER SERVER", ok
	case *pg_query.Node_CreateUserMappingStmt:
		n := v.CreateUserMappingStmt
		a.add(Effect{Action: ActionCreate, Object: "user mapping", Name: userMapping(n.GetUser(), n.GetServername())})
		return kind, "CREATE USER MAPPING", ok
	case *pg_query.Node_AlterUserMappingStmt:
		n := v.AlterUserMappingStmt
		a.add(Effect{Action: ActionAlter, Object: "user mapping", Name: userMapping(n.GetUser(), n.GetServername())})
		return kind, "ALTER USER MAPPING", ok
	case *pg_query.Node_ImportForeignSchemaStmt:
		a.add(Effect{Action: ActionCreate, Object: "foreign table", Name: wildcard(v.ImportForeignSchemaStmt.GetLocalSchema())})
		return kind, "IMPORT FOREIGN SCHEMA", ok

	// Replication.
	case *pg_query.Node_CreatePublicationStmt:
		n := v.CreatePublicationStmt
		a.add(Effect{Action: ActionCreate, Object: "publication", Name: quoteIdent(n.GetPubname())})
		a.publish(n.GetForAllTables(), n.GetPubobjects())
		return kind, "CREATE PUBLICATION", ok
	case *pg_query.Node_AlterPublicationStmt:
		n := v.AlterPublicationStmt
		a.add(Effect{Action: ActionAlter, Object: "publication", Name: quoteIdent(n.GetPubname())})
		a.publish(n.GetForAllTables(), n.GetPubobjects())
		return kind, "ALTER PUBLICATION", ok
	case *pg_query.Node_CreateSubscriptionStmt:
		// A subscription writes whatever the remote publisher sends.
		a.opaque = true
		a.add(Effect{Action: ActionCreate, Object: "subscription", Name: quoteIdent(v.CreateSubscriptionStmt.GetSubname())})
		return kind, "CREATE SUBSCRIPTION", ok
	case *pg_query.Node_AlterSubscriptionStmt:
		a.opaque = true
		a.add(Effect{Action: ActionAlter, Object: "subscription", Name: quoteIdent(v.AlterSubscriptionStmt.GetSubname())})
		return kind, "ALTER SUBSCRIPTION", ok
	}
	return "", "", false
}

// createTable handles CREATE TABLE and CREATE FOREIGN TABLE. A table that
// inherits from or is a partition of another changes what queries on the
// parent see, so the parent is altered too.
func (a *analyzer) createTable(n *pg_query.CreateStmt, obj string) {
	a.add(Effect{Action: ActionCreate, Object: obj, Name: rangeVarName(n.GetRelation())})
	except := []proto.Message{n.GetRelation()}
	for _, p := range n.GetInhRelations() {
		if rv := p.GetRangeVar(); rv != nil {
			a.add(Effect{Action: ActionAlter, Object: "table", Name: rangeVarName(rv)})
			except = append(except, rv)
		}
	}
	a.fields(n, except...)
}

// alterTable handles ALTER TABLE and its relatives (ALTER INDEX, ALTER
// VIEW, ALTER TYPE ... ADD ATTRIBUTE, ...). Attaching or detaching a
// partition and adding a parent alter the other table as well.
func (a *analyzer) alterTable(n *pg_query.AlterTableStmt) {
	obj := objectType(n.GetObjtype())
	a.add(Effect{Action: ActionAlter, Object: obj, Name: rangeVarName(n.GetRelation())})
	except := []proto.Message{n.GetRelation()}
	for _, c := range n.GetCmds() {
		def := c.GetAlterTableCmd().GetDef()
		if rv := def.GetPartitionCmd().GetName(); rv != nil {
			a.add(Effect{Action: ActionAlter, Object: obj, Name: rangeVarName(rv)})
			except = append(except, rv)
		}
		if rv := def.GetRangeVar(); rv != nil {
			// INHERIT / NO INHERIT parent.
			a.add(Effect{Action: ActionAlter, Object: "table", Name: rangeVarName(rv)})
			except = append(except, rv)
		}
	}
	a.fields(n, except...)
}

// rename handles ALTER ... RENAME.
func (a *analyzer) rename(n *pg_query.RenameStmt) {
	t := n.GetRenameType()
	switch t {
	case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_TABCONSTRAINT,
		pg_query.ObjectType_OBJECT_TRIGGER, pg_query.ObjectType_OBJECT_RULE,
		pg_query.ObjectType_OBJECT_POLICY, pg_query.ObjectType_OBJECT_ATTRIBUTE,
		pg_query.ObjectType_OBJECT_DOMCONSTRAINT:
		// A part of a table, type or domain; subname is the part.
		owner := rangeVarName(n.GetRelation())
		if owner == "" {
			owner, _ = objectName(t, n.GetObject())
		}
		e := Effect{Action: ActionRename, Object: objectType(t), Name: quoteIdent(n.GetSubname()), NewName: quoteIdent(n.GetNewname())}
		if n.GetRelation() != nil && t != pg_query.ObjectType_OBJECT_ATTRIBUTE {
			e.Table = owner
		} else {
			// An attribute of a composite type, a constraint of a domain.
			e.Name = owner + "." + e.Name
		}
		a.add(e)
		return
	}
	name, parts := a.target(t, n.GetRelation(), n.GetObject())
	if name == "" {
		// Databases, roles, schemas, tablespaces, ...: the old name is subname.
		name, parts = quoteIdent(n.GetSubname()), nil
	}
	newParts := []string{n.GetNewname()}
	if len(parts) > 1 {
		newParts = append(parts[:len(parts)-1:len(parts)-1], n.GetNewname())
	}
	a.add(Effect{Action: ActionRename, Object: objectType(t), Name: name, NewName: joinName(newParts...)})
}

// target names the object of a generic ALTER statement, given either as a
// relation or as an object node, and returns its unquoted parts when it
// has them.
func (a *analyzer) target(t pg_query.ObjectType, rv *pg_query.RangeVar, obj *pg_query.Node) (string, []string) {
	if rv != nil {
		return rangeVarName(rv), []string{rv.GetCatalogname(), rv.GetSchemaname(), rv.GetRelname()}
	}
	name, _ := objectName(t, obj)
	var parts []string
	switch o := obj.GetNode().(type) {
	case *pg_query.Node_List:
		parts = nodeStrings(o.List.GetItems())
	case *pg_query.Node_ObjectWithArgs:
		parts = nodeStrings(o.ObjectWithArgs.GetObjname())
	case *pg_query.Node_TypeName:
		parts = nodeStrings(o.TypeName.GetNames())
	case *pg_query.Node_String_:
		parts = []string{o.String_.GetSval()}
	}
	return name, parts
}

// createSchema handles CREATE SCHEMA, including the objects it creates:
// those without a schema of their own go into the new schema.
func (a *analyzer) createSchema(n *pg_query.CreateSchemaStmt) {
	schema := n.GetSchemaname()
	if schema == "" {
		// CREATE SCHEMA AUTHORIZATION r names the schema after the role.
		schema = n.GetAuthrole().GetRolename()
	}
	a.add(Effect{Action: ActionCreate, Object: "schema", Name: quoteIdent(schema)})
	for _, elt := range n.GetSchemaElts() {
		elt = proto.Clone(elt).(*pg_query.Node)
		for _, rv := range []*pg_query.RangeVar{
			elt.GetCreateStmt().GetRelation(),
			elt.GetViewStmt().GetView(),
			elt.GetCreateSeqStmt().GetSequence(),
			elt.GetIndexStmt().GetRelation(),
			elt.GetCreateTrigStmt().GetRelation(),
		} {
			if rv != nil && rv.GetSchemaname() == "" {
				rv.Schemaname = schema
			}
		}
		a.stmt(elt, &Statement{})
	}
}

// publish records the tables a publication exposes to subscribers.
func (a *analyzer) publish(all bool, objs []*pg_query.Node) {
	if all {
		a.read(wildcard(""))
	}
	for _, o := range objs {
		spec := o.GetPublicationObjSpec()
		switch {
		case spec.GetPubobjtype() == pg_query.PublicationObjSpecType_PUBLICATIONOBJ_TABLES_IN_CUR_SCHEMA:
			// Whichever schema is current: all of them, as far as we know.
			a.read(wildcard(""))
		case spec.GetPubtable() == nil && spec != nil:
			// TABLES IN SCHEMA s.
			a.read(wildcard(spec.GetName()))
		default:
			a.walk(o)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

package pgsql

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// quoteIdent renders one identifier. The parser has already folded
// unquoted identifiers to lower case; whatever is not a plain lower-case
// identifier afterwards must have been quoted in the query, so it is
// quoted again here and cannot be mistaken for a different name.
func quoteIdent(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case (c >= '0' && c <= '9') || c == '$':
			plain = i > 0
		default:
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// joinName renders a qualified name from its parts, skipping empty ones.
func joinName(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteIdent(p))
	}
	return b.String()
}

// wildcard renders "every object in schema": "s.*", or "*" without one.
func wildcard(schema string) string {
	if schema == "" {
		return "*"
	}
	return quoteIdent(schema) + ".*"
}

// rangeVarName renders a relation reference.
func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	return joinName(rv.GetCatalogname(), rv.GetSchemaname(), rv.GetRelname())
}

// strings returns the values of a list of String nodes; other nodes give "".
func nodeStrings(nodes []*pg_query.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.GetString_().GetSval()
	}
	return out
}

// listName renders a name given as a list of String nodes.
func listName(nodes []*pg_query.Node) string {
	return joinName(nodeStrings(nodes)...)
}

// typeName renders a type name, with [] per array dimension.
func typeName(t *pg_query.TypeName) string {
	if t == nil {
		return ""
	}
	name := listName(t.GetNames())
	if t.GetSetof() {
		name = "setof " + name
	}
	return name + strings.Repeat("[]", len(t.GetArrayBounds()))
}

// roleName renders a role specification.
func roleName(r *pg_query.RoleSpec) string {
	switch r.GetRoletype() {
	case pg_query.RoleSpecType_ROLESPEC_CSTRING:
		return quoteIdent(r.GetRolename())
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_ROLE:
		return "current_role"
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_USER:
		return "current_user"
	case pg_query.RoleSpecType_ROLESPEC_SESSION_USER:
		return "session_user"
	case pg_query.RoleSpecType_ROLESPEC_PUBLIC:
		return "public"
	}
	return ""
}

// objectName renders the name of an object of type t as the grammar
// represents it in DROP, COMMENT, RENAME, GRANT and friends. For objects
// that belong to a table (columns, constraints, triggers, rules, policies)
// it returns the object's own name and the table's separately.
func objectName(t pg_query.ObjectType, n *pg_query.Node) (name, table string) {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_String_:
		return quoteIdent(v.String_.GetSval()), ""
	case *pg_query.Node_RangeVar:
		return rangeVarName(v.RangeVar), ""
	case *pg_query.Node_TypeName:
		return typeName(v.TypeName), ""
	case *pg_query.Node_ObjectWithArgs:
		return listName(v.ObjectWithArgs.GetObjname()), ""
	case *pg_query.Node_RoleSpec:
		return roleName(v.RoleSpec), ""
	case *pg_query.Node_Integer:
		return strconv.Itoa(int(v.Integer.GetIval())), ""
	case *pg_query.Node_Float:
		return v.Float.GetFval(), ""
	case *pg_query.Node_List:
		items := v.List.GetItems()
		switch t {
		case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_TABCONSTRAINT,
			pg_query.ObjectType_OBJECT_TRIGGER, pg_query.ObjectType_OBJECT_RULE,
			pg_query.ObjectType_OBJECT_POLICY:
			if len(items) == 0 {
				return "", ""
			}
			last, _ := objectName(t, items[len(items)-1])
			return last, listName(items[:len(items)-1])
		case pg_query.ObjectType_OBJECT_DOMCONSTRAINT:
			// (domain type, constraint name)
			if len(items) != 2 {
				break
			}
			dom, _ := objectName(t, items[0])
			c, _ := objectName(t, items[1])
			return dom + "." + c, ""
		case pg_query.ObjectType_OBJECT_OPCLASS, pg_query.ObjectType_OBJECT_OPFAMILY:
			// The access method comes first: DROP OPERATOR CLASS c USING btree.
			if len(items) > 1 {
				return listName(items[1:]), ""
			}
		case pg_query.ObjectType_OBJECT_CAST:
			if len(items) == 2 {
				src, _ := objectName(t, items[0])
				dst, _ := objectName(t, items[1])
				return src + " AS " + dst, ""
			}
		case pg_query.ObjectType_OBJECT_TRANSFORM:
			if len(items) == 2 {
				typ, _ := objectName(t, items[0])
				lang, _ := objectName(t, items[1])
				return typ + " FOR " + lang, ""
			}
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			p, _ := objectName(t, it)
			parts = append(parts, p)
		}
		return strings.Join(parts, "."), ""
	}
	return "", ""
}

// objectTypes names PostgreSQL's object types the way SQL spells them, so
// that "DROP " + upper(name) is the command tag.
var objectTypes = map[pg_query.ObjectType]string{
	pg_query.ObjectType_OBJECT_ACCESS_METHOD:         "access method",
	pg_query.ObjectType_OBJECT_AGGREGATE:             "aggregate",
	pg_query.ObjectType_OBJECT_AMOP:                  "operator of access method",
	pg_query.ObjectType_OBJECT_AMPROC:                "function of access method",
	pg_query.ObjectType_OBJECT_ATTRIBUTE:             "attribute",
	pg_query.ObjectType_OBJECT_CAST:                  "cast",
	pg_query.ObjectType_OBJECT_COLUMN:                "column",
	pg_query.ObjectType_OBJECT_COLLATION:             "collation",
	pg_query.ObjectType_OBJECT_CONVERSION:            "conversion",
	pg_query.ObjectType_OBJECT_DATABASE:              "database",
	pg_query.ObjectType_OBJECT_DEFAULT:               "default",
	pg_query.ObjectType_OBJECT_DEFACL:                "default privileges",
	pg_query.ObjectType_OBJECT_DOMAIN:                "domain",
	pg_query.ObjectType_OBJECT_DOMCONSTRAINT:         "domain constraint",
	pg_query.ObjectType_OBJECT_EVENT_TRIGGER:         "event trigger",
	pg_query.ObjectType_OBJECT_EXTENSION:             "extension",
	pg_query.ObjectType_OBJECT_FDW:                   "foreign data wrapper",
	pg_query.ObjectType_OBJECT_FOREIGN_SERVER:        "server",
	pg_query.ObjectType_OBJECT_FOREIGN_TABLE:         "foreign table",
	pg_query.ObjectType_OBJECT_FUNCTION:              "function",
	pg_query.ObjectType_OBJECT_INDEX:                 "index",
	pg_query.ObjectType_OBJECT_LANGUAGE:              "language",
	pg_query.ObjectType_OBJECT_LARGEOBJECT:           "large object",
	pg_query.ObjectType_OBJECT_MATVIEW:               "materialized view",
	pg_query.ObjectType_OBJECT_OPCLASS:               "operator class",
	pg_query.ObjectType_OBJECT_OPERATOR:              "operator",
	pg_query.ObjectType_OBJECT_OPFAMILY:              "operator family",
	pg_query.ObjectType_OBJECT_PARAMETER_ACL:         "parameter",
	pg_query.ObjectType_OBJECT_POLICY:                "policy",
	pg_query.ObjectType_OBJECT_PROCEDURE:             "procedure",
	pg_query.ObjectType_OBJECT_PUBLICATION:           "publication",
	pg_query.ObjectType_OBJECT_PUBLICATION_NAMESPACE: "publication schema",
	pg_query.ObjectType_OBJECT_PUBLICATION_REL:       "publication table",
	pg_query.ObjectType_OBJECT_ROLE:                  "role",
	pg_query.ObjectType_OBJECT_ROUTINE:               "routine",
	pg_query.ObjectType_OBJECT_RULE:                  "rule",
	pg_query.ObjectType_OBJECT_SCHEMA:                "schema",
	pg_query.ObjectType_OBJECT_SEQUENCE:              "sequence",
	pg_query.ObjectType_OBJECT_SUBSCRIPTION:          "subscription",
	pg_query.ObjectType_OBJECT_STATISTIC_EXT:         "statistics",
	pg_query.ObjectType_OBJECT_TABCONSTRAINT:         "table constraint",
	pg_query.ObjectType_OBJECT_TABLE:                 "table",
	pg_query.ObjectType_OBJECT_TABLESPACE:            "tablespace",
	pg_query.ObjectType_OBJECT_TRANSFORM:             "transform",
	pg_query.ObjectType_OBJECT_TRIGGER:               "trigger",
	pg_query.ObjectType_OBJECT_TSCONFIGURATION:       "text search configuration",
	pg_query.ObjectType_OBJECT_TSDICTIONARY:          "text search dictionary",
	pg_query.ObjectType_OBJECT_TSPARSER:              "text search parser",
	pg_query.ObjectType_OBJECT_TSTEMPLATE:            "text search template",
	pg_query.ObjectType_OBJECT_TYPE:                  "type",
	pg_query.ObjectType_OBJECT_USER_MAPPING:          "user mapping",
	pg_query.ObjectType_OBJECT_VIEW:                  "view",
}

// objectType names an object type; unknown ones (from a newer parser) get
// their enum name.
func objectType(t pg_query.ObjectType) string {
	if s, ok := objectTypes[t]; ok {
		return s
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " "))
}

// isRelation reports whether objects of this kind are relations (pg_class
// entries a policy thinks of as holding data).
func isRelation(object string) bool {
	switch object {
	case "table", "view", "materialized view", "foreign table", "sequence", "index":
		return true
	}
	return false
}

// alterTag is PostgreSQL's command tag for ALTER of an object type
// (AlterObjectTypeCommandTag in src/backend/tcop/utility.c).
func alterTag(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_ATTRIBUTE:
		return "ALTER TYPE"
	case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "ALTER TABLE"
	case pg_query.ObjectType_OBJECT_DOMCONSTRAINT:
		return "ALTER DOMAIN"
	}
	return "ALTER " + strings.ToUpper(objectType(t))
}

// dropTag is PostgreSQL's command tag for DROP of an object type.
func dropTag(t pg_query.ObjectType) string {
	return "DROP " + strings.ToUpper(objectType(t))
}

package dcr

import "strings"

// IDColumn is the column that identifies a record of stream, when the
// rule declares one: the first string column of the stream whose name is
// "Id" or ends in "Id", "ID" or "_id" (FindingId for the built-in rule),
// and that reaches every output table of the stream with the same name
// and a string type. "" when there is none. verify uses it as the default
// key for finding records in the workspace.
func (r *Rule) IDColumn(stream string) string {
	cols, ok := r.Streams[stream]
	if !ok {
		return ""
	}
	tables := r.streamTables(stream)
	for _, c := range cols {
		if c.Type != TypeString || !looksLikeID(c.Name) {
			continue
		}
		reaches := len(tables) > 0
		for _, t := range tables {
			found := false
			for _, tc := range r.TableSchema(t) {
				if tc.Name == c.Name && (tc.Type == TypeString || tc.Type == TypeGUID) {
					found = true
				}
			}
			reaches = reaches && found
		}
		if reaches {
			return c.Name
		}
	}
	return ""
}

// StreamTables lists the output tables the flows of stream write to, in
// flow order.
func (r *Rule) StreamTables(stream string) []string { return r.streamTables(stream) }

func (r *Rule) streamTables(stream string) []string {
	var out []string
	for _, f := range r.Flows {
		for _, s := range f.Streams {
			if s != stream {
				continue
			}
			t := OutputTable(f.OutputStream)
			dup := false
			for _, o := range out {
				dup = dup || o == t
			}
			if !dup {
				out = append(out, t)
			}
		}
	}
	return out
}

func looksLikeID(name string) bool {
	return name == "Id" || name == "ID" || name == "id" ||
		strings.HasSuffix(name, "Id") || strings.HasSuffix(name, "ID") || strings.HasSuffix(name, "_id")
}

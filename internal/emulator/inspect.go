package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// MaxRowsLimit caps ?limit= on the tables endpoint.
const MaxRowsLimit = 10000

// routes builds the one handler behind the listener: ingestion paths are
// matched first (their segments are case-insensitive and escaped, which
// ServeMux patterns cannot express), everything else goes through a
// ServeMux. An ingestion path after a prefix gets the fallback's 404, as
// from Azure.
func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.openIDConfiguration)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", e.keys)
	mux.HandleFunc("GET /common/discovery/instance", e.instanceDiscovery)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.token)
	mux.HandleFunc("GET /_emulator/stats", e.loopbackOnly(e.inspectStats))
	mux.HandleFunc("GET /_emulator/tables", e.loopbackOnly(e.inspectTables))
	mux.HandleFunc("GET /_emulator/tables/{table}", e.loopbackOnly(e.inspectTable))
	mux.HandleFunc("GET /_emulator/dcrs", e.loopbackOnly(e.inspectRules))
	mux.HandleFunc("GET "+identityPath, e.msiToken)
	e.adminRoutes(mux)
	mux.HandleFunc("POST /v1/workspaces/{workspace}/query", e.query)
	mux.HandleFunc("GET /v1/workspaces/{workspace}/query", e.query)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("No route for %s %s. Ingestion is POST {endpoint}/dataCollectionRules/{immutableId}/streams/{stream}?api-version=%s.", r.Method, r.URL.Path, APIVersion)
		if i := strings.LastIndex(strings.ToLower(r.URL.Path), "/datacollectionrules/"); i > 0 {
			msg += fmt.Sprintf(" The endpoint has no path: drop %s from dce_endpoint.", r.URL.Path[:i])
		}
		serviceError(w, r, http.StatusNotFound, "NotFound", msg)
	})
	return e.logged(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rule, stream, ok := parseIngestPath(r.URL.EscapedPath()); ok {
			e.ingest(w, r, rule, stream)
			return
		}
		// Key Vault's paths: a prefix of their own, matched here so that no
		// ServeMux pattern of the tenant-first Entra routes overlaps them.
		if strings.HasPrefix(r.URL.Path, "/secrets/") {
			e.vaultRequest(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// loopbackOnly keeps the inspection endpoints, which need no token, to
// callers on this machine even when the emulator listens on all interfaces.
func (e *Emulator) loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).kind = kindInspect
		if !isLoopback(r) {
			serviceError(w, r, http.StatusForbidden, "Forbidden", "The /_emulator endpoints answer only on loopback.")
			return
		}
		h(w, r)
	}
}

func (e *Emulator) inspectStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

// TableList is the answer of GET /_emulator/tables.
type TableList struct {
	Tables []TableInfo `json:"tables"`
}

// TableInfo describes one stored table.
type TableInfo struct {
	Name    string       `json:"name"`
	Rows    int64        `json:"rows"`
	Columns []ColumnInfo `json:"columns"`
}

// ColumnInfo is a column and its type.
type ColumnInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (e *Emulator) inspectTables(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.tableList())
}

func (e *Emulator) tableList() TableList {
	out := TableList{Tables: []TableInfo{}}
	counts := e.store.counts()
	for _, name := range e.store.tableNames() {
		cols, _ := e.store.schema(name)
		ti := TableInfo{Name: name, Rows: counts[name], Columns: make([]ColumnInfo, 0, len(cols))}
		for _, c := range cols {
			ti.Columns = append(ti.Columns, ColumnInfo{Name: c.Name, Type: c.Type})
		}
		out.Tables = append(out.Tables, ti)
	}
	return out
}

// TableRows is the answer of GET /_emulator/tables/{table}: the newest rows
// first (?order=asc: the oldest first), each with the _request_id and
// _ingested_at of its request. Offset is where the page starts;
// NextOffset, when set, is the offset of the next page.
type TableRows struct {
	Table      string           `json:"table"`
	Total      int64            `json:"total"`
	Offset     int              `json:"offset"`
	NextOffset *int             `json:"next_offset,omitempty"`
	Rows       []map[string]any `json:"rows"`
}

func (e *Emulator) inspectTable(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxRowsLimit {
			serviceError(w, r, http.StatusBadRequest, "InvalidLimit", fmt.Sprintf("limit %q: want a whole number from 1 to %d.", s, MaxRowsLimit))
			return
		}
		limit = n
	}
	offset := 0
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			serviceError(w, r, http.StatusBadRequest, "InvalidOffset", fmt.Sprintf("offset %q: want a whole number, 0 or more.", s))
			return
		}
		offset = n
	}
	var oldestFirst bool
	switch o := q.Get("order"); o {
	case "", "desc":
	case "asc":
		oldestFirst = true
	default:
		serviceError(w, r, http.StatusBadRequest, "InvalidOrder", fmt.Sprintf("order %q: want asc (oldest first, stable while rows arrive) or desc (newest first, the default).", o))
		return
	}
	rows, err := e.store.rowsPage(table, offset, limit, oldestFirst)
	if errors.Is(err, ErrUnknownTable) {
		serviceError(w, r, http.StatusNotFound, "TableNotFound", fmt.Sprintf("No table %q. Tables: %s.", table, strings.Join(e.store.tableNames(), ", ")))
		return
	}
	if err != nil {
		serviceError(w, r, http.StatusInternalServerError, "InternalServerError", err.Error())
		return
	}
	total, _ := e.store.count(table)
	page := TableRows{Table: table, Total: total, Offset: offset, Rows: rows}
	if next := offset + len(rows); len(rows) == limit && int64(next) < total {
		page.NextOffset = &next
	}
	writeJSON(w, http.StatusOK, page)
}

// RuleList is the answer of GET /_emulator/dcrs: every data collection rule
// the emulator serves, each as dcr.Rule.Marshal writes it (with its
// immutableId), so that clients such as `ccfpush check` apply the very rules
// the emulator applies.
type RuleList struct {
	Rules []json.RawMessage `json:"rules"`
}

func (e *Emulator) inspectRules(w http.ResponseWriter, r *http.Request) {
	out := RuleList{Rules: make([]json.RawMessage, 0, len(e.rules))}
	for _, rule := range e.rules {
		doc, err := rule.Marshal()
		if err != nil {
			serviceError(w, r, http.StatusInternalServerError, "InternalServerError", err.Error())
			return
		}
		out.Rules = append(out.Rules, json.RawMessage(doc))
	}
	writeJSON(w, http.StatusOK, out)
}

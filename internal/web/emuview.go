package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// The emulator view reads the emulator's inspection endpoints through
// emulator.Client, trusting the configuration's ca_file exactly as the
// uploads do.

type kv struct {
	Key   string
	Value int64
}

type emuTable struct {
	Name string
	Rows int64
}

type emulatorView struct {
	Configured bool // the endpoint is the local emulator
	Endpoint   string
	Error      string
	Stats      *emulator.Stats
	Tables     []emuTable
	Statuses   []kv
	Faults     []kv
	TokenErrs  []kv
	Table      string
	Limit      int
	Total      int64
	Columns    []string
	Rows       [][]string
}

const (
	emuDefaultLimit = 20
	emuMaxLimit     = 500
	emuCellMax      = 160
)

// emulatorClient is the client of the emulator cfg points at.
func (s *Server) emulatorClient(cfg *config.Config) (*emulator.Client, error) {
	if s.opts.EmulatorClient != nil {
		return emulator.NewClient(cfg.DCEEndpoint, s.opts.EmulatorClient)
	}
	return emulator.ClientFor(cfg)
}

func sortedKV(m map[string]int64) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Server) handleEmulatorPage(w http.ResponseWriter, r *http.Request) {
	v := emulatorView{Limit: emuDefaultLimit}
	cfg, _, err := s.effectiveConfig()
	switch {
	case err != nil:
		v.Error = "The configuration cannot be read: " + err.Error()
	case !cfg.IsEmulator():
		v.Endpoint = cfg.DCEEndpoint
	default:
		v.Configured = true
		v.Endpoint = cfg.DCEEndpoint
		s.fillEmulatorView(r, cfg, &v)
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"configured": v.Configured, "error": v.Error, "stats": v.Stats,
			"table": v.Table, "total": v.Total, "columns": v.Columns, "rows": v.Rows})
		return
	}
	s.render(w, r, http.StatusOK, "emulator", "Emulator", v)
}

func (s *Server) fillEmulatorView(r *http.Request, cfg *config.Config, v *emulatorView) {
	c, err := s.emulatorClient(cfg)
	if err != nil {
		v.Error = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	if err != nil {
		v.Error = fmt.Sprintf("The emulator at %s did not answer: %v. Is \"ccfpush emulator\" running?", c.URL(), err)
		return
	}
	v.Stats = &st
	for name, n := range st.Tables {
		v.Tables = append(v.Tables, emuTable{name, n})
	}
	slices.SortFunc(v.Tables, func(a, b emuTable) int { return strings.Compare(a.Name, b.Name) })
	v.Statuses, v.Faults, v.TokenErrs = sortedKV(st.Ingest.ByStatus), sortedKV(st.Faults), sortedKV(st.Tokens.Errors)

	v.Table = r.URL.Query().Get("table")
	if v.Table == "" {
		// The busiest table is the interesting one.
		for _, t := range v.Tables {
			if v.Table == "" || t.Rows > st.Tables[v.Table] {
				v.Table = t.Name
			}
		}
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		v.Limit = min(n, emuMaxLimit)
	}
	if v.Table == "" {
		return
	}
	page, err := c.Rows(ctx, v.Table, v.Limit)
	if err != nil {
		v.Error = fmt.Sprintf("Rows of %s could not be read: %v", v.Table, err)
		return
	}
	rows := make([]map[string]any, 0, len(page.Rows))
	for _, raw := range page.Rows {
		var row map[string]any
		if err := json.Unmarshal(raw, &row); err != nil {
			v.Error = fmt.Sprintf("Rows of %s could not be read: %v", v.Table, err)
			return
		}
		rows = append(rows, row)
	}
	v.Total = page.Total
	v.Columns, v.Rows = tabulate(rows)
}

// tabulate orders columns (TimeGenerated first, the emulator's own
// _request_id and _ingested_at last) and formats cells as text.
func tabulate(rows []map[string]any) ([]string, [][]string) {
	seen := map[string]bool{}
	var cols []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	rank := func(c string) int {
		switch {
		case c == "TimeGenerated":
			return 0
		case strings.HasPrefix(c, "_"):
			return 2
		}
		return 1
	}
	sort.Slice(cols, func(i, j int) bool {
		if ri, rj := rank(cols[i]), rank(cols[j]); ri != rj {
			return ri < rj
		}
		return cols[i] < cols[j]
	})
	out := make([][]string, len(rows))
	for i, r := range rows {
		line := make([]string, len(cols))
		for j, c := range cols {
			line[j] = cell(r[c])
		}
		out[i] = line
	}
	return cols, out
}

func cell(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	}
	if len(s) > emuCellMax {
		s = strings.ToValidUTF8(s[:emuCellMax], "") + "…"
	}
	return s
}

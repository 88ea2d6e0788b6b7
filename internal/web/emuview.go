package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
)

// The emulator view reads the emulator's inspection endpoints over HTTPS,
// trusting the configuration's ca_file exactly as the uploads do. The
// documents are decoded into the fields shown here only, so this package
// does not depend on the emulator's code.

type emuStats struct {
	Started time.Time        `json:"started"`
	URL     string           `json:"url"`
	Tables  map[string]int64 `json:"tables"`
	Ingest  struct {
		Requests int64            `json:"requests"`
		ByStatus map[string]int64 `json:"by_status"`
		Records  int64            `json:"records"`
		Rows     int64            `json:"rows"`
		Bytes    int64            `json:"bytes"`
		Dropped  int64            `json:"dropped"`
	} `json:"ingest"`
	Tokens struct {
		Requests int64            `json:"requests"`
		Issued   int64            `json:"issued"`
		Errors   map[string]int64 `json:"errors"`
	} `json:"tokens"`
	Faults  map[string]int64 `json:"faults"`
	Changes []struct {
		Stream  string `json:"stream"`
		Table   string `json:"table"`
		Column  string `json:"column"`
		Kind    string `json:"kind"`
		Count   int64  `json:"count"`
		Example string `json:"example"`
	} `json:"changes"`
}

type emuRows struct {
	Table string           `json:"table"`
	Total int64            `json:"total"`
	Rows  []map[string]any `json:"rows"`
}

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
	Stats      *emuStats
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

func (s *Server) emulatorClient(cfg *config.Config) (*http.Client, error) {
	if s.opts.EmulatorClient != nil {
		return s.opts.EmulatorClient, nil
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	// No proxy: the emulator is on loopback.
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(body, v)
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
	u, err := url.Parse(strings.TrimSpace(cfg.DCEEndpoint))
	if err != nil {
		v.Error = "dce_endpoint is not a URL: " + err.Error()
		return
	}
	base := u.Scheme + "://" + u.Host
	hc, err := s.emulatorClient(cfg)
	if err != nil {
		v.Error = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var st emuStats
	if err := getJSON(ctx, hc, base+"/_emulator/stats", &st); err != nil {
		v.Error = fmt.Sprintf("The emulator at %s did not answer: %v. Is \"ccfpush emulator\" running?", base, err)
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
	var rows emuRows
	if err := getJSON(ctx, hc, base+"/_emulator/tables/"+url.PathEscape(v.Table)+"?limit="+strconv.Itoa(v.Limit), &rows); err != nil {
		v.Error = fmt.Sprintf("Rows of %s could not be read: %v", v.Table, err)
		return
	}
	v.Total = rows.Total
	v.Columns, v.Rows = tabulate(rows.Rows)
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

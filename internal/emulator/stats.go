package emulator

import (
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// Stats is what the emulator has seen: GET /_emulator/stats. Counters cover
// the current run (since Started); Tables and Changes come from the store and
// survive restarts.
type Stats struct {
	Started time.Time        `json:"started"`
	URL     string           `json:"url"`
	Tables  map[string]int64 `json:"tables"` // rows stored per table
	Ingest  IngestStats      `json:"ingest"`
	Tokens  TokenStats       `json:"tokens"`
	Vault   VaultStats       `json:"keyvault"`
	// Faults counts injected faults by name: "fail_503", "reset",
	// "accept_then_drop", "latency", "throttled", "forced_403", ...
	Faults map[string]int64 `json:"faults"`
	// Changes are the silent changes the service would have made to the
	// data, per stream, table, column and kind, with an example.
	Changes []ChangeStat `json:"changes"`
}

// IngestStats counts ingestion requests.
type IngestStats struct {
	Requests int64            `json:"requests"`
	ByStatus map[string]int64 `json:"by_status"` // "204": n; "0" = connection cut
	// ByDCR counts them per DCR immutable id (as the path names it,
	// lower-cased) and status: how requests were spread over DCRs, and
	// which of them answered 429.
	ByDCR   map[string]map[string]int64 `json:"by_dcr"`
	Records int64                       `json:"records"` // records received in accepted requests
	Rows    int64                       `json:"rows"`    // rows stored
	Bytes   int64                       `json:"bytes"`   // request bytes received
	// Dropped counts requests answered 204 that stored nothing because the
	// body was a single JSON object instead of an array (the real service's
	// silent behaviour).
	Dropped int64 `json:"dropped"`
}

// TokenStats counts token requests, to the Entra token endpoint and the
// managed identity endpoint.
type TokenStats struct {
	Requests int64            `json:"requests"`
	Issued   int64            `json:"issued"`
	Errors   map[string]int64 `json:"errors"` // by "AADSTSnnnn", or "identity_<status>"
	// Revoked counts unexpired tokens made invalid by RevokeTokens.
	Revoked int64 `json:"revoked"`
}

// VaultStats counts Key Vault requests.
type VaultStats struct {
	Requests int64            `json:"requests"`
	ByStatus map[string]int64 `json:"by_status"`
}

// ChangeStat is one aggregated silent change.
type ChangeStat struct {
	Stream  string `json:"stream"`
	Table   string `json:"table,omitempty"`
	Column  string `json:"column,omitempty"`
	Kind    string `json:"kind"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

type changeKey struct{ stream, table, column, kind string }

// collector holds the counters behind Stats.
type collector struct {
	mu      sync.Mutex
	started time.Time
	ingest  IngestStats
	tokens  TokenStats
	vault   VaultStats
	faults  map[string]int64
	changes map[changeKey]*ChangeStat
}

func newCollector(started time.Time, persisted []ChangeStat) *collector {
	c := &collector{
		started: started,
		ingest:  IngestStats{ByStatus: map[string]int64{}, ByDCR: map[string]map[string]int64{}},
		tokens:  TokenStats{Errors: map[string]int64{}},
		vault:   VaultStats{ByStatus: map[string]int64{}},
		faults:  map[string]int64{},
		changes: map[changeKey]*ChangeStat{},
	}
	for _, ch := range persisted {
		ch := ch
		c.changes[changeKey{ch.Stream, ch.Table, ch.Column, ch.Kind}] = &ch
	}
	return c
}

func (c *collector) ingestAnswered(rule string, status, records int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ingest.Requests++
	c.ingest.ByStatus[strconv.Itoa(status)]++
	rule = strings.ToLower(rule)
	if c.ingest.ByDCR[rule] == nil {
		c.ingest.ByDCR[rule] = map[string]int64{}
	}
	c.ingest.ByDCR[rule][strconv.Itoa(status)]++
	c.ingest.Bytes += bytes
	if status == 204 {
		c.ingest.Records += int64(records)
	}
}

func (c *collector) stored(rows int) {
	c.mu.Lock()
	c.ingest.Rows += int64(rows)
	c.mu.Unlock()
}

func (c *collector) dropped() {
	c.mu.Lock()
	c.ingest.Dropped++
	c.mu.Unlock()
}

func (c *collector) fault(name string) {
	c.mu.Lock()
	c.faults[name]++
	c.mu.Unlock()
}

func (c *collector) token(aadsts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens.Requests++
	if aadsts == 0 {
		c.tokens.Issued++
		return
	}
	c.tokens.Errors["AADSTS"+strconv.Itoa(aadsts)]++
}

func (c *collector) tokenError(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens.Requests++
	c.tokens.Errors[key]++
}

func (c *collector) revoked(n int) {
	c.mu.Lock()
	c.tokens.Revoked += int64(n)
	c.mu.Unlock()
}

func (c *collector) vaultAnswered(status int) {
	c.mu.Lock()
	c.vault.Requests++
	c.vault.ByStatus[strconv.Itoa(status)]++
	c.mu.Unlock()
}

// addChanges folds one request's changes into the totals.
func (c *collector) addChanges(changes []dcr.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		k := changeKey{ch.Stream, ch.Table, ch.Column, string(ch.Kind)}
		if s, ok := c.changes[k]; ok {
			s.Count += int64(ch.Count)
			continue
		}
		c.changes[k] = &ChangeStat{Stream: ch.Stream, Table: ch.Table, Column: ch.Column, Kind: string(ch.Kind), Count: int64(ch.Count), Example: ch.Example}
	}
}

func (c *collector) snapshot(url string, tables map[string]int64) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{
		Started: c.started,
		URL:     url,
		Tables:  tables,
		Ingest:  c.ingest,
		Tokens:  c.tokens,
		Faults:  make(map[string]int64, len(c.faults)),
		Changes: make([]ChangeStat, 0, len(c.changes)),
	}
	s.Ingest.ByStatus = make(map[string]int64, len(c.ingest.ByStatus))
	for k, v := range c.ingest.ByStatus {
		s.Ingest.ByStatus[k] = v
	}
	s.Ingest.ByDCR = make(map[string]map[string]int64, len(c.ingest.ByDCR))
	for k, v := range c.ingest.ByDCR {
		s.Ingest.ByDCR[k] = maps.Clone(v)
	}
	s.Tokens.Errors = maps.Clone(c.tokens.Errors)
	s.Vault = c.vault
	s.Vault.ByStatus = maps.Clone(c.vault.ByStatus)
	for k, v := range c.faults {
		s.Faults[k] = v
	}
	for _, ch := range c.changes {
		s.Changes = append(s.Changes, *ch)
	}
	sort.Slice(s.Changes, func(i, j int) bool {
		a, b := s.Changes[i], s.Changes[j]
		if a.Stream != b.Stream {
			return a.Stream < b.Stream
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Kind < b.Kind
	})
	return s
}

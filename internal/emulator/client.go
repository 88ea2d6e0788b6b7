package emulator

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
)

// DefaultDataDir is where "ccfpush emulator" keeps its CA, keys and store
// unless told otherwise (relative to the working directory).
const DefaultDataDir = ".ccfpush-emulator"

// maxAnswerBytes bounds an inspection answer (10,000 rows at most).
const maxAnswerBytes = 256 << 20

// Client reads a running emulator's inspection endpoints (/_emulator/...):
// the one client of "ccfpush emulator stats|rows", "ccfpush check" (the
// emulator's rules) and the web UI's Emulator page.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the emulator at baseURL (https://host:port;
// a path is ignored) over hc.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("emulator URL %q: want https://host:port", baseURL)
	}
	return &Client{base: u.Scheme + "://" + u.Host, hc: hc}, nil
}

// ClientFor returns a client of the emulator cfg points at: its
// dce_endpoint, trusted as the uploads trust it (system roots plus ca_file).
func ClientFor(cfg *config.Config) (*Client, error) {
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	// No proxy: the emulator is on loopback.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}
	return NewClient(cfg.DCEEndpoint, hc)
}

// ClientFrom returns the client of the emulator at baseURL, else at the
// dce_endpoint of cfg (the configuration, nil when it could not be read:
// cfgErr says why); trusted through caFile, else cfg's ca_file, else the
// CA of DefaultDataDir when there is one. Every error is the caller's to
// fix: no URL, a bad one, a CA that cannot be read.
func ClientFrom(baseURL, caFile string, cfg *config.Config, cfgErr error) (*Client, error) {
	c := &config.Config{DCEEndpoint: baseURL, CAFile: caFile}
	switch {
	case cfg != nil:
		c.DCEEndpoint = cmp.Or(c.DCEEndpoint, cfg.DCEEndpoint)
		c.CAFile = cmp.Or(c.CAFile, cfg.CAFile)
	case baseURL == "":
		return nil, fmt.Errorf("no emulator URL: %w", cfgErr)
	}
	if c.DCEEndpoint == "" {
		return nil, errors.New("no emulator URL: the configuration has no dce_endpoint")
	}
	if c.CAFile == "" {
		if def := filepath.Join(DefaultDataDir, caFileName); fileExists(def) {
			c.CAFile = def
		}
	}
	return ClientFor(c)
}

// RuleFor returns the rule cfg sends to (its dcr_immutable_id) from the
// emulator cfg points at: ErrNoRule when the emulator has none of that id,
// an *UnreachableError when it does not answer.
func RuleFor(ctx context.Context, cfg *config.Config) (*dcr.Rule, error) {
	c, err := ClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return c.Rule(ctx, cfg.DCRImmutableID)
}

// URL is the emulator's base URL.
func (c *Client) URL() string { return c.base }

// UnreachableError is returned when the emulator did not answer at all
// (not running, wrong address, TLS not trusted).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the emulator at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Stats returns what the emulator received, stored and silently changed
// (GET /_emulator/stats).
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.get(ctx, "/_emulator/stats", &st)
	return st, err
}

// RowPage is the answer of GET /_emulator/tables/{table}, with each row as
// the emulator wrote it (keys in its order).
type RowPage struct {
	Table string            `json:"table"`
	Total int64             `json:"total"`
	Rows  []json.RawMessage `json:"rows"`
}

// WriteText prints the rows for people: one JSON object per line on w,
// and how many of how many on info.
func (p RowPage) WriteText(w, info io.Writer) error {
	for _, r := range p.Rows {
		if _, err := fmt.Fprintln(w, string(r)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(info, "%d of %d rows in %s, newest first\n", len(p.Rows), p.Total, p.Table)
	return err
}

// Rows returns the newest limit rows of table, newest first.
func (c *Client) Rows(ctx context.Context, table string, limit int) (RowPage, error) {
	var p RowPage
	err := c.get(ctx, "/_emulator/tables/"+url.PathEscape(table)+"?limit="+strconv.Itoa(limit), &p)
	return p, err
}

// Rules returns the data collection rules the emulator applies
// (GET /_emulator/dcrs).
func (c *Client) Rules(ctx context.Context) ([]*dcr.Rule, error) {
	var list RuleList
	if err := c.get(ctx, "/_emulator/dcrs", &list); err != nil {
		return nil, err
	}
	rules := make([]*dcr.Rule, 0, len(list.Rules))
	for i, raw := range list.Rules {
		r, err := dcr.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("emulator rule %d: %w", i+1, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ErrNoRule is returned by Rule when the emulator has no rule of that id.
var ErrNoRule = errors.New("no rule")

// Rule returns the emulator's rule immutableID (case does not matter).
func (c *Client) Rule(ctx context.Context, immutableID string) (*dcr.Rule, error) {
	rules, err := c.Rules(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rules))
	for _, r := range rules {
		if strings.EqualFold(r.ImmutableID, immutableID) {
			return r, nil
		}
		ids = append(ids, r.ImmutableID)
	}
	return nil, fmt.Errorf("the emulator at %s has %w %s (it has: %s)", c.base, ErrNoRule, immutableID, strings.Join(ids, ", "))
}

// get fetches path and decodes the JSON answer into v.
func (c *Client) get(ctx context.Context, path string, v any) error {
	return call(ctx, c.hc, http.MethodGet, c.base, path, nil, v)
}

// AdminError is a refusal of an inspection or admin endpoint: its answer
// when not 200.
type AdminError struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *AdminError) Error() string {
	return fmt.Sprintf("emulator: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// call is the one request path to /_emulator/*: in (when not nil) is sent
// as JSON, the answer decoded into out. It fails with *UnreachableError
// when the emulator did not answer, *AdminError when it refused.
func call(ctx context.Context, hc *http.Client, method, base, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	base = strings.TrimRight(base, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{URL: base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("emulator: read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		ae := &AdminError{StatusCode: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		if ae.Message == "" {
			ae.Message = strings.TrimSpace(string(data))
		}
		if ae.Message == "" {
			ae.Message = "is " + base + " the emulator?"
		}
		return ae
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("emulator: %s %s: answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
)

const (
	historyFile = "history.json"
	// historyMax bounds the file: the page shows recent runs, not an audit
	// log.
	historyMax = 200
)

// history keeps finished runs in a JSON file in the state directory, so
// they survive restarts. Writes are atomic (temporary file and rename) with
// mode 0600: summaries name endpoints and files.
type history struct {
	path string
	mu   sync.Mutex
	runs []RunRecord // oldest first
}

type historyDoc struct {
	Version int         `json:"version"`
	Runs    []RunRecord `json:"runs"`
}

// loadHistory reads the history file. A missing file is an empty history;
// an unreadable one is set aside (history.json.bad) so that a damaged file
// neither blocks the UI nor gets silently overwritten.
func loadHistory(path string, log *slog.Logger) (*history, error) {
	h := &history{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	var doc historyDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		bad := path + ".bad"
		log.Warn("run history unreadable; starting a new one", "file", path, "moved_to", bad, "err", err)
		if rerr := os.Rename(path, bad); rerr != nil {
			return nil, fmt.Errorf("history %s is damaged (%v) and could not be moved aside: %w", path, err, rerr)
		}
		return h, nil
	}
	h.runs = doc.Runs
	return h, nil
}

// add appends a finished run and saves the file.
func (h *history) add(rec RunRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, rec)
	if len(h.runs) > historyMax {
		h.runs = slices.Clone(h.runs[len(h.runs)-historyMax:])
	}
	return h.saveLocked()
}

// list returns the runs, newest first.
func (h *history) list() []RunRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.runs)
	slices.Reverse(out)
	return out
}

func (h *history) saveLocked() error {
	data, err := json.MarshalIndent(historyDoc{Version: 1, Runs: h.runs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if err := atomicfile.WriteBytes(h.path, 0o600, append(data, '\n')); err != nil {
		return fmt.Errorf("save history: %w", err)
	}
	return nil
}

type historyView struct {
	Runs []RunRecord
	Path string
}

func (s *Server) handleHistoryPage(w http.ResponseWriter, r *http.Request) {
	v := historyView{Runs: s.hist.list(), Path: s.hist.path}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"runs": v.Runs})
		return
	}
	s.render(w, r, http.StatusOK, "history", "History", v)
}

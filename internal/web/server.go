// Package web is the local web UI of ccfpush: configure the connector, test
// the connection, generate test data, send it and watch the delivery live,
// verify that it landed, query the workspace (the Logs page, with a time
// chart), look back at earlier runs and, against the built-in emulator, see
// what was stored and what the service would have dropped or changed.
//
// The UI is server-rendered HTML (html/template) with a little plain
// JavaScript for inline validation and the live view, all embedded in the
// binary with go:embed: no build step, no CDN, it works offline. The
// activity log streams over Server-Sent Events from an activity.Bus, with
// event ids, so a reloaded page or a reconnecting stream resumes without
// gaps.
//
// It listens on loopback by default and guards every request (guard.go): a
// one-time start token that becomes an HttpOnly SameSite=Strict session
// cookie, Host and Origin checks against DNS rebinding and cross-site
// requests, a CSRF token on every change, and a strict Content-Security-
// Policy. The application secret never reaches the browser.
//
// Everything the server acts through is injected with Options (the Runner
// that delivers records, the Checker behind "Test connection"), so the
// handlers are tested with fakes and the composition root (package cli)
// decides which adapters run. PipelineRunner (an ingest.Job, as "ccfpush
// send" runs) and DoctorChecker (doctor's checks) are the real ones; the
// Emulator page reads through emulator.Client.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/verify"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultStateDir is where history is kept, relative to the working
// directory.
const DefaultStateDir = ".ccfpush-ui"

// maxFormBytes bounds request bodies: forms here are a few hundred bytes.
const maxFormBytes = 1 << 20

// Options configure a Server. ConfigPath is required; Runner and Checker
// enable the Send and Test connection pages.
type Options struct {
	// ConfigPath is the connector configuration the UI shows and saves.
	ConfigPath string
	// Getenv reads environment overrides, as the CLI does (os.Getenv).
	Getenv func(string) string
	// WorkDir is the folder data files are picked from and generated into
	// (default: the process's working directory). Nothing outside it can
	// be read or written through the UI.
	WorkDir string
	// StateDir holds the run history (default WorkDir/.ccfpush-ui).
	StateDir string
	// Prefill stands in for the configuration file while it does not exist
	// (ccfpush demo passes the emulator's values): the form shows it, and
	// sends and checks use it until the user saves.
	Prefill *config.Config

	// Runner delivers records (Send). Nil disables sending.
	Runner Runner
	// Checker runs the connection checks (Test connection). Nil disables them.
	Checker Checker
	// NewQuerier builds the Logs query client of the configured workspace
	// (the Logs page, Verify after a send). Nil disables them.
	NewQuerier func(cfg *config.Config) (verify.Querier, error)
	// Rule returns the DCR cfg sends to, when it can be known (the
	// emulator's): it names the table and the key, and explains records
	// the rule drops. Nil: by convention from the stream's name.
	Rule func(ctx context.Context, cfg *config.Config) (*dcr.Rule, error)
	// EmulatorClient carries the emulator.Client's requests to
	// /_emulator/*. Nil: emulator.ClientFor, trusting the configuration's
	// ca_file.
	EmulatorClient *http.Client

	// Bus receives every event; nil creates one.
	Bus *activity.Bus
	// Logger gets server-side problems; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// AllowedHosts are extra Host header values accepted besides the bound
	// address and localhost (e.g. a name used through an SSH tunnel).
	AllowedHosts []string
	// Token is the one-time start token; empty picks a random one.
	Token string
}

// Server is the web UI. Create it with New, then Start or Run it.
type Server struct {
	opts    Options
	log     *slog.Logger
	bus     *activity.Bus
	guard   *guard
	ws      *workspace
	hist    *history
	pages   *pages
	handler http.Handler
	now     func() time.Time

	runCtx    context.Context // parent of send runs; ends at Shutdown
	runCancel context.CancelFunc
	runs      sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	srv      *http.Server
	serveErr chan error // Serve's return, once it returned
	baseURL  string
	current  *run // the active or most recent send
}

// New prepares a server: it checks the folders and loads the history. It
// does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("web: a configuration path is required")
	}
	if opts.WorkDir == "" {
		opts.WorkDir = "."
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(opts.WorkDir, DefaultStateDir)
	}
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bus := opts.Bus
	if bus == nil {
		bus = activity.New(activity.Options{Now: opts.Now})
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("web: state directory: %w", err)
	}
	ws, err := newWorkspace(opts.WorkDir, opts.StateDir, opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if cfg, err := config.Resolve(opts.ConfigPath, opts.Getenv); err == nil {
		config.LogExposures(log, opts.ConfigPath, cfg) // as every command that reads it
	}
	hist, err := loadHistory(filepath.Join(opts.StateDir, historyFile), log)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	pg, err := loadPages()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, log: log, bus: bus, guard: newGuard(opts.Token), ws: ws, hist: hist, pages: pg,
		now: opts.Now, runCtx: ctx, runCancel: cancel, closing: make(chan struct{}),
	}
	s.handler = s.guard.protect(s.routes())
	return s, nil
}

// Bus returns the activity bus the server publishes to.
func (s *Server) Bus() *activity.Bus { return s.bus }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/config", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /config", s.handleConfigPage)
	mux.HandleFunc("POST /config", s.handleConfigSave)
	mux.HandleFunc("POST /config/validate", s.handleConfigValidate)
	mux.HandleFunc("GET /check", s.handleCheckPage)
	mux.HandleFunc("POST /check", s.handleCheckRun)
	mux.HandleFunc("GET /generate", s.handleGeneratePage)
	mux.HandleFunc("POST /generate", s.handleGenerate)
	mux.HandleFunc("GET /send", s.handleSendPage)
	mux.HandleFunc("POST /send", s.handleSendStart)
	mux.HandleFunc("POST /send/stop", s.handleSendStop)
	mux.HandleFunc("POST /send/verify", s.handleSendVerify)
	mux.HandleFunc("GET /logs", s.handleLogsPage)
	mux.HandleFunc("GET /history", s.handleHistoryPage)
	mux.HandleFunc("GET /emulator", s.handleEmulatorPage)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("GET /api/files", s.handleFiles)
	mux.HandleFunc("GET /api/run", s.handleRunState)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
	return mux
}

// cacheStatic lets the browser keep the embedded assets for a while; they
// change only with the binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// Handler returns the guarded handler. Start binds the Host check to the
// listener's address; before that every request gets 403.
func (s *Server) Handler() http.Handler { return s.handler }

// Start serves on ln in the background until Shutdown.
func (s *Server) Start(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("web: already started")
	}
	select {
	case <-s.closing:
		return errors.New("web: shut down")
	default:
	}
	s.guard.bind(ln.Addr(), s.opts.AllowedHosts)
	s.baseURL = "http://" + displayHost(ln.Addr())
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv := s.srv
	s.serveErr = make(chan error, 1)
	errc := s.serveErr
	go func() {
		err := srv.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web UI stopped serving", "err", err)
		}
		errc <- err
	}()
	return nil
}

// Run serves on ln until ctx ends, then shuts down gracefully (runs in
// progress are stopped and recorded in the history). A caller that prints
// the login URL first calls Start(ln) and then Run(ctx, nil). Run returns
// as soon as serving fails, without waiting for ctx.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	started := s.srv != nil
	s.mu.Unlock()
	if !started {
		if err := s.Start(ln); err != nil {
			return err
		}
	}
	s.mu.Lock()
	errc := s.serveErr
	s.mu.Unlock()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.Shutdown(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("web: serve: %w", serveErr)
	}
	return err
}

// displayHost names the listener in URLs: loopback stays as bound; an
// unspecified address is shown as 127.0.0.1 (reachable from this machine).
func displayHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234; empty before
// Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// LoginURL is the URL that signs a browser in: the base URL with the
// one-time start token. After the token was used it is the base URL alone;
// NewLoginURL makes a fresh one.
func (s *Server) LoginURL() string {
	base := s.URL()
	if tok := s.guard.startToken(); tok != "" {
		return base + "/?" + tokenParam + "=" + url.QueryEscape(tok)
	}
	return base + "/"
}

// NewLoginURL replaces the start token with a fresh one and returns its URL,
// to sign in another browser.
func (s *Server) NewLoginURL() string {
	tok := s.guard.newLoginToken()
	return s.URL() + "/?" + tokenParam + "=" + url.QueryEscape(tok)
}

// Shutdown stops a send in progress (it is recorded as interrupted), ends
// the event streams and stops the HTTP server, waiting for requests until
// ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.runCancel()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { s.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("web: shut down: %w", err)
	}
	return nil
}

// IsLoopbackHost reports whether an address of host is reachable from
// this machine only (the UI's default).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package emulator

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/finding"
)

// Identity of the app registered when Options.Apps is empty. Fixed so that a
// connector config written once keeps working across restarts; the secret is
// random and persisted in the data directory.
const (
	DefaultTenantID = "7f3c2a1e-5b4d-4c8e-9a6f-0d1e2c3b4a59"
	DefaultClientID = "c5b1e0d4-2f7a-4e8b-9a3c-6d1f0e2b4a7c"
)

// DefaultWorkspaceID is the Log Analytics workspace the query endpoint
// serves when Options.WorkspaceID is empty; fixed for the same reason.
const DefaultWorkspaceID = "3c2b1a09-8f7e-4d6c-b5a4-9e8d7c6b5a41"

// DefaultAddr is where the emulator listens unless told otherwise.
const DefaultAddr = "127.0.0.1:8443"

// MinTokenLifetime is the shortest Options.TokenLifetime: expires_in is a
// second less, and must stay positive.
const MinTokenLifetime = 2 * time.Second

// Files in the data directory.
const (
	caFileName      = "ca.pem"
	caKeyFileName   = "ca-key.pem"
	signKeyFileName = "signing-key.pem"
	secretFileName  = "client-secret"
	identityHdrFile = "identity-header"
	dbFileName      = "emulator.db"
)

// Options configures an Emulator. Only DataDir is required.
type Options struct {
	// Addr is the TCP address to listen on; "127.0.0.1:0" picks a free port.
	// Default DefaultAddr.
	Addr string
	// DataDir holds the CA (ca.pem, ca-key.pem), the token signing key, the
	// default app's secret and the SQLite store emulator.db. Created (0700)
	// when missing; everything in it is reused on the next start.
	DataDir string
	// Rules are the data collection rules the endpoint serves. None means
	// finding.Rule(): the built-in stream declaring the whole finding
	// schema (generated findings and scanner reports alike). A rule Azure would refuse makes New fail with a
	// *RefusedError.
	Rules []*dcr.Rule
	// Apps are the registered Entra applications. None means one default app
	// (DefaultTenantID, DefaultClientID, a random secret persisted in DataDir)
	// granted on every rule.
	Apps []App
	// Faults injects failures into ingestion requests.
	Faults Faults
	// Limits throttles ingestion per DCR (429 + Retry-After).
	Limits Limits
	// ManagedIdentities are the identities the managed identity endpoint
	// (App Service style, see ManagedIdentityEnv) issues tokens for. None
	// means one system-assigned identity, DefaultIdentityClientID, granted
	// on every rule.
	ManagedIdentities []ManagedIdentity
	// KeyVault configures the Key Vault secrets endpoint.
	KeyVault KeyVault
	// WorkspaceID is the Log Analytics workspace id the Logs Query
	// endpoint answers for. Default DefaultWorkspaceID.
	WorkspaceID string
	// VisibilityDelay makes stored rows queryable only this long after
	// the request that carried them was answered, like Azure's ingestion
	// latency (1–15 minutes). The inspection endpoints see rows at once.
	VisibilityDelay time.Duration
	// TokenLifetime is the lifetime of issued access tokens; expires_in is
	// one second less, as Entra answers 3599 for an hour. Default 1h; at
	// least MinTokenLifetime.
	TokenLifetime time.Duration
	// AppSecretInVault, when set, puts the first app's client secret into
	// the vault under this name at start, and ConfigFile gets
	// SecretRefConfig(AppSecretInVault) instead of the secret itself: a
	// configuration that reads its secret from Key Vault.
	AppSecretInVault string
	// ConfigFile, when set, receives a ready connector configuration for
	// the emulator (ConnectorConfig) at Start. A file already there is
	// replaced only when the emulator wrote it (WrittenByEmulator), it is
	// empty, a device or a pipe, or OverwriteConfig is set: otherwise New
	// fails with a *ConfigExistsError.
	ConfigFile      string
	OverwriteConfig bool
	// Logger receives one line per request. Default: discard.
	Logger *slog.Logger
	// Clock is time.Now unless a test injects another.
	Clock func() time.Time
}

// App is a registered Entra application (a service principal in a tenant).
type App struct {
	TenantID string
	ClientID string
	Secret   config.Secret
	// SecretExpiresAt, when set, makes the secret expired from that instant
	// on: the token endpoint answers AADSTS7000222.
	SecretExpiresAt time.Time
	// AllowedRules are the immutable ids of the DCRs the app may ingest into
	// (the "Monitoring Metrics Publisher" role assignment); empty means all.
	AllowedRules []string
	// NoWorkspaceRead withholds the "Log Analytics Reader" role on the
	// workspace: queries answer 403 InsufficientAccessError.
	NoWorkspaceRead bool
}

// ObjectID is the service principal's object id, derived from the client id
// so it is stable across restarts.
func (a App) ObjectID() string { return derivedGUID("oid:" + strings.ToLower(a.ClientID)) }

func (a App) allowed(ruleID string) bool {
	if len(a.AllowedRules) == 0 {
		return true
	}
	for _, id := range a.AllowedRules {
		if strings.EqualFold(id, ruleID) {
			return true
		}
	}
	return false
}

// Emulator serves the Entra token endpoint and the Logs Ingestion endpoint on
// one TLS listener. Create it with New, then Start or Run it.
type Emulator struct {
	opts   Options
	log    *slog.Logger
	clock  func() time.Time
	rules  []*dcr.Rule
	byRule map[string]*dcr.Rule // lower-case immutable id

	appsMu sync.RWMutex // apps change when a secret is rotated
	apps   []App

	identities     []ManagedIdentity
	identityHeader string
	vault          *vault
	tokens         *tokenLedger

	caFile  string
	caPool  *x509.CertPool
	ca      *authority
	signer  *tokenSigner
	store   *store
	stats   *collector
	faults  *injector
	limiter *limiter
	handler http.Handler

	mu       sync.Mutex
	listener net.Listener
	server   *http.Server
	url      string
	serveErr chan error
	closed   bool
}

// New prepares an emulator: it loads or creates the CA, the signing key and
// the default app's secret in DataDir and opens the store, creating the
// tables of every rule. It does not listen yet.
func New(opts Options) (*Emulator, error) {
	if opts.DataDir == "" {
		return nil, errors.New("emulator: data directory is required")
	}
	if opts.ConfigFile != "" {
		if err := checkConfigTarget(opts.ConfigFile, opts.OverwriteConfig); err != nil {
			return nil, err
		}
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.TokenLifetime < MinTokenLifetime {
		return nil, fmt.Errorf("emulator: token lifetime %v is too short (at least %v)", opts.TokenLifetime, MinTokenLifetime)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.WorkspaceID == "" {
		opts.WorkspaceID = DefaultWorkspaceID
	}
	if uuid.Validate(opts.WorkspaceID) != nil {
		return nil, fmt.Errorf("emulator: workspace id %q: want a GUID", opts.WorkspaceID)
	}
	if opts.VisibilityDelay < 0 {
		return nil, fmt.Errorf("emulator: visibility delay %v is negative", opts.VisibilityDelay)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := opts.Limits.validate(); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: create data directory: %w", err)
	}

	e := &Emulator{
		opts:   opts,
		log:    opts.Logger,
		clock:  opts.Clock,
		byRule: map[string]*dcr.Rule{},
		caFile: filepath.Join(opts.DataDir, caFileName),
	}

	e.rules = opts.Rules
	if len(e.rules) == 0 {
		e.rules = []*dcr.Rule{finding.Rule()}
	}
	for i, r := range e.rules {
		if r == nil {
			return nil, fmt.Errorf("emulator: rule %d is nil", i+1)
		}
		if r.ImmutableID == "" {
			return nil, fmt.Errorf("emulator: rule %q has no immutable id", r.Name)
		}
		if refused := refuseRule(r); refused != nil {
			return nil, refused
		}
		key := strings.ToLower(r.ImmutableID)
		if _, dup := e.byRule[key]; dup {
			return nil, fmt.Errorf("emulator: two rules have immutable id %s", r.ImmutableID)
		}
		e.byRule[key] = r
	}

	apps, err := e.loadApps(opts.Apps)
	if err != nil {
		return nil, err
	}
	e.apps = apps
	if e.identities, err = e.loadIdentities(opts.ManagedIdentities); err != nil {
		return nil, err
	}
	if e.identityHeader, err = loadOrCreateIdentityHeader(filepath.Join(opts.DataDir, identityHdrFile)); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if e.vault, err = e.newVault(opts.KeyVault); err != nil {
		return nil, err
	}
	if name := opts.AppSecretInVault; name != "" {
		if _, taken := e.vault.find(name, ""); taken {
			return nil, fmt.Errorf("emulator: key vault secret %s is set twice", name)
		}
		if _, err := e.vault.set(name, e.apps[0].Secret, e.clock()); err != nil {
			return nil, fmt.Errorf("emulator: key vault: %w", err)
		}
	}
	e.tokens = newTokenLedger()

	// Certificates follow the real clock, not Options.Clock: clients verify
	// them against the real time whatever a test pretends.
	if e.ca, err = loadOrCreateAuthority(opts.DataDir, time.Now()); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e.caPool = x509.NewCertPool()
	e.caPool.AddCert(e.ca.cert)

	var key *rsa.PrivateKey
	if key, err = loadOrCreateSigningKey(filepath.Join(opts.DataDir, signKeyFileName)); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if e.signer, err = newTokenSigner(key, time.Now()); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}

	if e.store, err = openStore(filepath.Join(opts.DataDir, dbFileName)); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	for _, r := range e.rules {
		for _, table := range r.Tables() {
			if err := e.store.ensureTable(table, r.TableSchema(table)); err != nil {
				e.store.close()
				return nil, fmt.Errorf("emulator: rule %s: %w", r.ImmutableID, err)
			}
		}
	}
	if err := e.store.ensureTable(LogErrorsTable, logErrorsColumns); err != nil {
		e.store.close()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	changes, err := e.store.loadChanges()
	if err != nil {
		e.store.close()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e.stats = newCollector(e.clock(), changes)
	e.faults = newInjector(opts.Faults)
	e.limiter = newLimiter(opts.Limits)
	e.handler = e.routes()
	return e, nil
}

// loadApps validates the configured apps or builds the default one.
func (e *Emulator) loadApps(apps []App) ([]App, error) {
	if len(apps) == 0 {
		secret, err := loadOrCreateSecret(filepath.Join(e.opts.DataDir, secretFileName))
		if err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		return []App{{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: secret}}, nil
	}
	seen := map[string]bool{}
	out := make([]App, len(apps))
	for i, a := range apps {
		if !validTenant(a.TenantID) {
			return nil, fmt.Errorf("emulator: app %d: tenant id %q: want a GUID or domain name", i+1, a.TenantID)
		}
		if a.ClientID == "" {
			return nil, fmt.Errorf("emulator: app %d: client id is required", i+1)
		}
		if a.Secret == "" {
			return nil, fmt.Errorf("emulator: app %s: secret is required", a.ClientID)
		}
		key := strings.ToLower(a.TenantID + "/" + a.ClientID)
		if seen[key] {
			return nil, fmt.Errorf("emulator: app %s registered twice in tenant %s", a.ClientID, a.TenantID)
		}
		seen[key] = true
		for _, id := range a.AllowedRules {
			if _, ok := e.byRule[strings.ToLower(id)]; !ok {
				return nil, fmt.Errorf("emulator: app %s: allowed rule %s is not one of the emulator's rules", a.ClientID, id)
			}
		}
		out[i] = a
	}
	return out, nil
}

// validTenant mirrors azidentity's check (^[0-9a-zA-Z-.]+$).
func validTenant(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// tenantKnown reports whether any registered app lives in tenant.
func (e *Emulator) tenantKnown(tenant string) bool {
	e.appsMu.RLock()
	defer e.appsMu.RUnlock()
	for _, a := range e.apps {
		if strings.EqualFold(a.TenantID, tenant) {
			return true
		}
	}
	return false
}

// app finds an app by tenant and client id.
func (e *Emulator) app(tenant, clientID string) (App, bool) {
	e.appsMu.RLock()
	defer e.appsMu.RUnlock()
	for _, a := range e.apps {
		if strings.EqualFold(a.TenantID, tenant) && strings.EqualFold(a.ClientID, clientID) {
			return a, true
		}
	}
	return App{}, false
}

// Apps returns the registered apps (secrets included, redacting themselves).
func (e *Emulator) Apps() []App {
	e.appsMu.RLock()
	defer e.appsMu.RUnlock()
	return append([]App(nil), e.apps...)
}

// Rules returns the rules the emulator serves.
func (e *Emulator) Rules() []*dcr.Rule { return append([]*dcr.Rule(nil), e.rules...) }

// Start listens on Options.Addr and serves in the background until Close;
// then it writes Options.ConfigFile, if set.
func (e *Emulator) Start() error {
	if err := e.start(); err != nil {
		return err
	}
	if e.opts.ConfigFile != "" {
		return e.writeConfigFile()
	}
	return nil
}

func (e *Emulator) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("emulator: closed")
	}
	if e.listener != nil {
		return errors.New("emulator: already started")
	}
	host, _, err := net.SplitHostPort(e.opts.Addr)
	if err != nil {
		return fmt.Errorf("emulator: address %q: %w", e.opts.Addr, err)
	}
	cert, err := e.ca.serverCertificate(host, time.Now())
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", e.opts.Addr)
	if err != nil {
		return fmt.Errorf("emulator: listen: %w", err)
	}
	e.listener = ln
	e.url = "https://" + urlHost(host, ln.Addr())
	e.server = &http.Server{
		Handler:           e.handler,
		TLSConfig:         serverTLSConfig(cert),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.serveErr = make(chan error, 1)
	srv := e.server
	go func() { e.serveErr <- srv.ServeTLS(ln, "", "") }()
	e.log.Info("emulator listening", "url", e.url, "ca_file", e.caFile)
	return nil
}

// urlHost names the listener in URLs: the configured host name when there is
// one, else the bound IP, with loopback standing in for "all interfaces".
func urlHost(host string, addr net.Addr) string {
	tcp, _ := addr.(*net.TCPAddr)
	port := "0"
	if tcp != nil {
		port = fmt.Sprint(tcp.Port)
	}
	if host != "" && net.ParseIP(host) == nil {
		return net.JoinHostPort(host, port)
	}
	ip := net.ParseIP(host)
	if tcp != nil {
		ip = tcp.IP
	}
	if ip == nil || ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort(ip.String(), port)
}

// Run starts the emulator (unless Start was called already, by a caller
// that prints its URL first), serves until ctx ends, then shuts down
// gracefully (Close). It returns as soon as serving fails, without waiting
// for ctx. The emulator is closed when Run returns, whatever the reason.
func (e *Emulator) Run(ctx context.Context) error {
	e.mu.Lock()
	started := e.listener != nil
	e.mu.Unlock()
	if !started {
		if err := e.Start(); err != nil {
			_ = e.Close()
			return err
		}
	}
	select {
	case <-ctx.Done():
		return e.Close()
	case err := <-e.serveErr:
		_ = e.Close()
		return fmt.Errorf("emulator: serve: %w", err)
	}
}

// Close stops serving, waiting up to five seconds for requests in flight,
// and closes the store. It is safe to call more than once.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.server
	e.mu.Unlock()

	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down: %w", err))
			_ = srv.Close()
		}
		cancel()
	}
	if err := e.store.close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("emulator: %w", errors.Join(errs...))
	}
	return nil
}

// URL is the base URL of both services, e.g. https://127.0.0.1:8443; empty
// before Start.
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// CAFile is the path of the CA certificate (PEM) clients must trust.
func (e *Emulator) CAFile() string { return e.caFile }

// CAPool is a pool holding the emulator's CA.
func (e *Emulator) CAPool() *x509.CertPool { return e.caPool }

// ConnectorConfig is a ready connector configuration for the first app, the
// first rule and that rule's first stream, pointing both the authority and
// the endpoint at the emulator. Call it after Start.
func (e *Emulator) ConnectorConfig() config.Config {
	a := e.Apps()[0]
	r := e.rules[0]
	return config.Config{
		TenantID:          a.TenantID,
		ApplicationID:     a.ClientID,
		ApplicationSecret: a.Secret,
		DCEEndpoint:       e.URL(),
		DCRImmutableID:    r.ImmutableID,
		StreamName:        firstStream(r),
		AuthorityHost:     e.URL(),
		CAFile:            e.caFile,
		WorkspaceID:       e.opts.WorkspaceID,
		QueryEndpoint:     e.URL(),
	}
}

// SecretRefConfig is ConnectorConfig with the client secret read from the
// emulator's vault, secret name, instead of written in the file: the
// emulator's managed identity reads it (the client needs
// ManagedIdentityEnv in its environment). Call it after Start.
func (e *Emulator) SecretRefConfig(name string) config.Config {
	c := e.ConnectorConfig()
	c.ApplicationSecret = ""
	c.ApplicationSecretRef = e.SecretRef(name)
	c.SecretRefAuth = config.AuthManagedIdentity
	return c
}

// configToWrite is what Options.ConfigFile receives.
func (e *Emulator) configToWrite() config.Config {
	if n := e.opts.AppSecretInVault; n != "" {
		return e.SecretRefConfig(n)
	}
	return e.ConnectorConfig()
}

// WorkspaceID is the workspace id the Logs Query endpoint answers for.
func (e *Emulator) WorkspaceID() string { return e.opts.WorkspaceID }

// firstStream is the first stream of the rule's first flow, else the first
// declared stream by name.
func firstStream(r *dcr.Rule) string {
	for _, f := range r.Flows {
		if len(f.Streams) > 0 {
			return f.Streams[0]
		}
	}
	return sortedStreams(r)[0]
}

func sortedStreams(r *dcr.Rule) []string {
	names := make([]string, 0, len(r.Streams))
	for s := range r.Streams {
		names = append(names, s)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{""}
	}
	return names
}

// Streams returns the streams of a rule, sorted.
func Streams(r *dcr.Rule) []string { return sortedStreams(r) }

// Rows returns up to limit rows of table, newest first (limit ≤ 0 means 100).
func (e *Emulator) Rows(table string, limit int) ([]map[string]any, error) {
	return e.store.rows(table, limit)
}

// RowsPage returns up to limit rows of table from offset on (limit ≤ 0
// means 100), newest first, or oldest first when oldestFirst — the stable
// order for reading a growing table page by page.
func (e *Emulator) RowsPage(table string, offset, limit int, oldestFirst bool) ([]map[string]any, error) {
	return e.store.rowsPage(table, offset, limit, oldestFirst)
}

// Count returns the number of rows stored in table.
func (e *Emulator) Count(table string) (int64, error) { return e.store.count(table) }

// Stats is a snapshot of what the emulator has seen, the same document
// GET /_emulator/stats answers.
func (e *Emulator) Stats() Stats {
	return e.stats.snapshot(e.URL(), e.store.counts())
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/web"
)

// uiSecret is distinctive so that a leak is found by search.
const uiSecret = "Ui7Q~ui-SECRET.value_never_shown~4242"

// uiBuffer is an io.Writer safe for the UI goroutine and the test.
type uiBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *uiBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *uiBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func uiTestApp(t *testing.T) (*App, *uiBuffer, *uiBuffer) {
	t.Helper()
	out, errb := &uiBuffer{}, &uiBuffer{}
	app := &App{
		Stdio:      Stdio{In: strings.NewReader(""), Out: out, Err: errb},
		ConfigPath: filepath.Join(t.TempDir(), "connector_config.json"),
		Getenv:     func(string) string { return "" },
		Logger:     slog.New(slog.DiscardHandler),
	}
	return app, out, errb
}

// uiStart runs the UI in the background and returns its login URL and a
// function that stops it and returns runUI's error.
func uiStart(t *testing.T, app *App, opts uiOptions, deps uiDeps) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	opts.Ready = func(u string) { ready <- u }
	done := make(chan error, 1)
	go func() { done <- runUI(ctx, app, opts, deps) }()
	select {
	case u := <-ready:
		stop := func() error { cancel(); return <-done }
		t.Cleanup(func() { cancel() })
		return u, stop
	case err := <-done:
		cancel()
		t.Fatalf("runUI returned early: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the UI did not start within 10s")
	}
	return "", nil
}

func TestUIServesAndStops(t *testing.T) {
	app, out, _ := uiTestApp(t)
	dir := t.TempDir()
	login, stop := uiStart(t, app, uiOptions{Addr: "127.0.0.1:0", StateDir: filepath.Join(dir, "state"), WorkDir: dir, Banner: "demo banner"},
		uiDeps{Listen: net.Listen})
	u, err := url.Parse(login)
	if err != nil || u.Query().Get("token") == "" || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("login URL %q: want http://127.0.0.1:PORT/?token=...", login)
	}
	if got := out.String(); !strings.Contains(got, login) || !strings.Contains(got, "demo banner") {
		t.Errorf("output does not carry the URL and banner:\n%s", got)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(login)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: status %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+u.Host+"/config", nil)
	req.AddCookie(resp.Cookies()[0])
	page, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.Contains(string(body), app.ConfigPath) {
		t.Errorf("config page: status %d", page.StatusCode)
	}
	if resp, err := http.Get("http://" + u.Host + "/config"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the cookie: %v %v", err, resp)
	}
	if err := stop(); err != nil {
		t.Fatalf("runUI: %v", err)
	}
	if !strings.Contains(out.String(), "ccfpush UI stopped.") {
		t.Error("no stop message")
	}
	if _, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		t.Error("still listening after the context ended")
	}
}

func TestUIAddress(t *testing.T) {
	loopback := func(string, string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	t.Run("non-loopback default is refused", func(t *testing.T) {
		app, _, _ := uiTestApp(t)
		err := runUI(context.Background(), app, uiOptions{Addr: "0.0.0.0:0", WorkDir: t.TempDir()}, uiDeps{Listen: loopback})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitUsage {
			t.Errorf("err %v, want a usage error", err)
		}
	})
	t.Run("explicit non-loopback warns", func(t *testing.T) {
		app, _, errb := uiTestApp(t)
		dir := t.TempDir()
		var asked string
		listen := func(n, a string) (net.Listener, error) { asked = a; return loopback(n, a) }
		_, stop := uiStart(t, app, uiOptions{Addr: "0.0.0.0:8080", AddrSet: true, WorkDir: dir, StateDir: filepath.Join(dir, "s")}, uiDeps{Listen: listen})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if asked != "0.0.0.0:8080" {
			t.Errorf("listened on %q", asked)
		}
		if !strings.Contains(errb.String(), "warning: --addr 0.0.0.0:8080 makes the UI reachable from other machines") {
			t.Errorf("no warning:\n%s", errb.String())
		}
	})
	t.Run("bad address", func(t *testing.T) {
		app, _, _ := uiTestApp(t)
		err := runUI(context.Background(), app, uiOptions{Addr: "8080", WorkDir: t.TempDir()}, uiDeps{Listen: loopback})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitUsage {
			t.Errorf("err %v, want a usage error", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		app, _, _ := uiTestApp(t)
		busy := func(string, string) (net.Listener, error) { return nil, errors.New("address already in use") }
		dir := t.TempDir()
		err := runUI(context.Background(), app, uiOptions{Addr: "127.0.0.1:8080", WorkDir: dir, StateDir: filepath.Join(dir, "s")}, uiDeps{Listen: busy})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitFailure || !strings.Contains(ee.Hint, "--addr") {
			t.Errorf("err %v, want exit 1 with a hint", err)
		}
	})
}

func TestUICommandFlags(t *testing.T) {
	app, _, _ := uiTestApp(t)
	cmd := newUICmd(app)
	for _, name := range []string{"addr", "open", "state-dir"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
	if got := cmd.Flags().Lookup("addr").DefValue; got != "127.0.0.1:0" {
		t.Errorf("--addr default %q", got)
	}
	if got := cmd.Flags().Lookup("state-dir").DefValue; got != web.DefaultStateDir {
		t.Errorf("--state-dir default %q", got)
	}
}

// uiEmulator starts an emulator whose app has uiSecret.
func uiEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(emulator.Options{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Apps:    []emulator.App{{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: config.Secret(uiSecret)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

// TestUIDoctorChecker runs "Test connection" for real: a token from the
// emulator through the Azure SDK credential and an empty upload, then a
// probe record.
func TestUIDoctorChecker(t *testing.T) {
	for _, k := range append(append([]string{}, config.Keys...), "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET") {
		t.Setenv(k, "")
		t.Setenv(config.EnvVar(k), "")
	}
	emu := uiEmulator(t)
	app, _, _ := uiTestApp(t)
	checker := defaultUIDeps(app).Checker
	cfg := emu.ConnectorConfig()

	t.Run("from the file, with a probe", func(t *testing.T) {
		if err := config.Save(app.ConfigPath, &cfg); err != nil {
			t.Fatal(err)
		}
		var reported []string
		res := checker.Check(context.Background(), web.CheckRequest{ConfigPath: app.ConfigPath, Config: &cfg, Probe: true},
			func(r web.CheckResult) { reported = append(reported, r.Name) })
		got := map[string]web.CheckResult{}
		for _, r := range res {
			got[r.Name] = r
		}
		for _, name := range []string{"config", "network", "token", "clock", "ingestion", "workspace", "probe"} {
			if got[name].Status != web.StatusOK {
				t.Errorf("%s: %s — %s (%s)", name, got[name].Status, got[name].Detail, got[name].Hint)
			}
		}
		if strings.Join(reported, ",") != "config,network,token,clock,ingestion,workspace,probe" {
			t.Errorf("reported %v as they ran", reported)
		}
		if !strings.Contains(got["ingestion"].Detail, "probe record") {
			t.Errorf("ingestion detail %q", got["ingestion"].Detail)
		}
	})

	t.Run("prefill without a file", func(t *testing.T) {
		res := checker.Check(context.Background(), web.CheckRequest{ConfigPath: filepath.Join(t.TempDir(), "none.json"), Config: &cfg, FromPrefill: true}, nil)
		for _, r := range res {
			if r.Name == "config" {
				t.Error("the config check ran on a missing file")
			}
			if r.Status != web.StatusOK {
				t.Errorf("%s: %s — %s", r.Name, r.Status, r.Detail)
			}
		}
	})

	t.Run("wrong secret through the web handler", func(t *testing.T) {
		bad := cfg
		bad.ApplicationSecret = "wrong-secret-value-123"
		path := filepath.Join(t.TempDir(), "bad.json")
		if err := config.Save(path, &bad); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		srv, err := web.New(web.Options{ConfigPath: path, WorkDir: dir, Checker: checker, Token: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		srv.Start(ln)
		defer srv.Shutdown(context.Background())
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(srv.URL() + "/?token=tok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookie := resp.Cookies()[0]
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/check", nil)
		req.AddCookie(cookie)
		page, _ := client.Do(req)
		b, _ := io.ReadAll(page.Body)
		page.Body.Close()
		csrf := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindSubmatch(b)[1]
		req, _ = http.NewRequest(http.MethodPost, srv.URL()+"/check", strings.NewReader(url.Values{"csrf_token": {string(csrf)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		page, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(page.Body)
		page.Body.Close()
		body := string(b)
		if page.StatusCode != http.StatusOK || !strings.Contains(body, "badge-fail") || !strings.Contains(body, "7000215") {
			t.Errorf("status %d; want the token check failing with AADSTS7000215:\n%.2000s", page.StatusCode, body)
		}
		if strings.Contains(body, "wrong-secret-value-123") || strings.Contains(body, uiSecret) {
			t.Error("a secret reached the page")
		}
	})
}

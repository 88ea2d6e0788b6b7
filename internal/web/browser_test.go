package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// The browser tests drive Debian's chromium through the UI as a person
// would, against the real emulator over TLS with the real Azure SDK
// uploader. Set CCFPUSH_SCREENSHOT_DIR to keep the screenshots after the
// run (they are written under each test's temporary directory too).

const chromiumPath = "/usr/bin/chromium"

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (apt-get install -y chromium); browser tests skipped outside CI", chromiumPath)
		}
		t.Fatalf("%s is required in CI: %v", chromiumPath, err)
	}
}

// startBrowser starts one headless chromium for a whole test. The first
// Do runs on a context without a deadline, so the browser lives until the
// test ends; steps derive their own timeouts.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab opens a tab in a fresh browser context (its own cookies), sized
// 1280×800.
func tab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// step runs actions with a deadline.
func step(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		screenshot(t, ctx, "failed-"+what)
		t.Fatalf("%s: %v", what, err)
	}
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		screenshot(t, ctx, "failed-"+what)
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	step(t, ctx, d+time.Second, what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond)))
}

// screenshot saves the viewport under the test's temporary directory (and
// CCFPUSH_SCREENSHOT_DIR when set) and logs the path.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Sticky header and navigation would be drawn at the scroll position.
	_ = chromedp.Do(sctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + name + ".png"
	p := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if dir := os.Getenv("CCFPUSH_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, file), png, 0o644)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// The test's temporary directory goes away with it: keep the
		// screenshots of a failed test where they can be looked at.
		keep := filepath.Join(os.TempDir(), "ccfpush-ui-screenshots")
		if err := os.MkdirAll(keep, 0o755); err == nil && os.WriteFile(filepath.Join(keep, file), png, 0o644) == nil {
			p = filepath.Join(keep, file)
		}
		t.Logf("screenshot: %s", p)
	})
}

// uiServer is a UI on a free loopback port in a fresh working directory.
type uiServer struct {
	srv     *Server
	dir     string
	cfgPath string
}

func newUIServer(t *testing.T, runner Runner) *uiServer {
	t.Helper()
	return newUIServerWith(t, func(o *Options) { o.Runner = runner })
}

// newUIServerWith is newUIServer with the options mod sets.
func newUIServerWith(t *testing.T, mod func(*Options)) *uiServer {
	t.Helper()
	dir := t.TempDir()
	u := &uiServer{dir: dir, cfgPath: filepath.Join(dir, "connector_config.json")}
	opts := Options{ConfigPath: u.cfgPath, WorkDir: dir, Checker: &fakeChecker{}}
	mod(&opts)
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	u.srv = srv
	return u
}

// startEmulator runs the real emulator in-process.
func startEmulator(t *testing.T, faults emulator.Faults) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

// azureRunner is the production pipeline with the Azure SDK uploader.
func azureRunner() *PipelineRunner {
	return &PipelineRunner{NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
		return azure.NewUploader(cfg, azure.UploaderOptions{})
	}}
}

func totalRows(emu *emulator.Emulator) int64 {
	var n int64
	for _, c := range emu.Stats().Tables {
		n += c
	}
	return n
}

// logIDs returns the event ids shown in the activity log, in order.
func logIDs(t *testing.T, ctx context.Context) []int {
	t.Helper()
	return value(t, ctx, "read the log", chromedp.Evaluate[[]int](
		`Array.from(document.querySelectorAll('#log li[data-id]')).map(li => Number(li.dataset.id))`))
}

func checkContiguous(t *testing.T, ids []int) {
	t.Helper()
	if len(ids) == 0 {
		t.Fatal("the log is empty")
	}
	for i := range ids {
		if ids[i] != ids[0]+i {
			t.Fatalf("log ids not contiguous at position %d: ...%v...", i, ids[max(0, i-3):min(len(ids), i+3)])
		}
	}
}

func TestBrowser(t *testing.T) {
	browser := startBrowser(t)

	t.Run("refused without the token", func(t *testing.T) {
		u := newUIServer(t, nil)
		ctx := tab(t, browser)
		for _, p := range []string{"/", "/config", "/send", "/events", "/static/app.js"} {
			resp := value(t, ctx, "open "+p, chromedp.NavigateResponse(u.srv.URL()+p))
			if resp.Status != 401 {
				t.Errorf("%s: status %d, want 401", p, resp.Status)
			}
		}
		body := value(t, ctx, "read the page", chromedp.Evaluate[string](`document.body.innerText`))
		if !strings.Contains(body, "Sign-in required") {
			t.Errorf("401 page says %q", body)
		}
		screenshot(t, ctx, "401")

		// The link signs in once; a second browser with the same link is
		// refused.
		login := u.srv.LoginURL()
		first := tab(t, browser)
		step(t, first, 15*time.Second, "sign in", chromedp.Navigate(login), chromedp.WaitVisible(chromedp.ID("config-form")))
		if loc := value(t, first, "location", chromedp.Location()); strings.Contains(loc, "token") {
			t.Errorf("the token stayed in the address bar: %s", loc)
		}
		second := tab(t, browser)
		if resp := value(t, second, "reuse the link", chromedp.NavigateResponse(login)); resp.Status != 401 {
			t.Errorf("reused link: status %d, want 401", resp.Status)
		}
	})

	t.Run("a form works without JavaScript", func(t *testing.T) {
		// The pages are usable without scripts: a plain form POST must pass
		// the Origin guard (the referrer policy decides what Origin the
		// browser sends).
		u := newUIServer(t, nil)
		ctx := tab(t, browser)
		noScripts := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return chromedp.Void{}, err
		}
		want := validConfig()
		actions := []chromedp.Action[chromedp.Void]{noScripts, chromedp.Navigate(u.srv.LoginURL()), chromedp.WaitVisible(chromedp.ID("config-form"))}
		for _, k := range []string{"tenant_id", "application_id", "application_secret", "dce_endpoint", "dcr_immutable_id", "stream_name"} {
			v, _ := want.Get(k)
			actions = append(actions, chromedp.SendKeys(chromedp.ID("f-"+k), v))
		}
		actions = append(actions, chromedp.Click(chromedp.ID("save")))
		step(t, ctx, 20*time.Second, "fill and save without scripts", actions...)
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := config.Load(u.cfgPath)
			if err == nil && got.DCEEndpoint == want.DCEEndpoint && got.ApplicationSecret.Reveal() == testSecret {
				break
			}
			if time.Now().After(deadline) {
				screenshot(t, ctx, "nojs-save")
				body := value(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`))
				t.Fatalf("the configuration was not saved by a plain form POST (%v); the page says:\n%.1500s", err, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("configure and save", func(t *testing.T) {
		u := newUIServer(t, nil)
		ctx := tab(t, browser)
		step(t, ctx, 15*time.Second, "open", chromedp.Navigate(u.srv.LoginURL()), chromedp.WaitVisible(chromedp.ID("config-form")))
		want := validConfig()
		want.Cloud = config.CloudUSGovernment
		want.DCEEndpoint = "https://my-dce-abcd.usgovvirginia-1.ingest.monitor.azure.us"
		actions := []chromedp.Action[chromedp.Void]{}
		for _, k := range []string{"tenant_id", "application_id", "application_secret", "dce_endpoint", "dcr_immutable_id", "stream_name"} {
			v, _ := want.Get(k)
			actions = append(actions, chromedp.SendKeys(chromedp.ID("f-"+k), v))
		}
		actions = append(actions, chromedp.SetValue(chromedp.ID("f-cloud"), config.CloudUSGovernment))
		step(t, ctx, 20*time.Second, "fill the form", actions...)
		screenshot(t, ctx, "filled")
		if badge := value(t, ctx, "badge", chromedp.Text(chromedp.ID("target"))); badge != "not configured" {
			t.Errorf("header badge before saving %q", badge)
		}
		step(t, ctx, 10*time.Second, "save", chromedp.Click(chromedp.ID("save")))
		waitJS(t, ctx, 10*time.Second, "saved message", `document.querySelector('#form-status .notice-ok') !== null`)
		screenshot(t, ctx, "saved")
		// The header says where records go now, without a reload.
		if badge := value(t, ctx, "badge", chromedp.Text(chromedp.ID("target"))); badge != "Azure · my-dce-abcd.usgovvirginia-1.ingest.monitor.azure.us" {
			t.Errorf("header badge after saving %q", badge)
		}

		fi, err := os.Stat(u.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
		got, err := config.Load(u.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("file holds %v, want %v", got.Redacted(), want.Redacted())
		}
		if got.ApplicationSecret.Reveal() != testSecret {
			t.Error("the secret typed in the browser was not saved")
		}
		// After a reload the secret field is empty and says one is saved.
		step(t, ctx, 15*time.Second, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("config-form")))
		if v := value(t, ctx, "secret field", chromedp.Value(chromedp.ID("f-application_secret"))); v != "" {
			t.Error("the secret field was filled after a reload")
		}
		note := value(t, ctx, "secret note", chromedp.Text(chromedp.ID("secret-note")))
		if !strings.Contains(note, "leave the field empty to keep it") {
			t.Errorf("secret note %q", note)
		}
		html := value(t, ctx, "page html", chromedp.OuterHTML(chromedp.CSS("html")))
		if strings.Contains(html, testSecret) {
			t.Fatal("the secret reached the browser")
		}
		// Test connection shows each result with its fix.
		step(t, ctx, 15*time.Second, "test connection",
			chromedp.Navigate(u.srv.URL()+"/check"),
			chromedp.WaitVisible(chromedp.ID("check-form")),
			chromedp.Click(chromedp.ID("f-probe")),
			chromedp.Click(chromedp.ID("run-checks")))
		waitJS(t, ctx, 10*time.Second, "check results", `document.querySelectorAll('#check-results li').length === 2`)
		if hint := value(t, ctx, "hint", chromedp.Text(chromedp.CSS("#check-results .status-fail .hint"))); !strings.Contains(hint, "use the secret's Value") {
			t.Errorf("fix hint %q", hint)
		}
		screenshot(t, ctx, "check")
		// Narrow window: one column, navigation on top.
		step(t, ctx, 10*time.Second, "narrow", chromedp.EmulateViewport(420, 860))
		screenshot(t, ctx, "narrow")
	})

	t.Run("invalid endpoint shows inline error and saves nothing", func(t *testing.T) {
		u := newUIServer(t, nil)
		ctx := tab(t, browser)
		step(t, ctx, 15*time.Second, "open", chromedp.Navigate(u.srv.LoginURL()), chromedp.WaitVisible(chromedp.ID("config-form")))
		c := validConfig()
		step(t, ctx, 20*time.Second, "fill",
			chromedp.SendKeys(chromedp.ID("f-tenant_id"), c.TenantID),
			chromedp.SendKeys(chromedp.ID("f-dce_endpoint"), "http://my-dce-abcd.eastus-1.ingest.monitor.azure.com"),
			chromedp.Focus(chromedp.ID("f-dcr_immutable_id")), // leaving the field validates it
		)
		waitJS(t, ctx, 10*time.Second, "inline error", `!document.getElementById('err-dce_endpoint').hidden`)
		msg := value(t, ctx, "error text", chromedp.Text(chromedp.ID("err-dce_endpoint")))
		if !strings.Contains(msg, "must be https") {
			t.Errorf("inline error %q", msg)
		}
		if inv := value(t, ctx, "aria-invalid", chromedp.Evaluate[string](`document.getElementById('f-dce_endpoint').getAttribute('aria-invalid')`)); inv != "true" {
			t.Errorf("aria-invalid %q", inv)
		}
		// The tenant was fine: no error there.
		if hidden := value(t, ctx, "tenant error", chromedp.Evaluate[bool](`document.getElementById('err-tenant_id').hidden`)); !hidden {
			t.Error("an error shows for a valid tenant id")
		}
		// Leaving the empty DCR field does not flag it: an error appearing
		// there would move the Save button from under the pointer. The blur
		// handler decides that at once, without asking the server.
		saveY := `document.getElementById('save').getBoundingClientRect().top + window.scrollY`
		before := value(t, ctx, "save position", chromedp.Evaluate[float64](saveY))
		// Record the fields the page asks the server to check (the blur
		// handler asks at once, when it asks).
		step(t, ctx, 5*time.Second, "watch validation", chromedp.Evaluate[chromedp.Void](`window.__checked = [];
			const f = window.fetch;
			window.fetch = (u, o) => { if (u === '/config/validate') { window.__checked.push(new URLSearchParams(o.body).get('field')); } return f(u, o); };`))
		step(t, ctx, 10*time.Second, "leave the DCR field", chromedp.Focus(chromedp.ID("save")))
		if checked := value(t, ctx, "checked fields", chromedp.Evaluate[[]string](`window.__checked`)); len(checked) != 0 {
			t.Errorf("leaving the empty DCR field asked the server to check %v", checked)
		}
		if hidden := value(t, ctx, "DCR error", chromedp.Evaluate[bool](`document.getElementById('err-dcr_immutable_id').hidden`)); !hidden {
			t.Error("leaving an empty field flagged it")
		}
		if after := value(t, ctx, "save position", chromedp.Evaluate[float64](saveY)); after != before {
			t.Errorf("the Save button moved from %v to %v when the field was left", before, after)
		}
		step(t, ctx, 10*time.Second, "save", chromedp.Click(chromedp.ID("save")))
		waitJS(t, ctx, 10*time.Second, "refused", `document.querySelector('#form-status .notice-error') !== null`)
		// Saving flags every empty required field.
		for _, f := range []string{"dcr_immutable_id", "stream_name", "application_id"} {
			if hidden := value(t, ctx, f+" error", chromedp.Evaluate[bool](`document.getElementById('err-`+f+`').hidden`)); hidden {
				t.Errorf("saving did not flag the empty %s", f)
			}
		}
		screenshot(t, ctx, "invalid")
		if _, err := os.Stat(u.cfgPath); !os.IsNotExist(err) {
			t.Errorf("a configuration file was written: %v", err)
		}
		// Fixing the value clears the error as it is typed.
		step(t, ctx, 10*time.Second, "fix",
			chromedp.Evaluate[chromedp.Void](`document.getElementById('f-dce_endpoint').value = ''`),
			chromedp.SendKeys(chromedp.ID("f-dce_endpoint"), c.DCEEndpoint))
		waitJS(t, ctx, 10*time.Second, "error cleared", `document.getElementById('err-dce_endpoint').hidden`)
	})

	t.Run("generate, send to the emulator, watch it finish", func(t *testing.T) {
		emu := startEmulator(t, emulator.Faults{})
		u := newUIServer(t, azureRunner())
		cfg := emu.ConnectorConfig()
		if err := config.Save(u.cfgPath, &cfg); err != nil {
			t.Fatal(err)
		}
		ctx := tab(t, browser)
		step(t, ctx, 15*time.Second, "open", chromedp.Navigate(u.srv.LoginURL()), chromedp.WaitVisible(chromedp.ID("config-form")))
		step(t, ctx, 15*time.Second, "generate",
			chromedp.Navigate(u.srv.URL()+"/generate"),
			chromedp.WaitVisible(chromedp.ID("generate-form")),
			chromedp.SetValue(chromedp.ID("f-count"), "240"),
			chromedp.SetValue(chromedp.ID("f-seed"), "7"),
			chromedp.Click(chromedp.ID("generate")))
		waitJS(t, ctx, 15*time.Second, "generated", `!document.getElementById('generate-result').hidden`)
		if n := value(t, ctx, "preview", chromedp.Evaluate[int](`document.getElementById('generate-preview').textContent.split('\n').filter(l => l === '{').length`)); n != previewRecords {
			t.Errorf("%d preview records, want %d", n, previewRecords)
		}
		screenshot(t, ctx, "generated")

		before := totalRows(emu)
		step(t, ctx, 15*time.Second, "open send",
			chromedp.Click(chromedp.ID("send-generated")),
			chromedp.WaitVisible(chromedp.ID("send-form")))
		if f := value(t, ctx, "file", chromedp.Value(chromedp.ID("f-file"))); f != DefaultDataFile {
			t.Errorf("file preselected %q, want %q", f, DefaultDataFile)
		}
		step(t, ctx, 10*time.Second, "start",
			chromedp.SetValue(chromedp.ID("f-batch_size"), "40"),
			chromedp.SetValue(chromedp.ID("f-concurrency"), "2"),
			chromedp.Click(chromedp.ID("start-send")))
		waitJS(t, ctx, 30*time.Second, "done in the log", `document.querySelector('#log li.kind-done') !== null`)
		waitJS(t, ctx, 5*time.Second, "summary", `!document.getElementById('summary').hidden`)
		screenshot(t, ctx, "sent")

		sent := value(t, ctx, "sent", chromedp.Text(chromedp.ID("m-sent")))
		failed := value(t, ctx, "failed", chromedp.Text(chromedp.ID("m-failed")))
		status := value(t, ctx, "status", chromedp.TextContent(chromedp.ID("run-status")))
		progress := value(t, ctx, "progress", chromedp.Evaluate[[]float64](`[document.getElementById('progress').value, document.getElementById('progress').max]`))
		if sent != "240" || failed != "0" || status != "ok" || progress[0] != 240 || progress[1] != 240 {
			t.Errorf("live view: sent %s, failed %s, status %s, progress %v; want 240, 0, ok, [240 240]", sent, failed, status, progress)
		}
		done := value(t, ctx, "done line", chromedp.Text(chromedp.CSS("#log li.kind-done .text")))
		if !strings.HasPrefix(done, "done: 240 of 240 records sent, 0 failed") {
			t.Errorf("done line %q", done)
		}
		if n := value(t, ctx, "batches", chromedp.Evaluate[int](`document.querySelectorAll('#log li.kind-batch_sent').length`)); n != 6 {
			t.Errorf("%d batch lines, want 6 (240 records / 40)", n)
		}
		checkContiguous(t, logIDs(t, ctx))
		if got := totalRows(emu) - before; got != 240 {
			t.Errorf("the emulator stored %d rows, want 240", got)
		}

		// The emulator view shows the rows; the history keeps the run.
		step(t, ctx, 15*time.Second, "emulator view", chromedp.Navigate(u.srv.URL()+"/emulator"), chromedp.WaitVisible(chromedp.ID("emu-rows")))
		stored := value(t, ctx, "rows stored", chromedp.Text(chromedp.ID("e-rows")))
		if stored != "240" {
			t.Errorf("emulator page says %s rows stored, want 240", stored)
		}
		screenshot(t, ctx, "emulator")
		step(t, ctx, 15*time.Second, "history", chromedp.Navigate(u.srv.URL()+"/history"), chromedp.WaitVisible(chromedp.ID("history-table")))
		screenshot(t, ctx, "history")
	})

	t.Run("reload mid-send resumes the log without gaps", func(t *testing.T) {
		emu := startEmulator(t, emulator.Faults{Latency: 150 * time.Millisecond})
		u := newUIServer(t, azureRunner())
		cfg := emu.ConnectorConfig()
		if err := config.Save(u.cfgPath, &cfg); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(u.dir, "slow.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		bw := bufio.NewWriter(f)
		opts := generate.DefaultOptions()
		opts.N, opts.Seed, opts.Format = 300, 11, "ndjson"
		if _, err := generate.Write(bw, opts); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		f.Close()

		ctx := tab(t, browser)
		before := totalRows(emu)
		step(t, ctx, 15*time.Second, "open send",
			chromedp.Navigate(u.srv.LoginURL()),
			chromedp.WaitVisible(chromedp.ID("config-form")),
			chromedp.Navigate(u.srv.URL()+"/send?file=slow.ndjson"),
			chromedp.WaitVisible(chromedp.ID("send-form")),
			chromedp.SetValue(chromedp.ID("f-batch_size"), "15"),
			chromedp.SetValue(chromedp.ID("f-concurrency"), "1"),
			chromedp.Click(chromedp.ID("start-send")))
		// 20 requests of 150 ms or more, one at a time: reload after a few.
		waitJS(t, ctx, 15*time.Second, "first batches", `document.querySelectorAll('#log li.kind-batch_sent').length >= 4`)
		screenshot(t, ctx, "before-reload")
		if st := value(t, ctx, "status while sending", chromedp.TextContent(chromedp.ID("run-status"))); st != RunRunning {
			t.Errorf("status while sending %q, want %q", st, RunRunning)
		}
		step(t, ctx, 15*time.Second, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("live")))
		if rn := u.srv.currentRun().snapshot(); rn.Done() {
			t.Fatalf("the send ended before the reload (%s); the test proves nothing", rn.Status)
		}
		waitJS(t, ctx, 30*time.Second, "done after reload", `document.querySelector('#log li.kind-done') !== null`)
		screenshot(t, ctx, "after-reload")

		ids := logIDs(t, ctx)
		checkContiguous(t, ids)
		if last := u.srv.Bus().LastID(); ids[0] != 1 || ids[len(ids)-1] != int(last) {
			t.Errorf("log shows ids %d..%d, want 1..%d", ids[0], ids[len(ids)-1], last)
		}
		if n := value(t, ctx, "batches", chromedp.Evaluate[int](`document.querySelectorAll('#log li.kind-batch_sent').length`)); n != 20 {
			t.Errorf("%d batch lines after the reload, want 20", n)
		}
		sent := value(t, ctx, "sent", chromedp.Text(chromedp.ID("m-sent")))
		if sent != "300" {
			t.Errorf("sent %s, want 300", sent)
		}
		if got := totalRows(emu) - before; got != 300 {
			t.Errorf("the emulator stored %d rows, want 300", got)
		}
	})
}

// TestBrowserVerifyAndLogs: after a send, Verify shows what landed and why
// the rest did not; the Logs page draws a summarize … by bin() query as a
// chart. The emulator's rule drops Low findings, as a rule written to keep
// noise out does; the queries go through the Azure SDK's Logs query client.
func TestBrowserVerifyAndLogs(t *testing.T) {
	browser := startBrowser(t)
	rule := dcr.Default()
	rule.Flows[0].TransformKQL = `source | where Severity != "Low"`
	if err := rule.Validate(); err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Rules: []*dcr.Rule{rule}})
	if err == nil {
		err = emu.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	u := newUIServerWith(t, func(o *Options) {
		o.Runner = azureRunner()
		o.NewQuerier = func(cfg *config.Config) (verify.Querier, error) { return azure.NewQuerier(cfg, azure.QuerierOptions{}) }
		o.Rule = emulator.RuleFor
	})
	cfg := emu.ConnectorConfig()
	if err := config.Save(u.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	// Findings of the last two hours: a chart of 5-minute bins has points.
	var buf bytes.Buffer
	if _, err := generate.Write(&buf, generate.Options{N: 200, Seed: 21, RecentRatio: 1, RecentWindow: 2 * time.Hour, Format: record.FormatNDJSON}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(u.dir, "findings.ndjson"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	low := strings.Count(buf.String(), `"Severity":"Low"`)
	if low == 0 {
		t.Fatal("no Low finding generated: the test proves nothing")
	}

	ctx := tab(t, browser)
	step(t, ctx, 15*time.Second, "send",
		chromedp.Navigate(u.srv.LoginURL()),
		chromedp.WaitVisible(chromedp.ID("config-form")),
		chromedp.Navigate(u.srv.URL()+"/send?file=findings.ndjson"),
		chromedp.WaitVisible(chromedp.ID("send-form")),
		chromedp.Click(chromedp.ID("start-send")))
	waitJS(t, ctx, 30*time.Second, "sent", `document.querySelector('#log li.kind-done') !== null`)
	waitJS(t, ctx, 5*time.Second, "Verify offered", `!document.getElementById('verify').hidden`)
	step(t, ctx, 10*time.Second, "verify", chromedp.Click(chromedp.ID("verify-run")))
	waitJS(t, ctx, 60*time.Second, "verified", `document.getElementById('verify').dataset.status === 'done'`)
	screenshot(t, ctx, "verified")
	landed := value(t, ctx, "landed", chromedp.Text(chromedp.ID("v-landed")))
	missing := value(t, ctx, "missing", chromedp.Text(chromedp.ID("v-missing")))
	dup := value(t, ctx, "duplicated", chromedp.Text(chromedp.ID("v-duplicated")))
	if landed != strconv.Itoa(200-low) || missing != strconv.Itoa(low) || dup != "0" {
		t.Errorf("verify shows landed %s, missing %s, duplicated %s; want %d, %d, 0", landed, missing, dup, 200-low, low)
	}
	reasons := value(t, ctx, "reasons", chromedp.Text(chromedp.ID("verify-reasons")))
	if !strings.Contains(reasons, "where clause") || !strings.HasPrefix(strings.TrimSpace(reasons), strconv.Itoa(low)+" ") {
		t.Errorf("reasons %q", reasons)
	}
	if href := value(t, ctx, "resend link", chromedp.Evaluate[string](`document.getElementById('verify-resend').getAttribute('href')`)); href != "/send?file=findings.ndjson.missing.ndjson" {
		t.Errorf("resend link %q", href)
	}
	if data, err := os.ReadFile(filepath.Join(u.dir, "findings.ndjson.missing.ndjson")); err != nil || strings.Count(string(data), "\n") != low {
		t.Errorf("missing file: %d lines (%v), want %d", strings.Count(string(data), "\n"), err, low)
	}
	// A reload shows the same result, rendered by the server.
	step(t, ctx, 15*time.Second, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("verify")))
	if again := value(t, ctx, "landed after reload", chromedp.Text(chromedp.ID("v-landed"))); again != landed {
		t.Errorf("after a reload: landed %q, want %q", again, landed)
	}

	// The Logs page: the table's name is filled in; a summarize by bin()
	// is drawn.
	step(t, ctx, 15*time.Second, "logs", chromedp.Navigate(u.srv.URL()+"/logs"), chromedp.WaitVisible(chromedp.ID("logs-form")))
	if q := value(t, ctx, "query box", chromedp.Value(chromedp.ID("f-query"))); !strings.HasPrefix(q, dcr.DefaultTable) {
		t.Errorf("query box %q, want the table's name", q)
	}
	// Run submits the form: the page navigates to the result (waiting
	// for an element survives the navigation, a script does not).
	step(t, ctx, 20*time.Second, "run a summarize",
		chromedp.SetValue(chromedp.ID("f-query"), dcr.DefaultTable+" | summarize count() by bin(TimeGenerated, 5m)"),
		chromedp.Click(chromedp.ID("run-query")),
		chromedp.WaitVisible(chromedp.CSS("#logs-chart svg polyline")))
	screenshot(t, ctx, "logs-chart")
	dots := value(t, ctx, "chart points", chromedp.Evaluate[int](`document.querySelectorAll('#logs-chart circle').length`))
	rows := value(t, ctx, "result rows", chromedp.Evaluate[int](`document.querySelectorAll('#logs-table tbody tr').length`))
	total := value(t, ctx, "counted", chromedp.Evaluate[int](`Array.from(document.querySelectorAll('#logs-table tbody tr td:last-child')).reduce((n, td) => n + Number(td.textContent), 0)`))
	if dots != rows || rows < 10 || total != 200-low {
		t.Errorf("chart has %d points for %d result rows counting %d rows; want one point a row, ≥ 10 bins, %d rows", dots, rows, total, 200-low)
	}
	// A query error is shown with the service's message.
	step(t, ctx, 20*time.Second, "a bad query",
		chromedp.SetValue(chromedp.ID("f-query"), "Nope_CL | take 1"),
		chromedp.Click(chromedp.ID("run-query")),
		chromedp.WaitVisible(chromedp.ID("logs-error")))
	if msg := value(t, ctx, "error", chromedp.Text(chromedp.ID("logs-error"))); !strings.Contains(msg, "Nope_CL") {
		t.Errorf("error %q", msg)
	}
}

// Keep fmt imported for debugging helpers above.
var _ = fmt.Sprint

package cli

// End-to-end tests of destinations: the real Azure SDK client against the
// emulator over TLS, records routed by a field to two streams of one DCR,
// and a second tenant whose application has no role on the DCR (403)
// while the default destination keeps delivering — for send and serve.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/emulator/emulatortest"
	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/source"
)

// vendorRule is one DCR with two streams, findings and assets, each to
// its own table: a vendor's CCF Push connector.
const vendorRule = `{"name":"vendor","properties":{
 "streamDeclarations":{
  "Custom-Findings":{"columns":[{"name":"kind","type":"string"},{"name":"FindingId","type":"string"},{"name":"Severity","type":"string"}]},
  "Custom-Assets":{"columns":[{"name":"kind","type":"string"},{"name":"AssetId","type":"string"},{"name":"Hostname","type":"string"}]}},
 "dataFlows":[
  {"streams":["Custom-Findings"],"transformKql":"source | extend TimeGenerated = now()","outputStream":"Custom-Findings_CL"},
  {"streams":["Custom-Assets"],"transformKql":"source | extend TimeGenerated = now()","outputStream":"Custom-Assets_CL"}]}}`

// vendorRecords writes findings and assets interleaved (every third
// record an asset) as NDJSON and returns the path and the ids of each.
func vendorRecords(t *testing.T, dir string, n int) (path string, findings, assets map[string]bool) {
	t.Helper()
	findings, assets = map[string]bool{}, map[string]bool{}
	var b bytes.Buffer
	for i := range n {
		if i%3 == 2 {
			id := fmt.Sprintf("asset-%d", i)
			assets[id] = true
			fmt.Fprintf(&b, `{"kind":"asset","AssetId":%q,"Hostname":"host-%d"}`+"\n", id, i)
		} else {
			id := fmt.Sprintf("finding-%d", i)
			findings[id] = true
			fmt.Fprintf(&b, `{"kind":"finding","FindingId":%q,"Severity":"High"}`+"\n", id)
		}
	}
	path = filepath.Join(dir, "vendor.ndjson")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, findings, assets
}

// tableIDs returns how many rows table holds and the values of column
// in them.
func tableIDs(t *testing.T, emu *emulator.Emulator, table, column string) (int64, map[string]int) {
	t.Helper()
	n, err := emu.Count(table)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	if n == 0 {
		return 0, ids
	}
	rows, err := emu.Rows(table, int(n))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		id, _ := r[column].(string)
		ids[id]++
	}
	return n, ids
}

// exactly checks that a table holds each id of want once, and nothing else.
func exactly(t *testing.T, table string, rows int64, got map[string]int, want map[string]bool) {
	t.Helper()
	if rows != int64(len(want)) || len(got) != len(want) {
		t.Errorf("%s holds %d rows, %d distinct ids; want %d records", table, rows, len(got), len(want))
	}
	for id := range got {
		if !want[id] {
			t.Errorf("%s holds %q, which is not one of its records", table, id)
			break
		}
	}
}

// TestE2EDestinationsTwoStreams: one DCR with two streams; records are
// routed by their "kind" field, and each table holds exactly its records.
func TestE2EDestinationsTwoStreams(t *testing.T) {
	rule, err := dcr.Parse([]byte(vendorRule))
	if err != nil {
		t.Fatal(err)
	}
	env := e2eStart(t, func(o *emulator.Options) { o.Rules = []*dcr.Rule{rule} })
	cfg := env.cfg
	if cfg.StreamName != "Custom-Findings" {
		t.Fatalf("emulator's stream %q", cfg.StreamName)
	}
	cfg.Destinations = []config.Destination{{Name: "assets", RouteField: "kind", RouteValue: "asset",
		Values: config.Config{StreamName: "Custom-Assets"}}}
	env.save(t, cfg)
	data, findings, assets := vendorRecords(t, env.dir, 300)

	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--output", "json", "--batch-size", "40")
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	st, _ := decodeStats(t, r.stdout)
	if st.RecordsRead != 300 || st.RecordsSent != 300 {
		t.Errorf("read %d sent %d, want 300", st.RecordsRead, st.RecordsSent)
	}
	if d := st.Destinations["assets"]; d.RecordsSent != int64(len(assets)) || d.RecordsRead != int64(len(assets)) {
		t.Errorf("assets destination: %+v, want %d sent", d, len(assets))
	}
	if d := st.Destinations["default"]; d.RecordsSent != int64(len(findings)) {
		t.Errorf("default destination: %+v, want %d sent", d, len(findings))
	}
	n, ids := tableIDs(t, env.emu, "Findings_CL", "FindingId")
	exactly(t, "Findings_CL", n, ids, findings)
	n, ids = tableIDs(t, env.emu, "Assets_CL", "AssetId")
	exactly(t, "Assets_CL", n, ids, assets)

	// --destination sends every record to one: the assets stream takes
	// the findings' rows without their columns (the DCR drops them).
	r = runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--destination", "nope")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `no destination "nope"`) || !strings.Contains(r.stderr, "default, assets") {
		t.Errorf("--destination nope: exit %d, stderr %s", r.code, r.stderr)
	}
}

// Two tenants: the default destination's application may ingest into the
// DCR; the customer's ("contoso", another tenant) has no role on it, so
// every request of that destination is answered 403.
const (
	contosoTenant   = "contoso.onmicrosoft.com"
	contosoClientID = "c0c0c0c0-1111-2222-3333-444444444444"
	contosoSecret   = "Cc88Q~contoso-app-secret.never_shown~XyZw"
	vendorSecret    = "Vv77Q~vendor-app-secret.never_shown~AbCd"
)

func twoTenants(o *emulator.Options) {
	other, err := dcr.Parse([]byte(vendorRule))
	if err != nil {
		panic(err)
	}
	o.Rules = []*dcr.Rule{finding.Rule(), other}
	o.Apps = []emulator.App{
		{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: vendorSecret},
		{TenantID: contosoTenant, ClientID: contosoClientID, Secret: contosoSecret, AllowedRules: []string{other.ImmutableID}},
	}
}

// withContoso adds the customer's destination: records whose "customer"
// is "contoso" go to its tenant, with its own application.
func withContoso(cfg config.Config) config.Config {
	cfg.Destinations = []config.Destination{{Name: "contoso", RouteField: "customer", RouteValue: "contoso",
		Values: config.Config{TenantID: contosoTenant, ApplicationID: contosoClientID, ApplicationSecret: contosoSecret}}}
	return cfg
}

// tenantRecords is n records, every fourth for contoso, as NDJSON, with
// the FindingIds of each destination.
func tenantRecords(prefix string, n int) (body []byte, vendor, contoso map[string]bool) {
	vendor, contoso = map[string]bool{}, map[string]bool{}
	var b bytes.Buffer
	ts := time.Now().UTC().Format(time.RFC3339)
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		customer := "fabrikam"
		if i%4 == 0 {
			customer = "contoso"
			contoso[id] = true
		} else {
			vendor[id] = true
		}
		fmt.Fprintf(&b, `{"FindingId":%q,"customer":%q,"TimeGenerated":%q,"Severity":"High"}`+"\n", id, customer, ts)
	}
	return b.Bytes(), vendor, contoso
}

// TestE2EDestinationForbiddenSend: contoso's requests are answered 403;
// the default destination's records all land, contoso's are all in its
// dead-letter file, and the exit code and message say which destination
// failed.
func TestE2EDestinationForbiddenSend(t *testing.T) {
	env := e2eStart(t, twoTenants)
	cfg := withContoso(env.cfg)
	env.save(t, cfg)
	body, vendor, contoso := tenantRecords("f", 400)
	data := filepath.Join(env.dir, "mixed.ndjson")
	if err := os.WriteFile(data, body, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--output", "json", "--batch-size", "25")
	if r.code != ExitFailure {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, ExitFailure, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, contosoSecret) || strings.Contains(r.stdout+r.stderr, vendorSecret) {
		t.Error("a secret is in the output")
	}
	st, raw := decodeStats(t, r.stdout)
	if st.RecordsRead != 400 || st.RecordsSent != int64(len(vendor)) || st.RecordsFailed != int64(len(contoso)) {
		t.Errorf("read %d sent %d failed %d; want 400, %d, %d", st.RecordsRead, st.RecordsSent, st.RecordsFailed, len(vendor), len(contoso))
	}
	if c := st.Destinations["contoso"]; c.StatusCodes["403"] == 0 || c.RecordsSent != 0 {
		t.Errorf("contoso: %+v, want 403 answers and nothing sent", c)
	}
	if e, _ := raw["error"].(map[string]any); e == nil || !strings.Contains(fmt.Sprint(e["message"]), "destination contoso") {
		t.Errorf("error %v does not name the destination", raw["error"])
	}
	n, ids := tableIDs(t, env.emu, dcr.DefaultTable, "FindingId")
	exactly(t, dcr.DefaultTable, n, ids, vendor)

	dl := filepath.Join(env.dir, "mixed.ndjson.contoso.failed.ndjson")
	lines, err := os.ReadFile(dl)
	if err != nil {
		t.Fatalf("contoso's dead-letter file: %v", err)
	}
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		for id := range contoso {
			if strings.Contains(l, `"FindingId":"`+id+`"`) {
				got[id] = true
			}
		}
	}
	if len(got) != len(contoso) {
		t.Errorf("contoso's dead-letter file holds %d of its %d records", len(got), len(contoso))
	}
	if _, err := os.Stat(filepath.Join(env.dir, "mixed.ndjson.failed.ndjson")); err == nil {
		t.Error("the default destination has a dead-letter file, though all its records landed")
	}
}

// TestE2EDestinationForbiddenServe: serve with the same two destinations.
// Records posted to /v1/records go by rule, those posted to
// /v1/records/contoso to contoso; contoso's uploads are answered 403 and
// its records stay in its spool, while every record of the default
// destination lands and /readyz stays 200.
func TestE2EDestinationForbiddenServe(t *testing.T) {
	daemonClearEnv(t)
	env := &daemonEnv{dir: t.TempDir()}
	opts := emulator.Options{}
	twoTenants(&opts)
	env.emu = emulatortest.Start(t, opts)
	cfg := withContoso(env.emu.ConnectorConfig())
	env.cfgPath = filepath.Join(env.dir, "connector_config.json")
	if err := config.Save(env.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	env.token = filepath.Join(env.dir, "webhook-token")
	if err := os.WriteFile(env.token, []byte(daemonToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(env.dir, "spool")
	d := startDaemonMain(t, "", serveArgs(env, spoolDir)...)
	base := "http://" + d.addr(t, "listening")
	c := &http.Client{Timeout: 10 * time.Second}

	body, vendor, contoso := tenantRecords("s", 200)
	if code, _, b, err := daemonPost(c, base+source.RecordsPath, daemonToken, body, nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST by rule: %d %s %v", code, b, err)
	}
	named, _, _ := tenantRecords("named", 10) // any customer: the path decides
	if code, _, b, err := daemonPost(c, base+source.RecordsPath+"/contoso", daemonToken, named, nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST to contoso: %d %s %v", code, b, err)
	}
	if code, _, b, _ := daemonPost(c, base+source.RecordsPath+"/nope", daemonToken, named, nil); code != http.StatusNotFound || !bytes.Contains(b, []byte("default, contoso")) {
		t.Errorf("POST to an unknown destination: %d %s", code, b)
	}

	rs := daemonWaitRows(t, env.emu, vendor, 20*time.Second)
	if rs.rows != len(vendor) || rs.dups() != 0 {
		t.Errorf("the table holds %d rows (%d duplicates), want exactly the default destination's %d", rs.rows, rs.dups(), len(vendor))
	}
	wantLeft := float64(len(contoso) + 10)
	daemonWaitMetric(t, base+"/metrics", `ccfpush_upload_requests_total{code="403",destination="contoso"}`, func(v float64) bool { return v > 0 }, 10*time.Second)
	daemonWaitMetric(t, base+"/metrics", `ccfpush_spool_records{destination="contoso"}`, func(v float64) bool { return v == wantLeft }, 10*time.Second)
	m := daemonScrape(t, base+"/metrics")
	if got := m[`ccfpush_records_sent_total{destination="default",source="webhook"}`]; got != float64(len(vendor)) {
		t.Errorf("records sent of the default destination %v, want %d", got, len(vendor))
	}
	if m[`ccfpush_spool_records{destination="default"}`] != 0 || m[`ccfpush_records_sent_total{destination="contoso",source="webhook"}`] != 0 {
		t.Errorf("metrics: %v", m)
	}
	d.log.wait(t, "destination not delivering; the others go on", 0, 10*time.Second, nil)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(ready, []byte(`"degraded":["destination contoso: upload: `)) {
		t.Errorf("/readyz %d %s while the default destination delivers, want 200 naming contoso", resp.StatusCode, ready)
	}
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}
	if strings.Contains(d.log.String(), contosoSecret) || strings.Contains(d.log.String(), vendorSecret) {
		t.Error("a secret is in the log")
	}
	// Nothing was dead-lettered: a 403 is not the records' fault.
	if _, err := os.Stat(filepath.Join(spoolDir, "dead-letter.contoso.ndjson")); err == nil {
		t.Error("contoso's records were dead-lettered; they must stay in its spool")
	}
	left := 0.0
	d.log.mu.Lock()
	for _, l := range d.log.lines {
		if l["msg"] == "stopped" && l["destination"] == "contoso" {
			left, _ = l["left_in_spool"].(float64)
		}
	}
	d.log.mu.Unlock()
	if left != wantLeft {
		t.Errorf("contoso left %v records in its spool at the stop, want %v", left, wantLeft)
	}

	// Once contoso's records may go (here: through an application with
	// the role), the next start delivers them from its spool, once each.
	cfg.Destinations[0].Values.TenantID, cfg.Destinations[0].Values.ApplicationID = emulator.DefaultTenantID, emulator.DefaultClientID
	cfg.Destinations[0].Values.ApplicationSecret = vendorSecret
	if err := config.Save(env.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	d = startDaemonMain(t, "", serveArgs(env, spoolDir)...)
	all := map[string]bool{}
	for id := range vendor {
		all[id] = true
	}
	for id := range contoso {
		all[id] = true
	}
	for i := range 10 {
		all[fmt.Sprintf("named-%d", i)] = true
	}
	rs = daemonWaitRows(t, env.emu, all, 20*time.Second)
	if rs.rows != len(all) || rs.dups() != 0 {
		t.Errorf("after the fix: %d rows (%d duplicates), want %d", rs.rows, rs.dups(), len(all))
	}
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}
}

// TestE2EDestinationsWatch: watch with two destinations of one DCR. A
// file in the watched folder goes by the rules; a file in the assets
// sub-folder goes to assets whatever its records say (their kind is
// missing). Each table holds exactly its records.
func TestE2EDestinationsWatch(t *testing.T) {
	rule, err := dcr.Parse([]byte(vendorRule))
	if err != nil {
		t.Fatal(err)
	}
	env := newDaemonEnvOpts(t, emulator.Options{Rules: []*dcr.Rule{rule}})
	cfg := env.emu.ConnectorConfig()
	cfg.Destinations = []config.Destination{{Name: "assets", RouteField: "kind", RouteValue: "asset",
		Values: config.Config{StreamName: "Custom-Assets"}}}
	if err := config.Save(env.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	d := startDaemonMain(t, "watching a sub-folder per destination", "--config", env.cfgPath, "watch", inbox, "--settle", "200ms",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--retry-max-delay", "200ms")

	data, findings, assets := vendorRecords(t, env.dir, 90)
	mixed, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	watchDrop(t, inbox, "mixed.ndjson", mixed)
	var more bytes.Buffer
	for i := range 20 {
		id := fmt.Sprintf("sub-asset-%d", i)
		assets[id] = true
		fmt.Fprintf(&more, `{"AssetId":%q,"Hostname":"h"}`+"\n", id)
	}
	watchDrop(t, filepath.Join(inbox, "assets"), "inventory.ndjson", more.Bytes())

	deadline := time.Now().Add(20 * time.Second)
	for {
		nf, _ := env.emu.Count("Findings_CL")
		na, _ := env.emu.Count("Assets_CL")
		if nf >= int64(len(findings)) && na >= int64(len(assets)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d findings of %d, %d assets of %d\n%s", nf, len(findings), na, len(assets), d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n, ids := tableIDs(t, env.emu, "Findings_CL", "FindingId")
	exactly(t, "Findings_CL", n, ids, findings)
	n, ids = tableIDs(t, env.emu, "Assets_CL", "AssetId")
	exactly(t, "Assets_CL", n, ids, assets)
	for deadline := time.Now().Add(10 * time.Second); watchCount(t, filepath.Join(inbox, "done", "assets"), "inventory.ndjson") != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sub-folder's file is not in done/assets:\n%s", d.log)
		}
	}
}

// TestE2EDoctorPerDestination: doctor checks each destination with its
// own credential: the default one's ingestion passes, contoso's fails on
// the missing role, and its lines say which destination they are about.
func TestE2EDoctorPerDestination(t *testing.T) {
	env := e2eStart(t, twoTenants)
	env.save(t, withContoso(env.cfg))
	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "doctor", "--output", "json")
	if r.code != ExitFailure {
		t.Fatalf("exit %d, want %d (contoso's ingestion fails)\n%s\n%s", r.code, ExitFailure, r.stdout, r.stderr)
	}
	var rep struct {
		Checks []struct {
			Check, Status, Destination string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Destination+"/"+c.Check] = c.Status
	}
	for k, want := range map[string]string{"/ingestion": "ok", "/token": "ok", "contoso/token": "ok", "contoso/network": "ok", "contoso/ingestion": "fail"} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	if strings.Contains(r.stdout+r.stderr, contosoSecret) || strings.Contains(r.stdout+r.stderr, vendorSecret) {
		t.Error("a secret is in the report")
	}
	r = runMain(t, context.Background(), "", "--config", env.cfgPath, "doctor")
	if !strings.Contains(r.stdout, "destination contoso: ") {
		t.Errorf("the text report does not name the destination:\n%s", r.stdout)
	}
}

// A destination that spreads its requests over two DCRs: doctor checks
// each, and names the one the application may not ingest into — a share of
// every send would fail there, though the first DCR takes them.
func TestE2EDoctorEachDCR(t *testing.T) {
	first := finding.Rule()
	second := *finding.Rule()
	second.ImmutableID = "dcr-c0ffee5eca1ab1ed00000000000000f2"
	env := e2eStart(t, func(o *emulator.Options) {
		o.Rules = []*dcr.Rule{first, &second}
		o.Apps = []emulator.App{{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: vendorSecret,
			AllowedRules: []string{first.ImmutableID}}}
	})
	cfg := env.cfg
	cfg.ApplicationSecret = config.Secret(vendorSecret)
	cfg.DCRImmutableID = ""
	cfg.DCRs = []config.DCR{{ImmutableID: first.ImmutableID}, {ImmutableID: second.ImmutableID}}
	env.save(t, cfg)
	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "doctor")
	if r.code != ExitFailure || !strings.Contains(r.stdout, "may not ingest into DCR "+second.ImmutableID) ||
		strings.Contains(r.stdout, "may not ingest into DCR "+first.ImmutableID) {
		t.Errorf("exit %d, want %d naming DCR %s alone\n%s\n%s", r.code, ExitFailure, second.ImmutableID, r.stdout, r.stderr)
	}

	// Both allowed: each is checked, and said.
	env2 := e2eStart(t, func(o *emulator.Options) { o.Rules = []*dcr.Rule{first, &second} })
	cfg2 := env2.cfg
	cfg2.DCRImmutableID = ""
	cfg2.DCRs = []config.DCR{{ImmutableID: first.ImmutableID}, {ImmutableID: second.ImmutableID}}
	env2.save(t, cfg2)
	r = runMain(t, context.Background(), "", "--config", env2.cfgPath, "doctor")
	if r.code != ExitOK || !strings.Contains(r.stdout, "each of 2 DCRs") {
		t.Errorf("two allowed DCRs: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `ccfpush generate -o /dev/stdout | …`: the records reach the reader of
// the pipe, as with every Unix tool; nothing is renamed over /dev/stdout.
func TestGenerateToDevStdoutPipe(t *testing.T) {
	bin := daemonBinary(t)
	cmd := exec.Command(bin, "generate", "-n", "25", "--seed", "7", "-o", "/dev/stdout")
	cmd.Dir = t.TempDir()
	out, err := cmd.StdoutPipe() // a pipe, as with a shell's "|"
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	decErr := json.NewDecoder(out).Decode(&recs)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr.String())
	}
	if decErr != nil || len(recs) != 25 {
		t.Fatalf("the pipe carried %d records (%v), want 25\nstderr: %s", len(recs), decErr, stderr.String())
	}
	if !strings.Contains(stderr.String(), "wrote 25 records") {
		t.Errorf("stderr: %s", stderr.String())
	}
	if ents, _ := os.ReadDir(cmd.Dir); len(ents) != 0 {
		t.Errorf("files left in the working directory: %v", ents)
	}
}

// With stdout redirected to a file that already holds something, the
// records follow it (the descriptor's offset), as "cmd >> f" would have it.
func TestGenerateToDevStdoutFile(t *testing.T) {
	bin := daemonBinary(t)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("# header\n")
	cmd := exec.Command(bin, "generate", "-n", "3", "--seed", "7", "--format", "ndjson", "-o", "/dev/stdout")
	var stderr strings.Builder
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr.String())
	}
	b, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[0] != "# header" || !strings.HasPrefix(lines[1], "{") {
		t.Fatalf("out.json =\n%s\nwant the header, then 3 records", b)
	}
}

// `ccfpush schema dcr -o FIFO`: the reader of the named pipe gets the
// document; the FIFO stays a FIFO with its mode.
func TestSchemaDCRToFIFO(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.json")
	if err := os.WriteFile(data, []byte(`[{"TimeGenerated":"2026-01-01T00:00:00Z","Host":"a","Score":1.5}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "dcr.fifo")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	before, _ := os.Stat(fifo)
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	r := runMain(t, context.Background(), "", "schema", "dcr", "--data", data, "-o", fifo)
	if r.code != ExitOK {
		t.Fatalf("schema dcr: exit %d\n%s", r.code, r.stderr)
	}
	select {
	case doc := <-got:
		var v map[string]any
		if err := json.Unmarshal([]byte(doc), &v); err != nil || !strings.Contains(doc, "streamDeclarations") {
			t.Errorf("the reader got %q (%v)", doc, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader got nothing within 10s")
	}
	after, _ := os.Stat(fifo)
	if !os.SameFile(before, after) || after.Mode() != before.Mode() {
		t.Errorf("the FIFO was replaced or chmodded: %v, was %v", after.Mode(), before.Mode())
	}
}

// `emulator --write-config` over a real configuration: exit 2, nothing
// started, the file untouched, and the way forward named.
func TestEmulatorWriteConfigKeepsRealConfig(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "connector_config.json")
	real := `{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","application_id":"11111111-2222-3333-4444-555555555555",` +
		`"application_secret":"abc8Q~only-shown-once","dce_endpoint":"https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",` +
		`"dcr_immutable_id":"dcr-0123456789abcdef0123456789abcdef","stream_name":"Custom-CVEBuster_CL"}`
	if err := os.WriteFile(p, []byte(real), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runMain(t, context.Background(), "", "emulator", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--write-config", p)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--overwrite-config") || strings.Contains(r.stdout, "listening") {
		t.Fatalf("exit %d, want 2 naming --overwrite-config before starting\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(p); string(b) != real {
		t.Errorf("the configuration was changed:\n%s", b)
	}
}

// No output flag writes over a connector configuration — the one in use,
// under any name, or another that parses as one — and verify's missing
// records never replace the --data file: each is refused (exit 2) with the
// flag named, before anything is read or sent, and the file is unchanged.
func TestOutputsNeverReplaceAConfiguration(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector_config.json")
	body := `{"tenant_id": "7f3c2a1e-5b4d-4c8e-9a6f-0d1e2c3b4a59", "application_id": "0daa6889-2aaf-485d-bcde-b3ecbb798a81", "application_secret": "kept~secret"}` + "\n"
	other := filepath.Join(dir, "old_config.json")
	link := filepath.Join(dir, "cfg-link.json")
	data := filepath.Join(dir, "data.ndjson")
	for p, b := range map[string]string{cfg: body, other: body, data: `{"FindingId":"a"}` + "\n"} {
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(cfg, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flag string
		args       []string
	}{
		{"generate", "-o", []string{"generate", "-n", "3", "-o", cfg}},
		{"generate through a link", "-o", []string{"generate", "-n", "3", "-o", link}},
		{"generate over another configuration", "-o", []string{"generate", "-n", "3", "-o", other}},
		{"schema", "-o", []string{"schema", "dcr", "--data", data, "-o", cfg}},
		{"send", "--dead-letter", []string{"send", "--dry-run", "--data", data, "--dead-letter", cfg}},
		{"verify", "--missing-out", []string{"verify", "--data", data, "--wait", "0", "--missing-out", other}},
		{"verify over its data", "--missing-out", []string{"verify", "--data", data, "--wait", "0", "--missing-out", data}},
		{"serve", "--dead-letter", []string{"serve", "--spool-dir", filepath.Join(dir, "spool"), "--token-file", data, "--dead-letter", other}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := runMain(t, ctx, "", append([]string{"--config", cfg}, tc.args...)...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tc.flag+" ") {
				t.Errorf("exit %d, want %d naming %s\n%s", r.code, ExitUsage, tc.flag, r.stderr)
			}
			for p, want := range map[string]string{cfg: body, other: body, data: `{"FindingId":"a"}` + "\n"} {
				if b, _ := os.ReadFile(p); string(b) != want {
					t.Errorf("%s was changed:\n%s", p, b)
				}
			}
		})
	}
}

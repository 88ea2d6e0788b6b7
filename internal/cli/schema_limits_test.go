package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// limitsTMain runs ccfpush in a directory of its own with no configuration.
func limitsTMain(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runMain(t, context.Background(), "", append([]string{"--config", filepath.Join(dir, "none.json")}, args...)...).all()
}

func limitsTWrite(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Data a table cannot hold and rules Azure would refuse are the user's to
// fix: exit 2, the rule and its source named, a hint, and nothing written.
func TestSchemaRefusesWhatAzureRefuses(t *testing.T) {
	dir := t.TempDir()
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf(`"p%03d":1`, i)
	}
	dotted := make([]string, 300)
	for i := range dotted {
		dotted[i] = fmt.Sprintf(`"some.very.long.property.name.%04d":"v"`, i+1)
	}
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"empty property name", `{"ok":1,"":2}`, []string{`record 1 (line 1`, `empty name`, "hint:"}},
		{"501 properties", "{" + strings.Join(many, ",") + "}", []string{"502 columns", "at most 500 columns", "service-limits", "hint:"}},
		{"300 dotted keys", "{" + strings.Join(dotted, ",") + "}", []string{"15,360", "is 21,648 characters long even written compactly", "hint: name the properties at the source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := limitsTWrite(t, dir, "data.ndjson", tc.data)
			out := filepath.Join(dir, "dcr.json")
			for _, cmd := range []string{"dcr", "arm"} {
				code, _, stderr := limitsTMain(t, dir, "schema", cmd, "--data", data, "-o", out)
				if code != ExitUsage || strings.Contains(stderr, "internal error") {
					t.Errorf("schema %s: exit %d, want %d:\n%s", cmd, code, ExitUsage, stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("schema %s: stderr lacks %q:\n%s", cmd, w, stderr)
					}
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("schema %s wrote %s", cmd, out)
				}
			}
		})
	}
}

// check --dcr reports per column what the table side refuses, where
// schema arm --dcr refuses the rule and the emulator will not serve it.
func TestCheckDCRTableSide(t *testing.T) {
	dir := t.TempDir()
	rule := limitsTWrite(t, dir, "rule.json", `{"name":"table-side","properties":{
		"streamDeclarations":{"Custom-Scan":{"columns":[{"name":"user.name","type":"string"},{"name":"TenantId","type":"string"},{"name":"x","type":"string"}]}},
		"destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w"}]},
		"dataFlows":[{"streams":["Custom-Scan"],"destinations":["ws"],"transformKql":"source","outputStream":"Custom-Scan_CL"}]}}`)
	data := limitsTWrite(t, dir, "data.ndjson", `{"user.name":"u","TenantId":"t","x":"1"}`)

	code, stdout, stderr := limitsTMain(t, dir, "check", "--dcr", rule, "--data", data)
	if code != ExitLoss {
		t.Errorf("check: exit %d, want %d\n%s%s", code, ExitLoss, stdout, stderr)
	}
	for _, w := range []string{
		`column "user.name" of Scan_CL`, "project-rename user_name = ['user.name']",
		`column "TenantId" of Scan_CL`, "project-rename RecordTenantId = ['TenantId']",
		`column "x" of Scan_CL`, "project-rename FieldX = ['x']",
		"[column_refused]", "DATA WOULD BE LOST",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("check output lacks %q:\n%s", w, stdout)
		}
	}
	if !strings.Contains(stderr, "hint: fix the rule first: rename it in the transform") {
		t.Errorf("check: the hint does not point at the rule:\n%s", stderr)
	}

	code, _, stderr = limitsTMain(t, dir, "schema", "arm", "--dcr", rule)
	if code != ExitUsage || !strings.Contains(stderr, `column "user.name" of table Scan_CL`) || !strings.Contains(stderr, "hint: rename the columns in the transform") {
		t.Errorf("schema arm --dcr: exit %d\n%s", code, stderr)
	}

	code, _, stderr = limitsTMain(t, dir, "emulator", "--dcr", rule, "--data-dir", filepath.Join(dir, "emu"), "--addr", "127.0.0.1:0")
	if code != ExitUsage || !strings.Contains(stderr, "400 SchemaUpdateFatalError: Table validation failed") {
		t.Errorf("emulator --dcr: exit %d\n%s", code, stderr)
	}
}

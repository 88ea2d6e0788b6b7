package doctor

import (
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

// Doctor masks a secret pasted into another key with the rule config show
// uses (config.Config.Shown), in the summary line and in the findings.
func TestConfigCheckMasksSecretInWrongKey(t *testing.T) {
	other := "abc8Q~0123456789abcdefghijABCDEFGHIJ.-_~xy"
	if s := describeConfig(&config.Config{TenantID: other, StreamName: "Custom-X_CL"}); strings.Contains(s, other[:6]) {
		t.Errorf("summary %q shows the start of the secret", s)
	}
	ca := newTestCA(t)
	m := baseConfig("https://127.0.0.1:1", ca.pemPath)
	m["application_id"] = other
	r := run(&Env{ConfigPath: writeConfig(t, m, 0o600)}, CheckConfig, checkConfig)
	if r.Status != StatusFail {
		t.Fatalf("status %s, want fail: %+v", r.Status, r)
	}
	all := r.Detail
	for _, f := range r.Findings {
		all += "\n" + f.Message + " " + f.Hint
	}
	if strings.Contains(all, other[:6]) || !strings.Contains(all, "********") {
		t.Errorf("findings do not mask the value:\n%s", all)
	}
}

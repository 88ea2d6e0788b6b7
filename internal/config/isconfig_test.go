package config

import (
	"strings"
	"testing"
)

func TestIsConfig(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{"tenant_id":"x","application_secret":"y"}`, true},
		{`{"dce_endpoint":"https://h"}`, true},
		{`{}`, false},
		{`{"tenant_id":null}`, false},
		{`[{"tenant_id":"x"}]`, false},
		{`{"CveId":"CVE-1"}`, false},
		{`{"tenant_id":"x"}` + "\n" + `{"tenant_id":"y"}`, false}, // NDJSON
		{`{"tenant_id":"x", "records": []}`, false},
	} {
		if got := IsConfig(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("IsConfig(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

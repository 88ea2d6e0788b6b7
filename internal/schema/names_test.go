package schema

import (
	"strings"
	"testing"
)

func TestNameProblem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		problem string // substring; "" means acceptable
	}{
		{"Severity", ""},
		{"cvss_score_v3", ""},
		{"a" + strings.Repeat("b", 44), ""},
		{"a" + strings.Repeat("b", 45), "46 characters"},
		{"id", "reserved"},
		{"ID", "reserved"},
		{"Type", "reserved"},
		{"TenantId", "reserved"},
		{"_ResourceId", "reserved"},
		{"Title", "reserved"},
		{"UniqueId", "reserved"},
		{"_private", "does not start with a letter"},
		{"1stSeen", "does not start with a letter"},
		{"@timestamp", "does not start with a letter"},
		{"host.name", "'.'"},
		{"scanner version", "a space"},
		{"naïve", "'ï'"},
		{"", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NameProblem(tc.name)
			if tc.problem == "" && got != "" {
				t.Fatalf("NameProblem(%q) = %q, want acceptable", tc.name, got)
			}
			if tc.problem != "" && !strings.Contains(got, tc.problem) {
				t.Fatalf("NameProblem(%q) = %q, want it to mention %q", tc.name, got, tc.problem)
			}
		})
	}
}

func TestSuggestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"id", "RecordId"},
		{"Type", "RecordType"},
		{"_ResourceId", "ResourceId"},
		{"_BilledSize", "RecordBilledSize"},
		{"_ItemId", "ItemId"},
		{"x", "FieldX"},
		{"@y", "FieldY"},
		{"7", "Field7"},
		{"tenantId", "RecordTenantId"},
		{"@timestamp", "timestamp"},
		{"host.name", "host_name"},
		{"scanner version", "scanner_version"},
		{"price ($)", "price"},
		{"1stSeen", "Field1stSeen"},
		{"@@@", "Field"},
		{"__x__y", "x_y"},
		{"naïve", "na_ve"},
		{strings.Repeat("abc_", 20), strings.Repeat("abc_", 11) + "a"},
		{strings.Repeat("a", 44) + ".bcd", strings.Repeat("a", 44)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := suggestName(tc.in)
			if got != tc.want {
				t.Errorf("suggestName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if p := NameProblem(got); p != "" {
				t.Errorf("suggestName(%q) = %q, which is refused: %s", tc.in, got, p)
			}
		})
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{"host_name": true, "host_name_2": true}
	if got := uniqueName("Host_Name", taken); got != "Host_Name_3" {
		t.Errorf("uniqueName = %q, want Host_Name_3 (names are compared without case)", got)
	}
	long := strings.Repeat("x", MaxColumnName)
	taken[long] = true
	got := uniqueName(long, taken)
	if len(got) > MaxColumnName || got == long || !strings.HasSuffix(got, "_2") {
		t.Errorf("uniqueName(45 x) = %q (%d)", got, len(got))
	}
	if got := uniqueName("free", taken); got != "free" {
		t.Errorf("uniqueName(free) = %q", got)
	}
}

func TestKQLName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Severity", "Severity"},
		{"host.name", "['host.name']"},
		{"@timestamp", "['@timestamp']"},
		{"where", "['where']"},
		{"and", "['and']"},
		{"it's", `['it\'s']`},
		{`back\slash`, `['back\\slash']`},
		{"1st", "['1st']"},
	} {
		if got := kqlName(tc.in); got != tc.want {
			t.Errorf("kqlName(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBaseName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Contoso Security Alerts", "ContosoSecurityAlerts"},
		{"scan-results", "ScanResults"},
		{"cvebuster_data", "CvebusterData"},
		{"2024 findings", "T2024Findings"},
		{"über scan", "BerScan"},
		{"---", ""},
		{strings.Repeat("a", 80), strings.Repeat("A", 1) + strings.Repeat("a", 59)},
	} {
		if got := BaseName(tc.in); got != tc.want {
			t.Errorf("BaseName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckNames(t *testing.T) {
	// The Tables API (2025-07-01) allows digits first and '-'.
	for _, ok := range []string{"Scan_CL", "A1_CL", "1Scan_CL", "Scan-X_CL"} {
		if err := CheckTableName(ok); err != nil {
			t.Errorf("CheckTableName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"Scan", "_CL", "Scan.X_CL", strings.Repeat("a", 61) + "_CL"} {
		if err := CheckTableName(bad); err == nil {
			t.Errorf("CheckTableName(%q) accepted it", bad)
		}
	}
	for _, ok := range []string{"Custom-Scan", "Custom-Scan_CL", "Custom-a.b-c"} {
		if err := CheckStreamName(ok); err != nil {
			t.Errorf("CheckStreamName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"Scan", "Custom-", "Microsoft-Syslog", "Custom-a b"} {
		if err := CheckStreamName(bad); err == nil {
			t.Errorf("CheckStreamName(%q) accepted it", bad)
		}
	}
}

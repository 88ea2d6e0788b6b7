package finding

import (
	"testing"
)

func TestNormalizeSeverity(t *testing.T) {
	for in, want := range map[string]string{
		"CRITICAL": SeverityCritical, "High": SeverityHigh, "important": SeverityHigh,
		"MODERATE": SeverityMedium, "medium": SeverityMedium,
		"LOW": SeverityLow, "Negligible": SeverityLow, "unimportant": SeverityLow,
		"info": SeverityInformational, "None": SeverityInformational,
		"": SeverityUnknown, "UNKNOWN": SeverityUnknown, "not yet assigned": SeverityUnknown, "whatever": SeverityUnknown,
		"9.8": SeverityCritical, "7.0": SeverityHigh, "5.3": SeverityMedium, "0.1": SeverityLow, "0.0": SeverityInformational, "11": SeverityUnknown,
	} {
		if got := NormalizeSeverity(in); got != want {
			t.Errorf("NormalizeSeverity(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestPickCVSS is the documented rule: the scanner's severity source, else
// NVD, else the first listed; the newest version within it; a v3 vector's
// score computed when missing.
func TestPickCVSS(t *testing.T) {
	v31 := "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	v30 := "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L" // 5.6
	v2 := "AV:N/AC:M/Au:N/C:N/I:P/A:N"
	v4 := "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
	cases := []struct {
		name      string
		preferred string
		all       []cvss
		source    string
		vector    string
		score     float64
		hasScore  bool
	}{
		{"preferred source wins over NVD", "redhat",
			[]cvss{{source: "nvd", vector: v31, score: 9.8, hasScore: true}, {source: "redhat", vector: v30, score: 5.6, hasScore: true}},
			"redhat", v30, 5.6, true},
		{"NVD when the preferred source has none", "debian",
			[]cvss{{source: "ghsa", vector: v30, score: 5.6, hasScore: true}, {source: "nvd@nist.gov", vector: v31, score: 9.8, hasScore: true}},
			"nvd", v31, 9.8, true},
		{"first listed without NVD", "",
			[]cvss{{source: "ghsa", vector: v30, score: 5.6, hasScore: true}, {source: "redhat", vector: v31, score: 9.8, hasScore: true}},
			"ghsa", v30, 5.6, true},
		{"newest version within the source", "",
			[]cvss{{source: "nvd", version: "2.0", vector: v2, score: 4.3, hasScore: true}, {source: "nvd", vector: v31, score: 9.8, hasScore: true}, {source: "nvd", version: "4.0", vector: v4, score: 9.3, hasScore: true}},
			"nvd", v4, 9.3, true},
		{"score computed from a v3.1 vector", "",
			[]cvss{{source: "ghsa", vector: v31}},
			"ghsa", v31, 9.8, true},
		{"score computed from a v3.0 vector", "",
			[]cvss{{source: "ghsa", vector: v30}},
			"ghsa", v30, 5.6, true},
		{"a v4 vector alone has no score here", "",
			[]cvss{{source: "ghsa", vector: v4}},
			"ghsa", v4, 0, false},
		{"empty entries are skipped", "nvd",
			[]cvss{{source: "nvd"}, {source: "ghsa", vector: v31, score: 9.8, hasScore: true}},
			"ghsa", v31, 9.8, true},
	}
	for _, tc := range cases {
		var f Finding
		pickCVSS(&f, tc.preferred, tc.all)
		if f.CvssSource != tc.source || f.CvssVector != tc.vector || f.CvssScore != tc.score || f.HasCvssScore != tc.hasScore {
			t.Errorf("%s: got %s %s %v %v", tc.name, f.CvssSource, f.CvssVector, f.CvssScore, f.HasCvssScore)
		}
	}
	var f Finding
	pickCVSS(&f, "nvd", nil)
	if f.CvssVector != "" || f.HasCvssScore {
		t.Errorf("no assessment gave %+v", f)
	}
}

func TestPurlParts(t *testing.T) {
	for in, want := range map[string][3]string{
		"pkg:npm/%40babel/core@7.20.0":                                    {"npm", "@babel/core", "7.20.0"},
		"pkg:deb/debian/bash@5.0-4?arch=amd64&distro=debian-10":           {"deb", "debian/bash", "5.0-4"},
		"pkg:golang/github.com/docker/distribution@v2.7.1%2Bincompatible": {"golang", "github.com/docker/distribution", "v2.7.1+incompatible"},
		"pkg:composer/league/flysystem":                                   {"composer", "league/flysystem", ""},
		"not a purl":                                                      {"", "", ""},
	} {
		name, version := purlParts(in)
		if typ := purlType(in); typ != want[0] || name != want[1] || version != want[2] {
			t.Errorf("%s: %s %s %s, want %v", in, typ, name, version, want)
		}
	}
	if got := purlWithoutVersion("pkg:npm/%40babel/core@7.20.0?x=y#sub"); got != "pkg:npm/%40babel/core" {
		t.Errorf("purlWithoutVersion = %s", got)
	}
}

func TestNormalizeCWE(t *testing.T) {
	for in, want := range map[string]string{
		"CWE-79": "CWE-79", "cwe-079": "CWE-79", "external/cwe/cwe-079": "CWE-79",
		"CWE-89: Improper Neutralization of Special Elements used in an SQL Command": "CWE-89",
		"security": "", "NVD-CWE-Other": "",
	} {
		if got := normalizeCWE(in); got != want {
			t.Errorf("normalizeCWE(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, in := range []string{"2023-05-17T21:00:56.783213-04:00", "2021-08-25T12:20:30.000000005Z", "2019-04-20T00:29:00+00:00", "2022-02-09T22:15:00", "2023-01-01"} {
		if _, ok := parseTime(in); !ok {
			t.Errorf("parseTime(%q) failed", in)
		}
	}
	for _, in := range []string{"", "0001-01-01T00:00:00Z", "yesterday"} {
		if _, ok := parseTime(in); ok {
			t.Errorf("parseTime(%q) succeeded", in)
		}
	}
}

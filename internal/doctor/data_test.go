package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func dataFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDataCheck(t *testing.T) {
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC)
	ts := `"TimeGenerated":"2026-05-06T11:00:00Z"`
	big := strings.Repeat("x", 70<<10)
	huge := strings.Repeat("y", 1_100_000)

	tests := []struct {
		name    string
		content string
		path    string // instead of content
		status  Status
		ids     []HintID
		detail  []string
	}{
		{
			name:    "ok array",
			content: "[\n{" + ts + `,"a":1},` + "\n{" + ts + `,"b":"two"}` + "\n]\n",
			status:  StatusOK,
			detail:  []string{"2 records (json)", "biggest 50 B at record 2 (line 3)", "every record looks sendable"},
		},
		{
			name:    "ok ndjson",
			content: "{" + ts + "}\n{" + ts + `,"x":true}` + "\n",
			status:  StatusOK,
			detail:  []string{"2 records (ndjson)"},
		},
		{
			name:    "missing TimeGenerated, with a case variant",
			content: "{\"a\":1}\n{\"timegenerated\":\"2026-05-06T11:00:00Z\"}\n{" + ts + "}\n",
			status:  StatusWarn,
			ids:     []HintID{HintDataNoTime},
			detail:  []string{"2 of 3 records have no TimeGenerated: record 1 (line 1), record 2 (line 2) (has timegenerated: column names are case-sensitive)"},
		},
		{
			name:    "TimeGenerated the service replaces",
			content: `{"TimeGenerated":"2026-05-01T00:00:00Z"}` + "\n" + `{"TimeGenerated":"yesterday"}` + "\n" + `{"TimeGenerated":"2026-05-09T00:00:00Z"}` + "\n",
			status:  StatusWarn,
			ids:     []HintID{HintDataTimeValue},
			detail:  []string{"3 records have a TimeGenerated the service will replace"},
		},
		{
			name:    "value over 64 KB",
			content: "[{" + ts + `,"Blob":"` + big + `"}]`,
			status:  StatusWarn,
			ids:     []HintID{HintDataValue64KB},
			detail:  []string{"1 value is over 64 KB: record 1 (line 1) field Blob (70.0 KB)"},
		},
		{
			name:    "record over 1 MB",
			content: "{" + ts + `,"Huge":"` + huge + `"}` + "\n{" + ts + "}\n",
			status:  StatusFail,
			ids:     []HintID{HintDataRecord1MB, HintDataValue64KB},
			detail:  []string{"2 records", "biggest 1.0 MB at record 1 (line 1)", "2 kinds of problem"},
		},
		{
			name:    "non-object items",
			content: "[{" + ts + "}, 42, \"text\", [1], null, {" + ts + "}]",
			status:  StatusFail,
			ids:     []HintID{HintDataNotObject},
			detail:  []string{"4 items are not a JSON object: record 2 (line 1) (a number), record 3 (line 1) (a string), record 4 (line 1) (an array), record 5 (line 1) (null)"},
		},
		{
			name:    "invalid JSON record, good ones kept",
			content: "{" + ts + "}\n{\"a\": tru}\n{" + ts + "}\n",
			status:  StatusFail,
			ids:     []HintID{HintDataInvalidJSON},
			detail:  []string{"2 records", "1 record is not valid JSON: record 2 (line 2)"},
		},
		{
			name:    "unclosed array is fatal",
			content: "[{" + ts + "}, {" + ts + "}",
			status:  StatusFail,
			ids:     []HintID{HintDataInvalidJSON},
		},
		{
			name:    "empty file",
			content: "",
			status:  StatusWarn,
			ids:     []HintID{HintDataEmpty},
		},
		{
			name:   "missing file",
			path:   "/nonexistent/dir/data.json",
			status: StatusFail,
			ids:    []HintID{HintDataUnreadable},
			detail: []string{"cannot read /nonexistent/dir/data.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.path
			if p == "" {
				p = dataFile(t, tt.content)
			}
			env := &Env{DataFile: p, Now: func() time.Time { return now }}
			r := run(env, CheckData, checkData)
			if r.Status != tt.status {
				t.Fatalf("status %s, want %s: %+v", r.Status, tt.status, r)
			}
			for _, id := range tt.ids {
				if !hasID(r, id) {
					t.Errorf("ids %v, want %s", findingIDs(r), id)
				}
			}
			if len(tt.ids) == 0 && len(r.Findings) != 0 {
				t.Errorf("unexpected findings %+v", r.Findings)
			}
			for _, d := range tt.detail {
				all := r.Detail
				for _, f := range r.Findings {
					all += "\n" + f.Message
				}
				if !strings.Contains(all, d) {
					t.Errorf("output %q\nwant %q", all, d)
				}
			}
		})
	}
}

func TestDataCheckListsAtMostFivePositions(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 12; i++ {
		b.WriteString(`{"a":1}` + "\n")
	}
	r := run(&Env{DataFile: dataFile(t, b.String())}, CheckData, checkData)
	want := "12 of 12 records have no TimeGenerated: record 1 (line 1), record 2 (line 2), record 3 (line 3), record 4 (line 4), record 5 (line 5) and 7 more"
	if r.Findings[0].Message != want {
		t.Errorf("message = %q\nwant      %q", r.Findings[0].Message, want)
	}
}

func TestDataCheckStopsAtDeadline(t *testing.T) {
	p := dataFile(t, `{"TimeGenerated":"2026-05-06T11:00:00Z"}`+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := checkData(ctx, &Env{DataFile: p})
	r.finish()
	if r.Status != StatusWarn || r.HintID != string(HintDataTimeout) {
		t.Fatalf("%+v", r)
	}
}

func TestDataCheckRunsWithoutConfig(t *testing.T) {
	p := dataFile(t, `[{"TimeGenerated":"2026-05-06T11:00:00Z"}]`)
	env := &Env{ConfigPath: filepath.Join(t.TempDir(), "missing.json"), DataFile: p, Now: func() time.Time { return time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC) }}
	rs := Run(context.Background(), Checks(env), env, nil)
	last := rs[len(rs)-1]
	if last.Check != CheckData || last.Status != StatusOK {
		t.Fatalf("data = %+v", last)
	}
	if rs[0].Status != StatusFail || !env.ConfigUnreadable {
		t.Errorf("config = %+v", rs[0])
	}
	for _, r := range rs[1 : len(rs)-1] {
		if r.Status != StatusSkip {
			t.Errorf("%s = %s, want skip", r.Check, r.Status)
		}
	}
}

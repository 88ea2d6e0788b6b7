package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Generation bounds: enough for load tests, small enough that one click
// cannot fill the disk by accident.
const (
	maxGenerateCount = 1_000_000
	previewRecords   = 5
	// DefaultDataFile is the file the original tool generated and sent.
	DefaultDataFile = "cvebuster_data.json"
)

type generateForm struct {
	Count       string
	RecentRatio string
	Seed        string
	File        string
	Replace     bool
}

// GenerateResult is what a generation wrote.
type GenerateResult struct {
	File    string   `json:"file"`
	Records int      `json:"records"`
	Recent  int      `json:"recent"`
	Old     int      `json:"old"`
	Bytes   int64    `json:"bytes"`
	Seed    int64    `json:"seed"`
	Format  string   `json:"format"`
	Preview []string `json:"preview"` // the first records, indented
	Message string   `json:"message"`
}

type generateView struct {
	Form   generateForm
	Errors map[string]string
	Error  string
	Result *GenerateResult
}

func defaultGenerateForm() generateForm {
	return generateForm{Count: strconv.Itoa(generate.DefaultCount), RecentRatio: strconv.FormatFloat(generate.DefaultRecentRatio, 'f', -1, 64), File: DefaultDataFile}
}

func (s *Server) handleGeneratePage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "generate", "Generate test data", generateView{Form: defaultGenerateForm()})
}

// parseGenerate checks the form; errs maps field names to problems.
func parseGenerate(f generateForm) (generate.Options, map[string]string) {
	errs := map[string]string{}
	opts := generate.DefaultOptions()
	n, err := strconv.Atoi(strings.TrimSpace(f.Count))
	switch {
	case err != nil:
		errs["count"] = "want a whole number of records, e.g. 500"
	case n < 1 || n > maxGenerateCount:
		errs["count"] = fmt.Sprintf("want 1 to %s records", formatInt(maxGenerateCount))
	default:
		opts.N = n
	}
	ratio, err := strconv.ParseFloat(strings.TrimSpace(f.RecentRatio), 64)
	switch {
	case err != nil:
		errs["recent_ratio"] = "want a number between 0 and 1, e.g. 0.3 for 30% recent findings"
	case ratio < 0 || ratio > 1:
		errs["recent_ratio"] = "want a number between 0 and 1 (0.3 means 30% recent findings)"
	default:
		opts.RecentRatio = ratio
	}
	if seed := strings.TrimSpace(f.Seed); seed != "" {
		v, err := strconv.ParseInt(seed, 10, 64)
		if err != nil || v == 0 {
			errs["seed"] = "want a whole number other than 0, or leave empty for a random seed"
		} else {
			opts.Seed = v
		}
	}
	opts.Format = record.FormatOf(f.File)
	return opts, errs
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	form := generateForm{
		Count: r.PostFormValue("count"), RecentRatio: r.PostFormValue("recent_ratio"), Seed: r.PostFormValue("seed"),
		File: strings.TrimSpace(r.PostFormValue("file")), Replace: r.PostFormValue("replace") != "",
	}
	v := generateView{Form: form}
	opts, errs := parseGenerate(form)
	target, exists, err := s.ws.createTarget(form.File)
	if err != nil {
		errs["file"] = err.Error()
	} else if exists && !form.Replace {
		errs["file"] = form.File + " already exists: tick \"Replace the file\" to overwrite it, or choose another name"
	}
	if len(errs) > 0 {
		v.Errors = errs
		v.Error = "Nothing was generated: fix the values marked below."
		s.generateAnswer(w, r, http.StatusUnprocessableEntity, v)
		return
	}
	// The file is replaced by a rename, so a send reading the previous
	// version keeps reading it undisturbed.
	var sum generate.Summary
	err = s.ws.write(target, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, 256<<10)
		var werr error
		if sum, werr = generate.Write(bw, opts); werr != nil {
			return werr
		}
		return bw.Flush()
	})
	if err != nil {
		s.log.Error("generate", "file", target, "err", err)
		v.Error = "The file could not be written: " + err.Error()
		s.generateAnswer(w, r, http.StatusInternalServerError, v)
		return
	}
	res := &GenerateResult{
		File: form.File, Records: sum.Records, Recent: sum.Recent, Old: sum.Old, Bytes: sum.Bytes, Seed: sum.Seed,
		Format: string(opts.Format),
	}
	res.Preview, err = s.preview(target, previewRecords)
	if err != nil {
		s.log.Warn("generate preview", "file", target, "err", err)
	}
	res.Message = fmt.Sprintf("Wrote %s findings (%s recent, %s 30–90 days old) to %s, %s, seed %d.",
		formatInt(int64(sum.Records)), formatInt(int64(sum.Recent)), formatInt(int64(sum.Old)), form.File, bytesize.Format(sum.Bytes), sum.Seed)
	if exists {
		res.Message += " The previous file was replaced."
	}
	s.bus.Publish(activity.Event{Kind: "generated", Text: fmt.Sprintf("generated %d findings into %s (seed %d)", sum.Records, form.File, sum.Seed),
		Data: map[string]any{"file": form.File, "records": sum.Records, "seed": sum.Seed}})
	v.Result = res
	s.generateAnswer(w, r, http.StatusOK, v)
}

func (s *Server) generateAnswer(w http.ResponseWriter, r *http.Request, status int, v generateView) {
	if wantsJSON(r) {
		body := map[string]any{"ok": status == http.StatusOK, "error": v.Error, "fields": v.Errors}
		if v.Result != nil {
			body["result"] = v.Result
		}
		writeJSON(w, status, body)
		return
	}
	s.render(w, r, status, "generate", "Generate test data", v)
}

// preview returns the first n records of a data file, indented.
func (s *Server) preview(rel string, n int) ([]string, error) {
	f, _, err := s.ws.openData(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec, err := input.New(f, rel, input.Options{})
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var out []string
	for len(out) < n {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *record.Error
		if errors.As(err, &re) {
			continue
		}
		if err != nil {
			return out, err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, rec.Data, "", "  "); err != nil {
			return out, err
		}
		out = append(out, buf.String())
	}
	return out, nil
}

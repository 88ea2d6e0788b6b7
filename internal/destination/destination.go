// Package destination turns the destinations of a configuration
// (config.Target: the default one of the top-level keys and the entries of
// "destinations") into what the commands run: the one destination a
// command was pointed at (--destination, POST /v1/records/NAME, a watched
// sub-folder), or all of them with the Router that picks each record's;
// for a send, the lanes of an ingest.Routing, each with its uploader and
// its run record. It builds no adapter itself: the composition root hands
// it the function that builds a destination's uploader
// (azure.NewDestinationUploader).
package destination

import (
	"fmt"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// NewUploader builds the uploader of one destination from its effective
// configuration (config.Target.Config).
type NewUploader func(cfg *config.Config) (ingest.Uploader, error)

// UnknownError is a destination name that names none of the
// configuration's.
type UnknownError struct {
	Name  string
	Names []string // the destinations there are
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("no destination %q in the configuration; its destinations are: %s", e.Name, strings.Join(e.Names, ", "))
}

// Pick returns the destination called name ("" is the default one).
func Pick(cfg *config.Config, name string) (config.Target, error) {
	if name == "" {
		name = config.DefaultDestination
	}
	t, ok := cfg.TargetNamed(name)
	if !ok {
		return config.Target{}, &UnknownError{Name: name, Names: cfg.TargetNames()}
	}
	return t, nil
}

// Select returns the destinations a daemon or a send delivers to: the one
// called name when it is set, else all of them, with the Router that
// picks each record's (by its rules; the default destination for the
// rest).
func Select(cfg *config.Config, name string) ([]config.Target, *route.Router, error) {
	if name == "" {
		ts := cfg.Targets()
		if len(ts) == 0 {
			return nil, nil, fmt.Errorf("the configuration has no destination")
		}
		return ts, route.New(ts), nil
	}
	t, err := Pick(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	ts := []config.Target{t}
	r, _ := route.Fixed([]string{t.Name}, t.Name)
	return ts, r, nil
}

// Send is where a send goes: one destination (a configuration without
// destinations, or --destination), sent as a plain ingest.Job; or several
// (Routing), each record to its own. The zero Send is a dry run's: no
// destination, no run record.
type Send struct {
	// Routing is set when the send goes to several destinations.
	Routing *ingest.Routing
	// OnAttempt feeds the run record of a single destination's send.
	OnAttempt func(ingest.Attempt)
	single    *config.Target
	named     bool // --destination picked it
	runs      []*verify.RunRecord
	names     []string
}

// ForSend builds the destinations of a send to cfg (name: --destination),
// each destination's uploader from newUploader; up is the one
// destination's, nil with several. checks (--check, --verify) read one
// destination: with several they are refused.
func ForSend(cfg *config.Config, name string, checks bool, newUploader NewUploader) (s *Send, up ingest.Uploader, err error) {
	if name != "" || len(cfg.Destinations) == 0 {
		t, err := Pick(cfg, name)
		if err != nil {
			return nil, nil, err
		}
		if checks && t.Index >= 0 {
			return nil, nil, fmt.Errorf("--check and --verify read back the default destination only; check %s with \"ccfpush check --dcr FILE\"", t.Name)
		}
		if up, err = newUploader(t.Config); err != nil {
			return nil, nil, err
		}
		s = &Send{single: &t, named: name != ""}
		s.addRun(t)
		s.OnAttempt = ingest.Finished(s.runs[0].Add)
		return s, up, nil
	}
	if checks {
		return nil, nil, fmt.Errorf("--check and --verify read one destination; the configuration has %d: add --destination NAME (%s)", len(cfg.Targets()), strings.Join(cfg.TargetNames(), ", "))
	}
	ts, r, err := Select(cfg, "")
	if err != nil {
		return nil, nil, err
	}
	s = &Send{Routing: &ingest.Routing{Route: r.Route, Default: r.Default()}}
	for _, t := range ts {
		up, err := newUploader(t.Config)
		if err != nil {
			return nil, nil, fmt.Errorf("destination %s: %w", t.Name, err)
		}
		s.addRun(t)
		s.Routing.Lanes = append(s.Routing.Lanes, ingest.Lane{Name: t.Name, Up: up, OnAttempt: ingest.Finished(s.runs[len(s.runs)-1].Add)})
	}
	return s, nil, nil
}

func (s *Send) addRun(t config.Target) {
	s.runs = append(s.runs, &verify.RunRecord{Started: time.Now().UTC(), DCRImmutableID: t.Config.DCRImmutableID, Stream: t.Config.StreamName})
	s.names = append(s.names, t.Name)
}

// Config returns the configuration of a single destination's send (what
// --check reads); nil with several or none.
func (s *Send) Config() (*config.Config, error) {
	if s.single == nil {
		return nil, nil
	}
	return s.single.Config, nil
}

// DeadLetter is the dead-letter file of a send from input: the one given
// (--dead-letter), else the default, named for the destination when a
// single one other than the default was picked
// (<data>.NAME.failed.ndjson).
func (s *Send) DeadLetter(given, input string) string {
	if given != "" || s.single == nil || s.single.Index < 0 {
		return given
	}
	return ingest.DeadLetterFor(ingest.DeadLetterPath(input), s.single.Name)
}

// Finish writes, after job ran, each destination's run record next to its
// dead-letter file (verify reads it), and puts the stats of a single
// named destination under its name too; what could not be written is
// added to the warnings.
func (s *Send) Finish(job *ingest.Job, res *ingest.Result) {
	if s.named {
		st := res.Stats
		res.Stats.Destinations = map[string]ingest.Stats{s.single.Name: st}
	}
	for i, run := range s.runs {
		lane := job
		if s.Routing != nil {
			lane = job.LaneJob(*s.Routing, i)
		}
		dl := lane.DeadLetterTarget()
		if dl == "" {
			continue
		}
		run.Source = job.Name
		run.Records = job.Skip + res.Stats.RecordsRead
		run.SetInput(job.Read.Spec)
		if err := verify.SaveRunRecord(dl, job.Name, job.Skip, run); err != nil {
			res.Stats.Warnings = append(res.Stats.Warnings, fmt.Sprintf("%v: ccfpush verify cannot name the requests", err))
		}
	}
}

// CheckOutputs refuses a dead-letter file of a destination of job that is
// a connector configuration (config.CheckOutput): the files named after a
// destination (<data>.NAME.failed.ndjson) are derived, not given, and must
// not land on one either.
func (s *Send) CheckOutputs(job *ingest.Job, cfgPath string) error {
	for i, name := range s.names {
		lane := job
		if s.Routing != nil {
			lane = job.LaneJob(*s.Routing, i)
		}
		if err := config.CheckOutput("dead-letter of destination "+name, lane.DeadLetterTarget(), cfgPath); err != nil {
			return err
		}
	}
	return nil
}

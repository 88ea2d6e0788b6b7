package web

import (
	"context"

	"github.com/ccfpush/ccfpush/internal/doctor"
)

// DoctorChecker is the Checker of "Test connection": doctor's checks. The
// data check is left out: the Send page reads the file itself.
type DoctorChecker struct {
	// NewEnv returns the doctor environment for req (the composition root
	// fills in the network and the Azure adapters) and a function that
	// releases what it opened.
	NewEnv func(req CheckRequest) (*doctor.Env, func())
}

var _ Checker = (*DoctorChecker)(nil)

// Check implements Checker.
func (c *DoctorChecker) Check(ctx context.Context, req CheckRequest, report func(CheckResult)) []CheckResult {
	env, release := c.NewEnv(req)
	if release != nil {
		defer release()
	}
	checks := doctor.Checks(env)
	if req.FromPrefill && req.Config != nil {
		// No file yet (demo): check the values in use, not a missing file.
		cfg := *req.Config
		env.Config = &cfg
		kept := checks[:0]
		for _, ch := range checks {
			if ch.Name != doctor.CheckConfig {
				kept = append(kept, ch)
			}
		}
		checks = kept
	}
	var fwd func(doctor.Result)
	if report != nil {
		fwd = func(r doctor.Result) { report(checkResultOf(r)) }
	}
	results := doctor.Run(ctx, checks, env, fwd)
	results = append(results, doctor.RunDestinations(ctx, env, fwd)...)
	out := make([]CheckResult, len(results))
	for i, r := range results {
		out[i] = checkResultOf(r)
	}
	return out
}

func checkResultOf(r doctor.Result) CheckResult {
	res := CheckResult{Name: r.Check, Status: string(r.Status), Detail: r.Summary(), Hint: r.Hint, Duration: r.Duration}
	for _, f := range r.Findings {
		res.Findings = append(res.Findings, CheckFinding{Status: string(f.Status), Message: f.Message, Hint: f.Hint})
	}
	return res
}

package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// How "run --every" runs its command. Each run is a session of its own (a
// process group: the command, a wrapper script's children, a pipeline), so
// that the whole run can be stopped, not only the process ccfpush started:
// at the time limit and at shutdown the group gets SIGTERM, then SIGKILL
// after waitDelay, and the run is over only when no process of the group
// is left. Processes the command leaves behind when it exits are stopped
// the same way, so runs never overlap.
//
// The command does not inherit the daemon's environment: only the
// variables of commandEnv and those named with PassEnv (--pass-env). The
// daemon's own secrets (CCFPUSH_*, AZURE_*) reach it only when named.

// commandEnv are the variables a command gets from the daemon's
// environment without being asked for: what programs need to run (path,
// home, locale, time zone, temporary directory) and to reach the network
// (proxies, trust store).
var commandEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// CommandEnv returns the environment of a scheduled command: the entries of
// environ named by commandEnv or pass. A name ending in "*" is a prefix.
func CommandEnv(environ, pass []string) []string {
	names := append(append([]string(nil), commandEnv...), pass...)
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		for _, n := range names {
			if p, wild := strings.CutSuffix(n, "*"); wild && strings.HasPrefix(k, p) || k == n {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// CheckPassEnv checks --pass-env names: variable names, or prefixes ending
// in "*".
func CheckPassEnv(names []string) error {
	for _, n := range names {
		p := strings.TrimSuffix(n, "*")
		if p == "" || strings.ContainsAny(p, "=* \t") {
			return fmt.Errorf("pass-env %q: want a variable name such as SCANNER_TOKEN, or a prefix such as SCANNER_*", n)
		}
	}
	return nil
}

// runOutcome is how one run of a command ended.
type runOutcome struct {
	err      error         // the command's exit status (an *exec.ExitError) or why it could not run
	stop     string        // why ccfpush stopped it: "", "timeout", "shutdown" or "output"
	took     time.Duration // from start to the end of the group
	group    int           // the process group (its leader's pid)
	leftover bool          // processes were left behind when the leader exited, and were stopped
	stuck    error         // processes of the group survived SIGKILL
}

// runCommand runs argv with env in a process group of its own, writing its
// standard output to stdout (the run is stopped when stdout fails: the
// output is over its limit) and its standard error to stderr. It returns
// once no process of the group is left, or once they could not be stopped.
func runCommand(ctx context.Context, argv, env []string, stdout, stderr io.Writer, timeout time.Duration) runOutcome {
	start := time.Now()
	// Pipes of our own: cmd.Wait then returns when the command exits,
	// whoever else holds the write ends; copying goes on until the group
	// is gone.
	outR, outW, err := os.Pipe()
	if err != nil {
		return runOutcome{err: err}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return runOutcome{err: err}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = sessionAttr()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return runOutcome{err: err}
	}
	res := runOutcome{group: cmd.Process.Pid}

	overflow := make(chan struct{})
	copied := make(chan struct{}, 2)
	go func() {
		if _, err := io.Copy(stdout, outR); err != nil {
			close(overflow)
			io.Copy(io.Discard, outR) // let the writers finish while they are stopped
		}
		copied <- struct{}{}
	}()
	go func() {
		io.Copy(stderr, errR)
		copied <- struct{}{}
	}()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case res.err = <-exited:
	case <-timer.C:
		res.stop = "timeout"
	case <-ctx.Done():
		res.stop = "shutdown"
	case <-overflow:
		res.stop = "output"
	}
	if res.stop != "" {
		signalGroup(res.group, false)
		select {
		case res.err = <-exited:
		case <-time.After(waitDelay):
			signalGroup(res.group, true)
			res.err = <-exited
		}
	}
	// The leader is gone; what is left of its group goes with it.
	res.leftover, res.stuck = endGroup(res.group, waitDelay)
	for range 2 {
		select {
		case <-copied:
		case <-time.After(waitDelay):
			// A process outside the group (it made a session of
			// its own) still holds the pipes: stop reading.
			outR.Close()
			errR.Close()
			<-copied
		}
	}
	outR.Close()
	errR.Close()
	if res.stop == "" {
		select {
		case <-overflow: // the command had ended before the overflow was seen
			res.stop = "output"
		default:
		}
	}
	res.took = time.Since(start)
	return res
}

// lookCommand checks that argv[0] can be run, as exec would find it.
func lookCommand(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return fmt.Errorf("command %s: %w", name, err)
	}
	return nil
}

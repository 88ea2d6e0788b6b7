//go:build !unix

package cli

import "os"

// scheduleTerminate stops a command. Without Unix signals there is no
// polite way to ask: it is killed.
func scheduleTerminate(p *os.Process) error { return p.Kill() }

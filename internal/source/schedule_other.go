//go:build !unix

package source

import "os"

// terminate stops a command. Without Unix signals there is no
// polite way to ask: it is killed.
func terminate(p *os.Process) error { return p.Kill() }

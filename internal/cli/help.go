package cli

import (
	"embed"
	"strings"
)

// The commands' long help texts are prose, kept as files next to the
// commands (help/<command>.txt) rather than as Go string literals.
//
//go:embed help/*.txt
var helpFS embed.FS

// help returns the long help of a command, with each {name} of oldnew
// replaced by its value (pairs, as strings.NewReplacer takes them).
func help(name string, oldnew ...string) string {
	b, err := helpFS.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("cli: no help text " + name) // a build mistake: every file is embedded
	}
	return strings.NewReplacer(oldnew...).Replace(strings.TrimSuffix(string(b), "\n"))
}

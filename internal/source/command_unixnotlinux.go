//go:build unix && !linux

package source

// becomeSubreaper: only Linux has subreapers; orphans of a run go to init,
// which reaps them.
func becomeSubreaper() {}

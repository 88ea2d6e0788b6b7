package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestWriteNewFileGetsModeLessUmask(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := WriteBytes(p, 0o600, []byte("new")); err != nil {
		t.Fatalf("WriteBytes: %v", err)
	}
	assertContent(t, p, "new")
	assertPerm(t, p, 0o600)
	assertOnlyFiles(t, dir, "f.json")
}

func TestWriteRegularFileKeepsItsMode(t *testing.T) {
	for _, perm := range []fs.FileMode{0o644, 0o600, 0o640, 0o400} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			writeOld(t, p, perm)
			before := stat(t, p)
			// The caller asks for 0600: an existing file is not the
			// writer's to re-permission.
			if err := WriteBytes(p, 0o600, []byte("new")); err != nil {
				t.Fatalf("WriteBytes: %v", err)
			}
			assertContent(t, p, "new")
			assertPerm(t, p, before.Mode().Perm())
			if os.SameFile(before, stat(t, p)) {
				t.Errorf("the file was written in place, want a new file renamed over it")
			}
			assertOnlyFiles(t, dir, "f.json")
		})
	}
}

func TestWriteFailureKeepsOldAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	writeOld(t, p, 0o644)
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the fill error", err)
	}
	assertContent(t, p, "old")
	assertOnlyFiles(t, dir, "f.json")
}

func TestWriteSymlinkUpdatesTargetAndKeepsLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	link2 := filepath.Join(dir, "link2.json") // a chain, relative
	writeOld(t, target, 0o640)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("link.json", link2); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(link2, 0o600, []byte("new")); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{link, link2} {
		if fi, _ := os.Lstat(l); fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s was replaced by a file", l)
		}
	}
	assertContent(t, target, "new")
	assertPerm(t, target, 0o640)
	assertOnlyFiles(t, dir, "link.json", "link2.json", "real.json")
}

func TestWriteDanglingSymlinkCreatesTarget(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(link, 0o600, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	assertContent(t, filepath.Join(dir, "real.json"), "new")
}

// TestWriteCharDeviceWritesThrough writes to a copy of /dev/null made with
// mknod inside the test's directory (never the system's own device).
// TestWriteOwnDescriptorKeepsOffset: /dev/stdout redirected to a regular
// file (through a symlink, as /dev/stdout is one) continues where the
// descriptor is, as a shell's redirection does, rather than replacing the
// file.
func TestWriteDirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBytes(dir, 0o600, []byte("x")); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Write(dir) = %v, want an error saying it is a directory", err)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no")
	err := WriteBytes(filepath.Join(dir, "f"), 0o600, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write = %v, want fs.ErrNotExist", err)
	}
	if want := "directory " + dir + " does not exist"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestWriteInStaysInsideRoot(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if err := WriteIn(root, "sub/a.json", 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "a"); return err }); err != nil {
		t.Fatal(err)
	}
	assertContent(t, filepath.Join(dir, "sub", "a.json"), "a")
	assertOnlyFiles(t, filepath.Join(dir, "sub"), "a.json")

	if err := os.Symlink(outside, filepath.Join(dir, "esc")); err != nil {
		t.Fatal(err)
	}
	if err := WriteIn(root, "esc/b.json", 0o644, func(io.Writer) error { return nil }); err == nil {
		t.Errorf("WriteIn through a symlink leaving the root succeeded")
	}
	if err := os.Symlink("sub/a.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := WriteIn(root, "link.json", 0o644, func(io.Writer) error { return nil }); err == nil {
		t.Errorf("WriteIn over a symlink succeeded, want it refused")
	}
	assertOnlyFiles(t, outside)
}

func writeOld(t *testing.T, p string, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

func stat(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func assertContent(t *testing.T, p, want string) {
	t.Helper()
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Errorf("%s = %q (%v), want %q", p, got, err, want)
	}
}

func assertPerm(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	if got := stat(t, p).Mode().Perm(); got != want {
		t.Errorf("%s mode = %v, want %v", p, got, want)
	}
}

// assertUntouched checks that p is the same file with the same mode: not
// renamed over, not chmodded.
func assertUntouched(t *testing.T, p string, before fs.FileInfo) {
	t.Helper()
	after := stat(t, p)
	if !os.SameFile(before, after) {
		t.Errorf("%s was replaced", p)
	}
	if after.Mode() != before.Mode() {
		t.Errorf("%s mode %v, was %v", p, after.Mode(), before.Mode())
	}
}

func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func skipOn(t *testing.T, goos ...string) {
	t.Helper()
	for _, g := range goos {
		if runtime.GOOS == g {
			t.Skip("not on " + g)
		}
	}
}

package web

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/generate"
)

// Data files live under the working directory and nowhere else: the browser
// names them by a path relative to it, and every way out — an absolute
// path, a ".." element, a symlink whose target lies outside — is refused.
// Files are then opened through an os.Root, which also refuses escapes that
// a concurrent rename or symlink swap could create after the check.

// ErrPathEscape is wrapped by errors for paths that would leave the working
// directory.
var ErrPathEscape = errors.New("path leaves the working directory")

// dataExts are the extensions offered and accepted as data files.
var dataExts = []string{".json", ".ndjson"}

func hasDataExt(name string) bool {
	return slices.Contains(dataExts, strings.ToLower(filepath.Ext(name)))
}

// cleanRel checks a path from the browser and returns it in slash form,
// cleaned. It refuses what could name something outside the root before
// touching the file system.
func cleanRel(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("no file given")
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%q: %w: NUL byte", p, ErrPathEscape)
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || filepath.IsAbs(p) || filepath.VolumeName(p) != "":
		return "", fmt.Errorf("%q: %w: absolute paths are not accepted, give a path relative to the working directory", p, ErrPathEscape)
	}
	for _, el := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return "", fmt.Errorf("%q: %w: \"..\" is not accepted", p, ErrPathEscape)
		}
	}
	c := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if c == "." {
		return "", errors.New("no file given")
	}
	return c, nil
}

// within reports whether target is root or lies below it; both must be
// absolute, clean and free of symlinks.
func within(root, target string) bool {
	rel, err := filepath.Rel(root, target)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

// workspace is the working directory the UI may read data files from and
// write generated files to.
type workspace struct {
	dir    string // absolute, symlinks resolved
	skip   string // a directory not to list (the state dir), resolved; may be ""
	config string // the active connector configuration, never a data file
}

func newWorkspace(dir, skip, configPath string) (*workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("working directory %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("working directory %s: %w", dir, err)
	}
	ws := &workspace{dir: real, config: configPath}
	if skip != "" {
		if s, err := filepath.Abs(skip); err == nil {
			if rs, err := filepath.EvalSymlinks(s); err == nil {
				s = rs
			}
			ws.skip = s
		}
	}
	return ws, nil
}

// resolve checks rel and returns the file's path relative to the root with
// every symlink resolved (so that an os.Root can open it), or an error
// wrapping ErrPathEscape when it leads outside.
func (ws *workspace) resolve(rel string) (string, error) {
	c, err := cleanRel(rel)
	if err != nil {
		return "", err
	}
	full := filepath.Join(ws.dir, filepath.FromSlash(c))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file in %s", c, ws.dir)
		}
		return "", fmt.Errorf("%s: %w", c, err)
	}
	if !within(ws.dir, real) {
		return "", fmt.Errorf("%q: %w: it is a symlink to %s", c, ErrPathEscape, real)
	}
	r, _ := filepath.Rel(ws.dir, real)
	return r, nil
}

// openData opens a data file for reading.
func (ws *workspace) openData(rel string) (*os.File, string, error) {
	c, err := cleanRel(rel)
	if err != nil {
		return nil, "", err
	}
	if !hasDataExt(c) {
		return nil, "", fmt.Errorf("%s: want a .json or .ndjson file", c)
	}
	real, err := ws.resolve(c)
	if err != nil {
		return nil, "", err
	}
	root, err := os.OpenRoot(ws.dir)
	if err != nil {
		return nil, "", fmt.Errorf("open working directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(real)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", c, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("%s: %w", c, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", fmt.Errorf("%s: not a regular file", c)
	}
	if isConfig, _ := config.Identify(f, ws.config); isConfig {
		f.Close()
		return nil, "", fmt.Errorf("%s: %w", c, errConfigFile)
	}
	return f, c, nil
}

// errConfigFile refuses a connector configuration where a data file is
// wanted: it holds the secret, which must never be sent as a record nor
// be overwritten by generated data.
var errConfigFile = errors.New("this is a connector configuration (it holds the secret), not a data file: choose another file")

// isConfigAt reports whether the file at full is the active
// configuration or parses as a connector configuration (config.Identify).
// Such files are never listed, sent or overwritten.
func (ws *workspace) isConfigAt(full string) bool {
	f, err := os.Open(full)
	if err != nil {
		return false
	}
	defer f.Close()
	isConfig, _ := config.Identify(f, ws.config)
	return isConfig
}

// createTarget checks where a new file may be written and returns its path
// relative to the root, symlinks of existing parts resolved, and whether
// a file is already there. The parent directory must exist.
func (ws *workspace) createTarget(rel string) (target string, exists bool, err error) {
	c, err := cleanRel(rel)
	if err != nil {
		return "", false, err
	}
	if !hasDataExt(c) {
		return "", false, fmt.Errorf("%s: the name must end in .json (a JSON array) or .ndjson (one record per line)", c)
	}
	full := filepath.Join(ws.dir, filepath.FromSlash(c))
	if _, err := os.Lstat(full); err == nil {
		real, err := ws.resolve(c)
		if err != nil {
			return "", false, err
		}
		if ws.isConfigAt(ws.abs(real)) {
			return "", false, fmt.Errorf("%s: %w", c, errConfigFile)
		}
		return real, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("%s: %w", c, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(full))
	if err != nil {
		return "", false, fmt.Errorf("%s: folder %s does not exist", c, path.Dir(c))
	}
	if !within(ws.dir, dir) {
		return "", false, fmt.Errorf("%q: %w: its folder is a symlink to %s", c, ErrPathEscape, dir)
	}
	r, _ := filepath.Rel(ws.dir, filepath.Join(dir, filepath.Base(full)))
	return r, false, nil
}

// abs returns the absolute path of a path relative to the root.
func (ws *workspace) abs(rel string) string { return filepath.Join(ws.dir, filepath.FromSlash(rel)) }

// DataFile is one entry of the data-file listing.
type DataFile struct {
	Path    string    `json:"path"` // relative to the working directory, slash-separated
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// Listing bounds: the picker is for data files near the working directory,
// not for crawling a home directory.
const (
	listMaxDepth   = 4
	listMaxEntries = 500
)

// skipDirs are never descended into.
var skipDirs = map[string]bool{"node_modules": true, "vendor": true, "__pycache__": true}

// list returns the .json and .ndjson files under the root, newest first.
// Hidden directories, symlinked directories, symlinks leading outside and
// connector configurations (isConfigAt) are left out.
func (ws *workspace) list() ([]DataFile, bool, error) {
	var out []DataFile
	truncated := false
	err := filepath.WalkDir(ws.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == ws.dir {
				return err
			}
			return nil // an unreadable subfolder hides only itself
		}
		rel, _ := filepath.Rel(ws.dir, p)
		if d.IsDir() {
			if p == ws.dir {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || skipDirs[d.Name()] || p == ws.skip ||
				strings.Count(rel, string(filepath.Separator)) >= listMaxDepth {
				return fs.SkipDir
			}
			return nil
		}
		if !hasDataExt(d.Name()) {
			return nil
		}
		if len(out) >= listMaxEntries {
			truncated = true
			return fs.SkipAll
		}
		slashRel := filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			if _, err := ws.resolve(slashRel); err != nil {
				return nil
			}
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || ws.isConfigAt(p) {
			return nil
		}
		out = append(out, DataFile{Path: slashRel, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", ws.dir, err)
	}
	slices.SortFunc(out, func(a, b DataFile) int {
		if c := b.ModTime.Compare(a.ModTime); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, truncated, nil
}

// write writes a file at rel (from createTarget) through the one safe
// writer, every step inside the working directory's os.Root: a temporary
// file in the same folder and a rename, so that a reader (or a send in
// progress) never sees a half-written file.
func (ws *workspace) write(rel string, fill func(w io.Writer) error) error {
	root, err := os.OpenRoot(ws.dir)
	if err != nil {
		return fmt.Errorf("open working directory: %w", err)
	}
	defer root.Close()
	if err := atomicfile.WriteIn(root, rel, generate.FileMode, fill); err != nil {
		return fmt.Errorf("%s: %w", filepath.ToSlash(rel), err)
	}
	return nil
}

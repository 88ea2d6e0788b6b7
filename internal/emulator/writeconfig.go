package emulator

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"github.com/ccfpush/ccfpush/internal/config"
)

// ConfigExistsError refuses to write the emulator's configuration over a
// file the emulator did not write: it may be a real connector
// configuration, whose secret Azure shows only once.
type ConfigExistsError struct {
	Path     string
	Endpoint string // the file's dce_endpoint; "" when it is no configuration
}

func (e *ConfigExistsError) Error() string {
	what := "it is not a connector configuration"
	if e.Endpoint != "" {
		what = "its dce_endpoint is " + e.Endpoint + ": it may hold a real application secret, which Azure shows only once"
	}
	return fmt.Sprintf("%s exists and was not written by the emulator (%s); nothing was changed. "+
		"Write the emulator's configuration to another file (--write-config emulator_config.json, then --config emulator_config.json), "+
		"or pass --overwrite-config to replace it", e.Path, what)
}

// checkConfigTarget says whether the emulator may write its configuration
// to path: when nothing is there, when it is a device or a pipe
// (/dev/stdout), an empty file, or a configuration the emulator wrote
// (WrittenByEmulator), or when overwrite; else a *ConfigExistsError.
func checkConfigTarget(path string, overwrite bool) error {
	fi, err := os.Stat(path)
	switch {
	case overwrite, errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("configuration file %s: %w", path, err)
	case !fi.Mode().IsRegular() || fi.Size() == 0:
		return nil
	}
	c, err := config.Load(path)
	if err != nil {
		return &ConfigExistsError{Path: path}
	}
	if WrittenByEmulator(c) {
		return nil
	}
	return &ConfigExistsError{Path: path, Endpoint: c.DCEEndpoint}
}

// WrittenByEmulator reports whether c has the shape of the configuration
// the emulator writes (ConnectorConfig): the endpoint, the authority and
// the query endpoint on this machine, over https, and a CA to trust. No
// Azure configuration has that shape, and what it holds is an emulator's
// secret, which the emulator hands out again at every start; so such a file
// may be replaced. The shape is all the mark there is: the file stays a
// plain connector configuration that the old tool reads.
func WrittenByEmulator(c *config.Config) bool {
	if c.CAFile == "" {
		return false
	}
	for _, v := range []string{c.DCEEndpoint, c.AuthorityHost} {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || !config.IsLoopbackHost(u.Hostname()) {
			return false
		}
	}
	return true
}

// writeConfigFile writes ConnectorConfig (or SecretRefConfig) to Options.ConfigFile, checking
// the target again (a file may have appeared since New).
func (e *Emulator) writeConfigFile() error {
	path := e.opts.ConfigFile
	if err := checkConfigTarget(path, e.opts.OverwriteConfig); err != nil {
		return err
	}
	cfg := e.configToWrite()
	if err := config.Save(path, &cfg); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

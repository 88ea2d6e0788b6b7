package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileConfig mirrors Config with the secret as a plain string: the file is
// the one place the real secret is written. Field order is the file's key
// order, the original tool's six first.
type fileConfig struct {
	TenantID                string `json:"tenant_id"`
	ApplicationID           string `json:"application_id"`
	ApplicationSecret       string `json:"application_secret"`
	DCEEndpoint             string `json:"dce_endpoint"`
	DCRImmutableID          string `json:"dcr_immutable_id"`
	StreamName              string `json:"stream_name"`
	Cloud                   string `json:"cloud,omitempty"`
	AuthorityHost           string `json:"authority_host,omitempty"`
	CAFile                  string `json:"ca_file,omitempty"`
	Auth                    string `json:"auth,omitempty"`
	ApplicationSecretFile   string `json:"application_secret_file,omitempty"`
	ClientCertificatePath   string `json:"client_certificate_path,omitempty"`
	ManagedIdentityClientID string `json:"managed_identity_client_id,omitempty"`
}

// FileMode is the permission of saved configuration files: they hold the
// secret, so only the owner may read them.
const FileMode fs.FileMode = 0o600

// Marshal returns the file form of c: 2-space indented JSON, the six
// original keys first, optional keys only when set, the REAL secret.
func Marshal(c *Config) ([]byte, error) {
	fc := fileConfig{
		TenantID:                c.TenantID,
		ApplicationID:           c.ApplicationID,
		ApplicationSecret:       c.ApplicationSecret.Reveal(),
		DCEEndpoint:             c.DCEEndpoint,
		DCRImmutableID:          c.DCRImmutableID,
		StreamName:              c.StreamName,
		Cloud:                   c.Cloud,
		AuthorityHost:           c.AuthorityHost,
		CAFile:                  c.CAFile,
		Auth:                    c.Auth,
		ApplicationSecretFile:   c.ApplicationSecretFile,
		ClientCertificatePath:   c.ClientCertificatePath,
		ManagedIdentityClientID: c.ManagedIdentityClientID,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "<" and "&" readable in URLs and placeholders
	if err := enc.Encode(fc); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes c to path atomically with mode 0600: a temporary file in the
// same directory is written, synced and renamed over path, then the
// directory is synced, so a crash leaves either the old file or the new one,
// never a torn one. A symlink at path is followed (its target is replaced).
// The file holds the real secret.
func Save(path string, c *Config) (err error) {
	data, err := Marshal(c)
	if err != nil {
		return err
	}
	if target, lerr := filepath.EvalSymlinks(path); lerr == nil {
		path = target
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it explicit and independent
	// of that detail.
	if err = tmp.Chmod(FileMode); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("save config %s: sync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The file is in place; only its durability across a power cut is
		// unconfirmed.
		return fmt.Errorf("save config %s: sync directory: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory (EINVAL), nor can Windows
	// (access denied); the rename is then as durable as the platform allows.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) &&
		!errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

package config

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
)

// InitField is one value "config init" asks for (Prompt) or takes as a
// flag (Flag, Usage).
type InitField struct {
	Key    string
	Flag   string
	Prompt string
	Usage  string
	IsPath bool // a file path: made absolute so the file means the same from any directory
}

// InitFields are the values of "config init", in prompt order. The secret
// has no flag on purpose: an argument lands in shell history and in ps.
var InitFields = []InitField{
	// The cloud comes first: the endpoint's domain is validated against it.
	{Key: KeyCloud, Flag: "cloud", Prompt: "Cloud (AzurePublic, AzureUSGovernment, AzureChina; empty = AzurePublic)", Usage: "AzurePublic (default), AzureUSGovernment or AzureChina"},
	{Key: KeyTenantID, Flag: "tenant-id", Prompt: "Directory (tenant) ID", Usage: "Directory (tenant) ID (GUID)"},
	{Key: KeyApplicationID, Flag: "application-id", Prompt: "Application (client) ID", Usage: "Application (client) ID (GUID)"},
	{Key: KeyApplicationSecret, Prompt: "Client secret Value"},
	{Key: KeyDCEEndpoint, Flag: "dce-endpoint", Prompt: "DCE Logs Ingestion endpoint", Usage: "Data Collection Endpoint logs ingestion URL (https://...)"},
	{Key: KeyDCRImmutableID, Flag: "dcr-immutable-id", Prompt: "DCR immutable id", Usage: "Data Collection Rule immutable id (dcr-...)"},
	{Key: KeyStreamName, Flag: "stream-name", Prompt: "Stream name", Usage: "stream declared in the DCR (Custom-...)"},
	// Optional: Enter leaves it empty. verify and doctor read back with it.
	{Key: KeyWorkspaceID, Flag: "workspace-id", Prompt: "Log Analytics workspace ID, to verify what landed (optional; the workspace → Overview)",
		Usage: "Log Analytics workspace ID (GUID), for ccfpush verify and doctor's workspace check"},
	{Key: KeyQueryEndpoint, Flag: "query-endpoint", Usage: "Logs Query API endpoint (default per cloud: https://api.loganalytics.io, .us, .azure.cn)"},
	{Key: KeyAuth, Flag: "auth", Usage: "client_secret (default), client_certificate, managed_identity, workload_identity, azure_cli, default"},
	{Key: KeyAuthorityHost, Flag: "authority-host", Usage: "custom Entra authority (https URL), e.g. the emulator's"},
	{Key: KeyCAFile, Flag: "ca-file", Usage: "extra trusted CA certificate (PEM), e.g. the emulator's ca.pem", IsPath: true},
	{Key: KeyApplicationSecretFile, Flag: "application-secret-file", Usage: "file holding the client secret (read at run time)", IsPath: true},
	{Key: KeyClientCertificatePath, Flag: "client-certificate-path", Usage: "certificate and key (PEM or PKCS#12) for auth client_certificate", IsPath: true},
	{Key: KeyManagedIdentityClientID, Flag: "managed-identity-client-id", Usage: "client id of a user-assigned managed identity"},
}

// Prompter reads answers for PromptAll: console.Prompter on a terminal, a
// script in tests.
type Prompter interface {
	ReadLine(ctx context.Context, prompt string) (string, error)
	ReadSecret(ctx context.Context, prompt string) (string, error)
}

// ValidateForSave validates c as it is about to be written to a file in
// dir. A value the file
// leaves empty but the environment supplies (a secret kept in
// CCFPUSH_APPLICATION_SECRET, say) is legitimate, so empty fields are
// filled from the environment for the check only; relative paths are
// checked the way Resolve will read them, relative to the file.
func (c *Config) ValidateForSave(dir string, getenv func(string) string) error {
	cp := *c
	env := &Config{}
	env.ApplyEnv(getenv)
	for _, k := range Keys {
		if v, _ := cp.Get(k); v == "" {
			ev, _ := env.Get(k)
			cp.Set(k, ev)
		}
	}
	cp.ResolvePaths(dir)
	return cp.Validate()
}

// ErrInputEnded is returned by PromptAll when the answers ran out.
var ErrInputEnded = errors.New("config init: input ended before all values were entered; nothing saved")

// PromptAll asks for the connector values on w, showing the current ones
// (Enter keeps them) and re-asking a field until it is valid. The secret
// is asked only when the auth method uses it, without echo.
func PromptAll(ctx context.Context, c *Config, p Prompter, w io.Writer) error {
	fmt.Fprintln(w, "Enter the connector values; Enter keeps the value in [brackets].")
	for _, f := range InitFields {
		if f.Prompt == "" {
			continue
		}
		secret := f.Key == KeyApplicationSecret
		if secret && (c.AuthMethod() != AuthClientSecret || c.ApplicationSecretFile != "") {
			continue
		}
		for {
			cur, _ := c.Get(f.Key)
			shown := c.Shown(f.Key) // a secret, or a value that looks like one, masked
			if cur == "" {
				shown = ""
			}
			prompt := f.Prompt
			if shown != "" {
				prompt += " [" + shown + "]"
			}
			prompt += ": "
			var ans string
			var err error
			if secret {
				ans, err = p.ReadSecret(ctx, prompt)
			} else {
				ans, err = p.ReadLine(ctx, prompt)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return ErrInputEnded
				}
				if ctx.Err() != nil {
					return fmt.Errorf("config init: interrupted; nothing saved: %w", ctx.Err())
				}
				return fmt.Errorf("config init: read %s: %w", f.Key, err)
			}
			ans = strings.TrimSpace(ans)
			if ans == "" {
				ans = cur
			}
			if fe := ValidateField(f.Key, ans, c); fe != nil {
				fmt.Fprintf(w, "  %s\n", fe.Rule)
				continue
			}
			c.Set(f.Key, ans)
			break
		}
	}
	return nil
}

// ReadSecret reads the secret from the first line of in, or through p
// (without echo, when in is a terminal).
func ReadSecret(ctx context.Context, in io.Reader, p Prompter) (string, error) {
	var line string
	var err error
	if p != nil {
		line, err = p.ReadSecret(ctx, "Client secret Value: ")
	} else {
		line, err = bufio.NewReader(in).ReadString('\n')
		if errors.Is(err, io.EOF) && line != "" {
			err = nil
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("stdin is empty; pipe the secret's Value, e.g. printf '%s\\n' \"$SECRET\" | ccfpush config init")
	}
	return line, nil
}

// InitOptions say what Init writes.
type InitOptions struct {
	Path   string            // the configuration file
	Values map[string]string // by key, from flags
	// Secret reads the client secret, when it is given (on stdin); nil
	// when it is not.
	Secret func() (string, error)
	// Prompter, when set, asks for every value on Prompts (interactive).
	Prompter Prompter
	Prompts  io.Writer
	// Force starts from an empty configuration instead of the file's.
	Force bool
	// NoValidate saves even invalid values.
	NoValidate bool
	Getenv     func(string) string
}

// SecretInputError is a failure to read the secret given to Init.
type SecretInputError struct{ Err error }

func (e *SecretInputError) Error() string { return e.Err.Error() }
func (e *SecretInputError) Unwrap() error { return e.Err }

// Init merges the values (and the secret) into the configuration file
// (unless Force), asks for the rest when there is a Prompter, validates
// what is to be written (unless NoValidate) and saves it (Save). Errors
// to act on: *LoadError (the file is damaged), *SecretInputError,
// ErrInputEnded, ValidationErrors (nothing saved).
func Init(ctx context.Context, o InitOptions) error {
	c := &Config{}
	if !o.Force {
		loaded, err := Load(o.Path)
		switch {
		case err == nil:
			c = loaded
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	for k, v := range o.Values {
		c.Set(k, v)
	}
	if o.Secret != nil {
		secret, err := o.Secret()
		if err != nil {
			return &SecretInputError{Err: err}
		}
		c.ApplicationSecret = Secret(secret)
	}
	if o.Prompter != nil {
		if err := PromptAll(ctx, c, o.Prompter, o.Prompts); err != nil {
			return err
		}
	}
	if !o.NoValidate {
		if err := c.ValidateForSave(filepath.Dir(o.Path), o.Getenv); err != nil {
			return err
		}
	}
	if err := Save(o.Path, c); err != nil {
		return err
	}
	if n := len(c.Destinations); n > 0 && o.Prompts != nil {
		// Kept as they were: config init edits the top-level keys only.
		fmt.Fprintf(o.Prompts, "note: the file's %d other destinations (%s) were kept unchanged; config init sets the top-level keys (the default destination) only: edit \"destinations\" in the file (docs/configuration.md, Destinations)\n",
			n, strings.Join(c.TargetNames()[boolInt(c.HasDefault()):], ", "))
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

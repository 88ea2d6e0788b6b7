package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotFound is wrapped by the error Resolve returns when the configuration
// file does not exist and the environment supplies nothing either.
var ErrNotFound = errors.New("config file not found")

// notFoundError says what to do about a missing file; it matches
// ErrNotFound and fs.ErrNotExist.
type notFoundError struct{ path string }

func (e *notFoundError) Error() string {
	if e.path == "" {
		return "no config file given and no CCFPUSH_* variables set"
	}
	return fmt.Sprintf("config file %s not found; run `ccfpush config init`", e.path)
}

func (e *notFoundError) Is(target error) bool {
	return target == ErrNotFound || target == fs.ErrNotExist
}

// LoadError is a problem with a configuration file. Line and Column are
// 1-based and zero when unknown; Key is the JSON key concerned, if any.
type LoadError struct {
	Path   string
	Line   int
	Column int
	Key    string
	Err    error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config file %s", e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load parses the configuration file at path. It accepts exactly the keys of
// Config (the original tool's six plus the optional ones); an unknown key is
// an error that names it and suggests the key probably meant, because a typo
// such as "tenantid" would otherwise silently leave the real key empty.
// Every value must be a JSON string (null counts as empty). Relative paths in
// the file are returned as written; Resolve makes them relative to the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	c, err := parse(data)
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			le.Path = path
			return nil, le
		}
		return nil, &LoadError{Path: path, Err: err}
	}
	return c, nil
}

// parse decodes the top-level object token by token so that every problem
// can be reported with the line and column where it is.
func parse(data []byte) (*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // Notepad's UTF-8 BOM
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &LoadError{Err: errors.New("file is empty; want a JSON object such as {\"tenant_id\": \"...\", ...}")}
	}
	at := func(off int64, key string, err error) error {
		line, col := lineCol(data, off)
		return &LoadError{Line: line, Column: col, Key: key, Err: err}
	}
	syntax := func(err error, key string) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return at(se.Offset, key, fmt.Errorf("invalid JSON: %v", se))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return at(int64(len(data)), key, errors.New("invalid JSON: unexpected end of file"))
		}
		return at(0, key, fmt.Errorf("invalid JSON: %w", err))
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &parser{data: data, dec: dec, at: at, syntax: syntax}
	c := &Config{}
	if err := p.object("", topSpec(c)); err != nil {
		return nil, err
	}
	endOff := dec.InputOffset()
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, syntax(err, "")
		}
		return nil, at(skipSpaceComma(data, endOff), "", fmt.Errorf("unexpected %s after the closing }", describeToken(tok)))
	}
	return c, nil
}

// parser reads the objects of a configuration file token by token, so
// that every problem is reported with its line, column and key path
// (destinations[1].tenant_id).
type parser struct {
	data   []byte
	dec    *json.Decoder
	at     func(off int64, key string, err error) error
	syntax func(err error, key string) error
}

// objectSpec is what one object of the file accepts: string keys, keys
// that also take a number, and keys holding a list of objects (add
// returns the spec of the list's next element).
type objectSpec struct {
	strings map[string]*string
	numbers map[string]bool
	lists   map[string]func() objectSpec
	keys    []string // accepted keys, for the message about an unknown one
}

func topSpec(c *Config) objectSpec {
	spec := objectSpec{strings: map[string]*string{}, numbers: numericKeys,
		keys: append(slices.Clone(Keys), KeyDCRs, KeyDestinations)}
	for _, f := range c.fields() {
		spec.strings[f.key] = f.ptr
	}
	spec.lists = map[string]func() objectSpec{
		KeyDCRs: func() objectSpec { c.DCRs = append(c.DCRs, DCR{}); return dcrSpec(&c.DCRs[len(c.DCRs)-1]) },
		KeyDestinations: func() objectSpec {
			c.Destinations = append(c.Destinations, Destination{})
			return destinationSpec(&c.Destinations[len(c.Destinations)-1])
		},
	}
	return spec
}

func dcrSpec(d *DCR) objectSpec {
	spec := objectSpec{strings: map[string]*string{}, numbers: numericKeys, keys: dcrKeys}
	for _, f := range d.fields() {
		spec.strings[f.key] = f.ptr
	}
	return spec
}

func destinationSpec(d *Destination) objectSpec {
	spec := objectSpec{strings: map[string]*string{KeyName: &d.Name, KeyRouteField: &d.RouteField, KeyRouteValue: &d.RouteValue},
		numbers: numericKeys, keys: destinationKeys}
	for _, f := range d.Values.fields() {
		if slices.Contains(DestinationKeys, f.key) {
			spec.strings[f.key] = f.ptr
		}
	}
	v := &d.Values
	spec.lists = map[string]func() objectSpec{
		KeyDCRs: func() objectSpec { v.DCRs = append(v.DCRs, DCR{}); return dcrSpec(&v.DCRs[len(v.DCRs)-1]) },
	}
	return spec
}

// object reads one object (its '{' first) whose key path starts with path.
func (p *parser) object(path string, spec objectSpec) error {
	off := skipSpaceComma(p.data, p.dec.InputOffset())
	tok, err := p.dec.Token()
	if err != nil {
		return p.syntax(err, path)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if path == "" {
			return p.at(off, "", fmt.Errorf("want a JSON object {...} at the top level, got %s", describeToken(tok)))
		}
		return p.at(off, path, fmt.Errorf("want an object {...}, got %s", describeToken(tok)))
	}
	seen := map[string]int64{}
	for p.dec.More() {
		keyOff := p.dec.InputOffset()
		tok, err := p.dec.Token()
		if err != nil {
			return p.syntax(err, path)
		}
		name, _ := tok.(string) // object keys are always strings
		key := joinPath(path, name)
		keyOff = skipSpaceComma(p.data, keyOff)
		ptr, isString := spec.strings[name]
		list, isList := spec.lists[name]
		if !isString && !isList {
			return p.at(keyOff, key, errors.New(spec.unknown(name)))
		}
		if prev, dup := seen[name]; dup {
			pl, pc := lineCol(p.data, prev)
			return p.at(keyOff, key, fmt.Errorf("appears twice (first at %d:%d); keep one", pl, pc))
		}
		seen[name] = keyOff
		if isList {
			if err := p.list(key, list); err != nil {
				return err
			}
			continue
		}
		var raw json.RawMessage
		if err := p.dec.Decode(&raw); err != nil {
			return p.syntax(err, key)
		}
		valOff := p.dec.InputOffset() - int64(len(raw))
		if bytes.Equal(raw, []byte("null")) {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var n json.Number
			if spec.numbers[name] && json.Unmarshal(raw, &n) == nil {
				*ptr = n.String()
				continue
			}
			return p.at(valOff, key, fmt.Errorf("want a string in double quotes, got %s", describeRaw(raw, IsSecretKey(name))))
		}
		*ptr = s
	}
	if _, err := p.dec.Token(); err != nil { // the closing '}'
		return p.syntax(err, path)
	}
	return nil
}

// list reads a list of objects (null: none), each read with the spec that
// next returns.
func (p *parser) list(key string, next func() objectSpec) error {
	off := skipSpaceComma(p.data, skipColon(p.data, p.dec.InputOffset()))
	tok, err := p.dec.Token()
	if err != nil {
		return p.syntax(err, key)
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return p.at(off, key, fmt.Errorf("want a list [{...}, ...], got %s", describeToken(tok)))
	}
	for i := 0; p.dec.More(); i++ {
		if err := p.object(fmt.Sprintf("%s[%d]", key, i), next()); err != nil {
			return err
		}
	}
	if _, err := p.dec.Token(); err != nil { // the closing ']'
		return p.syntax(err, key)
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// skipColon moves off past the ':' after a key.
func skipColon(data []byte, off int64) int64 {
	for off < int64(len(data)) && (data[off] == ':' || data[off] == ' ' || data[off] == '\t' || data[off] == '\r' || data[off] == '\n') {
		off++
	}
	return off
}

// unknown says what is wrong with an unknown key and what it probably
// meant.
func (spec objectSpec) unknown(name string) string {
	msg := "unknown key"
	s := suggestKey(name) // the aliases (stream → stream_name) hold in every object
	if !slices.Contains(spec.keys, s) {
		s = closestKey(name, spec.keys)
	}
	if s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	return msg + "; accepted keys: " + strings.Join(spec.keys, ", ")
}

// skipSpaceComma moves off from the end of the previous token to the first
// byte of the next one, so positions point at the key itself.
func skipSpaceComma(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// lineCol converts a byte offset into a 1-based line and column (in bytes).
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// describeRaw names the JSON type of raw; the value itself is shown only
// when it cannot be the secret.
func describeRaw(raw json.RawMessage, secret bool) string {
	kind := "a value"
	switch raw[0] {
	case '{':
		kind = "an object"
	case '[':
		kind = "an array"
	case 't', 'f':
		kind = "a boolean"
	default:
		kind = "a number"
	}
	if secret || len(raw) > 40 || raw[0] == '{' || raw[0] == '[' {
		return kind
	}
	return fmt.Sprintf("%s (%s); write \"%s\"", kind, raw, raw)
}

// keyAliases maps names people use for the same values (Azure's own
// vocabulary, the portal's labels) to our keys.
var keyAliases = map[string]string{
	"client_id":          KeyApplicationID,
	"app_id":             KeyApplicationID,
	"appid":              KeyApplicationID,
	"client_secret":      KeyApplicationSecret,
	"secret":             KeyApplicationSecret,
	"tenant":             KeyTenantID,
	"directory_id":       KeyTenantID,
	"dce":                KeyDCEEndpoint,
	"endpoint":           KeyDCEEndpoint,
	"dce_uri":            KeyDCEEndpoint,
	"dce_url":            KeyDCEEndpoint,
	"logs_ingestion":     KeyDCEEndpoint,
	"dcr_id":             KeyDCRImmutableID,
	"dcr":                KeyDCRImmutableID,
	"immutable_id":       KeyDCRImmutableID,
	"rule_id":            KeyDCRImmutableID,
	"stream":             KeyStreamName,
	"table":              KeyStreamName,
	"table_name":         KeyStreamName,
	"environment":        KeyCloud,
	"ca_cert":            KeyCAFile,
	"ca":                 KeyCAFile,
	"client_certificate": KeyClientCertificatePath,
	"certificate_path":   KeyClientCertificatePath,
	"secret_file":        KeyApplicationSecretFile,
	"workspace":          KeyWorkspaceID,
	"workspace_guid":     KeyWorkspaceID,
	"log_analytics_id":   KeyWorkspaceID,
	"customer_id":        KeyWorkspaceID,
	"query_url":          KeyQueryEndpoint,
	"log_analytics_url":  KeyQueryEndpoint,
}

// suggestKey returns the accepted key an unknown key most likely meant, or "".
func suggestKey(k string) string {
	norm := normKey
	n := norm(k)
	for _, key := range Keys {
		if norm(key) == n {
			return key
		}
	}
	for alias, key := range keyAliases {
		if norm(alias) == n {
			return key
		}
	}
	return closestKey(k, Keys)
}

// closestKey returns the key of keys that k is at most two edits away from
// (ignoring case and separators), or "".
func closestKey(k string, keys []string) string {
	n := normKey(k)
	best, bestD := "", 3 // at most two edits away
	for _, key := range keys {
		if d := editDistance(n, normKey(key)); d < bestD {
			best, bestD = key, d
		}
	}
	return best
}

func normKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' || r == '.' {
			return -1
		}
		return r
	}, strings.ToLower(s))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// EnvVar returns the environment variable that overrides key:
// CCFPUSH_ followed by the key in upper case (CCFPUSH_TENANT_ID, ...).
func EnvVar(key string) string { return "CCFPUSH_" + strings.ToUpper(key) }

// azureEnv are the azidentity variables honoured as a fallback; the
// CCFPUSH_ variable of the same key wins over them.
var azureEnv = map[string]string{
	KeyTenantID:          "AZURE_TENANT_ID",
	KeyApplicationID:     "AZURE_CLIENT_ID",
	KeyApplicationSecret: "AZURE_CLIENT_SECRET",
}

// ApplyEnv overrides values from the environment: CCFPUSH_<KEY> for every key
// (CCFPUSH_TENANT_ID, CCFPUSH_APPLICATION_SECRET, CCFPUSH_DCE_ENDPOINT,
// CCFPUSH_APPLICATION_SECRET_REF, ...) and, for the three Entra values,
// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET when the CCFPUSH_
// variable is not set (AZURE_CLIENT_SECRET not when a Key Vault reference
// is set: it then serves the chain that reads the vault). An empty variable
// counts as unset. A secret given in the environment, as a value, a file or
// a reference, replaces the file's.
func (c *Config) ApplyEnv(getenv func(string) string) {
	c.applyEnv(getenv)
}

// applyEnv returns, per overridden key, the variable that supplied it.
func (c *Config) applyEnv(getenv func(string) string) map[string]string {
	from := map[string]string{}
	if getenv == nil {
		return from
	}
	// With a Key Vault reference, AZURE_CLIENT_SECRET belongs to the
	// credential chain that reads the vault, not to the secret fetched.
	refSet := c.ApplicationSecretRef != "" || getenv(EnvVar(KeyApplicationSecretRef)) != ""
	for _, f := range c.fields() {
		name := EnvVar(f.key)
		v := getenv(name)
		if v == "" {
			if alt, ok := azureEnv[f.key]; ok && !(f.key == KeyApplicationSecret && refSet) {
				name, v = alt, getenv(alt)
			}
		}
		if v == "" {
			continue
		}
		*f.ptr = v
		from[f.key] = name
	}
	// The secret comes from one place: one set in the environment (as a
	// value, a file or a Key Vault reference) replaces what the file says
	// about it.
	_, secretEnv := from[KeyApplicationSecret]
	_, fileEnv := from[KeyApplicationSecretFile]
	_, refEnv := from[KeyApplicationSecretRef]
	if secretEnv && !fileEnv {
		c.ApplicationSecretFile = ""
	}
	if (secretEnv || fileEnv) && !refEnv {
		c.ApplicationSecretRef = ""
	}
	if refEnv && !secretEnv && !fileEnv {
		c.ApplicationSecret, c.ApplicationSecretFile = "", ""
	}
	return from
}

// Origins says where each effective value came from, by JSON key: "file",
// "env:NAME", "application_secret_file" (the secret read from that file) or
// "default" (cloud and auth when unset). Keys with no value are absent.
type Origins map[string]string

// Resolve builds the effective configuration: the file at path (which may be
// missing when the environment supplies values, e.g. in a container; path ""
// means environment only), then environment overrides (ApplyEnv), then the
// secret from application_secret_file when no secret is set. Relative paths
// written in the file (ca_file, application_secret_file,
// client_certificate_path) are taken relative to the file's directory, so a
// daemon finds them whatever its working directory. Flags are the caller's
// to apply on top.
func Resolve(path string, getenv func(string) string) (*Config, error) {
	c, _, err := ResolveOrigins(path, getenv)
	return c, err
}

// ResolveOrigins is Resolve that also reports where each value came from.
func ResolveOrigins(path string, getenv func(string) string) (*Config, Origins, error) {
	origins := Origins{}
	c := &Config{}
	fileMissing := path == ""
	if path != "" {
		loaded, err := Load(path)
		switch {
		case err == nil:
			c = loaded
			for _, f := range c.fields() {
				if *f.ptr != "" {
					origins[f.key] = "file"
				}
			}
			c.ResolvePaths(filepath.Dir(path))
		case errors.Is(err, fs.ErrNotExist):
			fileMissing = true
		default:
			return nil, nil, err
		}
	}
	from := c.applyEnv(getenv)
	if fileMissing && len(from) == 0 {
		return nil, nil, &notFoundError{path: path}
	}
	for k, name := range from {
		origins[k] = "env:" + name
	}
	for _, k := range []string{KeyApplicationSecret, KeyApplicationSecretFile, KeyApplicationSecretRef} {
		if v, _ := c.Get(k); v == "" {
			delete(origins, k)
		}
	}
	read, err := c.readSecretFile(-1)
	if err != nil {
		return nil, nil, err
	}
	if read {
		origins[KeyApplicationSecret] = KeyApplicationSecretFile
	}
	for i := range c.Destinations {
		if _, err := c.Destinations[i].Values.readSecretFile(i); err != nil {
			return nil, nil, err
		}
	}
	if c.Cloud == "" {
		origins[KeyCloud] = "default"
	}
	if c.Auth == "" {
		origins[KeyAuth] = "default"
	}
	return c, origins, nil
}

// readSecretFile reads application_secret_file into application_secret
// when no secret is set otherwise, and reports whether it did; i names
// the destination entry in errors (-1: the top level).
func (c *Config) readSecretFile(i int) (bool, error) {
	// With a reference as well, Validate reports the conflict; reading a
	// file that may not exist first would hide it.
	if c.ApplicationSecret != "" || c.ApplicationSecretFile == "" || c.ApplicationSecretRef != "" {
		return false, nil
	}
	key := destinationField(i, KeyApplicationSecretFile)
	b, err := os.ReadFile(c.ApplicationSecretFile)
	if err != nil {
		return false, fmt.Errorf("%s: read secret: %w", key, err)
	}
	c.ApplicationSecret = Secret(strings.TrimRight(string(b), "\r\n"))
	if c.ApplicationSecret == "" {
		return false, fmt.Errorf("%s %s: file is empty", key, c.ApplicationSecretFile)
	}
	return true, nil
}

// ResolvePaths makes the relative file paths of c (ca_file,
// application_secret_file, client_certificate_path, kafka_ca_file, and
// those of the destinations) relative to dir, the configuration file's
// directory, as Resolve reads them: a file names the same file whatever
// the working directory.
func (c *Config) ResolvePaths(dir string) {
	paths := []*string{&c.CAFile, &c.ApplicationSecretFile, &c.ClientCertificatePath, &c.KafkaCAFile}
	for i := range c.Destinations {
		v := &c.Destinations[i].Values
		paths = append(paths, &v.CAFile, &v.ApplicationSecretFile, &v.ClientCertificatePath)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) && dir != "." && dir != "" {
			*p = filepath.Join(dir, *p)
		}
	}
}

// sniffLimit bounds what IsConfig reads: a connector configuration is a
// few hundred bytes; a data file is usually far bigger.
const sniffLimit = 64 << 10

// IsConfig reports whether r holds a connector configuration: a JSON
// object of this package's keys (Load accepts it) with at least one value
// set. The web UI uses it to keep configurations — which hold the secret —
// out of the data files it lists, sends and overwrites.
func IsConfig(r io.Reader) bool {
	data, err := io.ReadAll(io.LimitReader(r, sniffLimit+1))
	if err != nil || len(data) > sniffLimit {
		return false
	}
	c, err := parse(data)
	if err != nil {
		return false
	}
	for _, f := range c.fields() {
		if *f.ptr != "" {
			return true
		}
	}
	return len(c.Destinations) > 0 || len(c.DCRs) > 0
}

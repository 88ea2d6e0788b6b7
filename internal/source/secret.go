package source

import (
	"fmt"
	"os"
	"strings"
)

// The webhook's secrets: where they come from besides a file (for hosts
// where a file is not practical, such as systemd < 247 without
// EnvironmentFile=), and how long they must be at least, so that they
// cannot be guessed.
const (
	TokenEnv     = "CCFPUSH_WEBHOOK_TOKEN"
	HMACKeyEnv   = "CCFPUSH_WEBHOOK_HMAC_KEY"
	MinSecretLen = 16
)

// Secret is a webhook secret and where it came from: its file, or "$ENV".
// From is "" when the secret is not set.
type Secret struct {
	Value []byte
	From  string
}

// ReadSecret reads a secret from the file path, or from the environment
// variable env when path is "". A trailing newline ("echo > file") is not
// part of the secret.
func ReadSecret(path, env string, getenv func(string) string) (Secret, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Secret{}, err
		}
		return Secret{Value: []byte(strings.TrimSpace(string(b))), From: path}, nil
	}
	if getenv != nil {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return Secret{Value: []byte(v), From: "$" + env}, nil
		}
	}
	return Secret{}, nil
}

// Check says what is wrong with a secret that is set (what names it):
// empty, or shorter than MinSecretLen.
func (s Secret) Check(what string) error {
	switch {
	case len(s.Value) == 0:
		return fmt.Errorf("the %s in %s is empty", what, s.From)
	case len(s.Value) < MinSecretLen:
		return fmt.Errorf("the %s in %s is %d characters: want at least %d (e.g. head -c 32 /dev/urandom | base64)", what, s.From, len(s.Value), MinSecretLen)
	}
	return nil
}

package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/config"
)

// tokenSigner issues and checks RS256 JWT access tokens shaped like Entra's
// v1 app-only tokens. A JWT (rather than an opaque string) lets other
// clients and tools decode aud/tid/appid as they would with real tokens.
type tokenSigner struct {
	key *rsa.PrivateKey
	kid string
	x5t string // base64url SHA-1 thumbprint of cert, as Entra's JWKS carries
	x5c string // base64 DER of a self-signed certificate for key
}

func newTokenSigner(key *rsa.PrivateKey, now time.Time) (*tokenSigner, error) {
	kid, err := keyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token signing key id: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.Unix()),
		Subject:      pkix.Name{CommonName: "ccfpush emulator token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("token signing certificate: %w", err)
	}
	thumb := sha1.Sum(der)
	return &tokenSigner{
		key: key,
		kid: kid,
		x5t: b64(thumb[:]),
		x5c: base64.StdEncoding.EncodeToString(der),
	}, nil
}

// accessClaims are the claims of an issued access token.
type accessClaims struct {
	Aud      string `json:"aud"`
	Iss      string `json:"iss"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
	AppID    string `json:"appid"`
	AppIDAcr string `json:"appidacr"`
	Azp      string `json:"azp"`
	Idp      string `json:"idp"`
	IDTyp    string `json:"idtyp"`
	Oid      string `json:"oid"`
	Sub      string `json:"sub"`
	Tid      string `json:"tid"`
	Uti      string `json:"uti"`
	Ver      string `json:"ver"`
}

type jwtHeader struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	X5t string `json:"x5t,omitempty"`
}

func (s *tokenSigner) sign(c accessClaims) (string, error) {
	h, err := json.Marshal(jwtHeader{Typ: "JWT", Alg: "RS256", Kid: s.kid, X5t: s.x5t})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signing + "." + b64(sig), nil
}

// errBadToken is wrapped by every reason a bearer token is not ours or not
// readable; the caller answers 401.
var errBadToken = errors.New("invalid bearer token")

// verify checks the token's structure and signature and returns its claims.
// Times and audience are the caller's to check.
func (s *tokenSigner) verify(tok string) (accessClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return accessClaims{}, fmt.Errorf("%w: not a JWT (want three dot-separated parts)", errBadToken)
	}
	hb, err := unb64(parts[0])
	if err != nil {
		return accessClaims{}, fmt.Errorf("%w: header: %v", errBadToken, err)
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return accessClaims{}, fmt.Errorf("%w: header: %v", errBadToken, err)
	}
	if h.Alg != "RS256" {
		return accessClaims{}, fmt.Errorf("%w: algorithm %q, want RS256", errBadToken, h.Alg)
	}
	if h.Kid != s.kid {
		return accessClaims{}, fmt.Errorf("%w: signed with an unknown key (kid %q)", errBadToken, h.Kid)
	}
	sig, err := unb64(parts[2])
	if err != nil {
		return accessClaims{}, fmt.Errorf("%w: signature: %v", errBadToken, err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return accessClaims{}, fmt.Errorf("%w: signature does not verify", errBadToken)
	}
	pb, err := unb64(parts[1])
	if err != nil {
		return accessClaims{}, fmt.Errorf("%w: payload: %v", errBadToken, err)
	}
	var c accessClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return accessClaims{}, fmt.Errorf("%w: payload: %v", errBadToken, err)
	}
	return c, nil
}

// jwk is one key of the JWKS document, in Entra's shape.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
	Alg    string   `json:"alg"`
}

func (s *tokenSigner) jwks(issuer string) map[string]any {
	pub := s.key.PublicKey
	return map[string]any{"keys": []jwk{{
		Kty:    "RSA",
		Use:    "sig",
		Kid:    s.kid,
		X5t:    s.x5t,
		N:      b64(pub.N.Bytes()),
		E:      b64(big.NewInt(int64(pub.E)).Bytes()),
		X5c:    []string{s.x5c},
		Issuer: issuer,
		Alg:    "RS256",
	}}}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// derivedGUID makes a stable GUID from a name (UUID v5), for ids that must
// not change across restarts.
func derivedGUID(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("ccfpush-emulator:"+name)).String()
}

// secretAlphabet is what Entra client secrets are made of.
const secretAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.~-"

// loadOrCreateSecret returns the default app's secret, creating a random
// one, shaped like an Entra secret ("xxx8Q~" + 34 characters), on first use.
func loadOrCreateSecret(path string) (config.Secret, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if s == "" {
			return "", fmt.Errorf("app secret file %s is empty; delete it to make a new secret", path)
		}
		return config.Secret(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read app secret: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteBytes(path, 0o600, []byte(secret.Reveal()+"\n")); err != nil {
		return "", fmt.Errorf("write app secret: %w", err)
	}
	return secret, nil
}

// newSecret makes a random secret shaped like an Entra one ("xxx8Q~" + 34
// characters).
func newSecret() (config.Secret, error) {
	var b strings.Builder
	buf := make([]byte, 64)
	// Rejection sampling keeps every character equally likely.
	limit := byte(256 - 256%len(secretAlphabet))
	for b.Len() < 40 {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate app secret: %w", err)
		}
		for _, c := range buf {
			if c >= limit || b.Len() == 40 {
				continue
			}
			if b.Len() == 3 {
				b.WriteString("8Q~")
			}
			b.WriteByte(secretAlphabet[int(c)%len(secretAlphabet)])
		}
	}
	return config.Secret(b.String()), nil
}

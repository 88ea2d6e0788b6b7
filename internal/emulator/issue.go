package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// tokenLedger remembers the access tokens issued and not yet expired, by
// their uti claim, so that RevokeTokens can refuse exactly those: a token
// issued a moment after the revocation, in the same second, stays good.
type tokenLedger struct {
	mu        sync.Mutex
	live      map[string]int64 // uti → exp (unix seconds)
	revoked   map[string]int64
	revokedAt time.Time
	issued    int
}

func newTokenLedger() *tokenLedger {
	return &tokenLedger{live: map[string]int64{}, revoked: map[string]int64{}}
}

func (l *tokenLedger) add(uti string, exp int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live[uti] = exp
	if l.issued++; l.issued%256 == 0 {
		l.pruneLocked(now)
	}
}

// revoke moves every live token to the revoked set and returns how many.
func (l *tokenLedger) revoke(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(now)
	n := len(l.live)
	for uti, exp := range l.live {
		l.revoked[uti] = exp
	}
	clear(l.live)
	l.revokedAt = now
	return n
}

func (l *tokenLedger) isRevoked(uti string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.revoked[uti]
	return ok, l.revokedAt
}

// pruneLocked forgets tokens that have expired: they are refused anyway.
func (l *tokenLedger) pruneLocked(now time.Time) {
	for _, m := range []map[string]int64{l.live, l.revoked} {
		for uti, exp := range m {
			if now.Unix() >= exp {
				delete(m, uti)
			}
		}
	}
}

// RevokeTokens makes every access token issued so far invalid, as a
// revoked session or a disabled service principal makes Azure refuse the
// tokens it holds: the ingestion and Key Vault endpoints answer them with
// 401 (InvalidAuthenticationToken), and a client recovers only by asking
// for a new token. Tokens issued afterwards are good. It returns how many
// unexpired tokens were revoked.
func (e *Emulator) RevokeTokens() int {
	n := e.tokens.revoke(e.clock())
	e.stats.revoked(n)
	e.log.Info("emulator: revoked access tokens", "count", n)
	return n
}

// issue signs an access token for clientID in tenant for resource, records
// it for revocation and returns it with its lifetime. Its exp is rounded
// up to the whole second, so that a client counting expires_in (one second
// short of the lifetime) from when it got the answer never holds a token
// the emulator already considers expired.
func (e *Emulator) issue(r *http.Request, tenant, clientID, resource string) (string, time.Time, error) {
	now := e.clock()
	exp := now.Add(e.opts.TokenLifetime)
	if exp.Truncate(time.Second) != exp {
		exp = exp.Truncate(time.Second).Add(time.Second)
	}
	issuer := authorityBase(r) + "/" + strings.ToLower(tenant) + "/v2.0"
	oid := derivedGUID("oid:" + strings.ToLower(clientID))
	uti := b64([]byte(uuid.NewString()))[:22]
	tok, err := e.signer.sign(accessClaims{
		Aud:      resource,
		Iss:      issuer,
		Iat:      now.Unix(),
		Nbf:      now.Unix(),
		Exp:      exp.Unix(),
		AppID:    clientID,
		AppIDAcr: "1",
		Azp:      clientID,
		Idp:      issuer,
		IDTyp:    "app",
		Oid:      oid,
		Sub:      oid,
		Tid:      tenant,
		Uti:      uti,
		Ver:      "1.0",
	})
	if err != nil {
		return "", time.Time{}, err
	}
	e.tokens.add(uti, exp.Unix(), now)
	return tok, exp, nil
}

// tokenProblem is why a bearer token is refused (401), before any
// audience or permission check.
type tokenProblem struct {
	missing bool // no Authorization header at all
	expired bool
	msg     string
}

// checkBearer reads and checks the request's bearer token: ours, well
// signed, current and not revoked. The audience is the caller's to check.
func (e *Emulator) checkBearer(r *http.Request) (accessClaims, *tokenProblem) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, tok, _ := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	if auth == "" {
		return accessClaims{}, &tokenProblem{missing: true, msg: "The request has no Authorization header"}
	}
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return accessClaims{}, &tokenProblem{msg: "The Authorization header is not a bearer token; send 'Authorization: Bearer <token>'."}
	}
	c, err := e.signer.verify(tok)
	if err != nil {
		return c, &tokenProblem{msg: fmt.Sprintf("The access token is invalid: %v. Tokens must come from this emulator's token endpoint.", err)}
	}
	now := e.clock()
	if now.Unix() >= c.Exp {
		return c, &tokenProblem{expired: true, msg: fmt.Sprintf("The access token expired at %s (now %s). Request a new token.",
			time.Unix(c.Exp, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	if c.Nbf > now.Add(5*time.Minute).Unix() {
		return c, &tokenProblem{msg: "The access token is not valid yet (nbf is in the future)."}
	}
	if revoked, at := e.tokens.isRevoked(c.Uti); revoked {
		return c, &tokenProblem{msg: fmt.Sprintf("The access token was revoked at %s (tokens issued before then are no longer accepted). Request a new token.",
			at.UTC().Format(time.RFC3339))}
	}
	return c, nil
}

// Package localissuer is a small OpenID Connect issuer for tests and the
// local stack: OIDC discovery, a JWKS, tokens for any claims, and a key
// that rotates on demand. It is an http.Handler: serve it with httptest,
// or mount it under a path of another server (make run mounts it at
// /_local). It answers, under wherever it is mounted:
//
//	GET  /.well-known/openid-configuration   discovery
//	GET  /jwks                               the public keys
//	POST /token    {"sub": "alice", ...}     a signed access token for those claims
//	POST /rotate   {"alg": "ES256"}          a new signing key; the previous one stays in the JWKS
//
// It signs with a real RSA (RS256) or P-256 (ES256) key, so the authorizer
// checks tokens from it exactly as it checks a real issuer's. It is not an
// identity provider: anyone who can reach it gets any token.
package localissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a local OIDC issuer. Set URL (SetURL) before serving.
type Issuer struct {
	// Audience is the aud of tokens whose claims name none.
	Audience string
	// Lifetime is how long tokens last unless their claims set exp.
	Lifetime time.Duration
	// Now is the issuer's clock; time.Now if nil.
	Now func() time.Time
	// OmitAlg leaves alg out of the JWKS, as some issuers do: a key's type
	// alone then says which algorithms it verifies.
	OmitAlg bool

	mu   sync.Mutex
	url  string
	keys []*signingKey // the last signs; the one before stays published
	down bool

	discovery, jwks atomic.Int64
}

type signingKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

// New returns an issuer with a new RS256 key, or an error if no key can
// be made.
func New(audience string) (*Issuer, error) {
	i := &Issuer{Audience: audience, Lifetime: time.Hour}
	if _, err := i.Rotate("RS256"); err != nil {
		return nil, err
	}
	return i, nil
}

// NewWithKey returns an issuer that signs with key (*rsa.PrivateKey for
// RS256, or *ecdsa.PrivateKey on P-256 for ES256): tests share one key
// rather than each wait for a new RSA key.
func NewWithKey(audience string, key crypto.Signer) (*Issuer, error) {
	i := &Issuer{Audience: audience, Lifetime: time.Hour}
	if _, err := i.AddKey(key); err != nil {
		return nil, err
	}
	return i, nil
}

// SetURL sets the issuer's URL, its tokens' iss: the address it is served
// at, with the path it is mounted under.
func (i *Issuer) SetURL(url string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.url = strings.TrimSuffix(url, "/")
}

// URL is the issuer's URL.
func (i *Issuer) URL() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.url
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Rotate makes a new signing key for alg (RS256 or ES256) and returns its
// kid. The previous key stays in the JWKS, as issuers keep it for a grace
// period; the one before that leaves it.
func (i *Issuer) Rotate(alg string) (string, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case "RS256", "":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("alg %q: the local issuer signs with RS256 or ES256", alg)
	}
	if err != nil {
		return "", err
	}
	return i.AddKey(key)
}

// AddKey makes key the signing key, as Rotate does with a new one.
func (i *Issuer) AddKey(key crypto.Signer) (string, error) {
	k := &signingKey{kid: newKID(), priv: key}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		k.method = jwt.SigningMethodRS256
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("the local issuer signs with P-256 EC keys only")
		}
		k.method = jwt.SigningMethodES256
	default:
		return "", fmt.Errorf("the local issuer signs with RSA or P-256 keys, not %T", pub)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	if len(i.keys) > 2 {
		i.keys = i.keys[len(i.keys)-2:]
	}
	return k.kid, nil
}

// Current returns the signing key's kid and private key, for tests that
// craft tokens of their own.
func (i *Issuer) Current() (string, crypto.Signer) {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := i.keys[len(i.keys)-1]
	return k.kid, k.priv
}

// Drop removes a key from the JWKS, as an issuer revokes one.
func (i *Issuer) Drop(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for n, k := range i.keys {
		if k.kid == kid {
			i.keys = append(i.keys[:n:n], i.keys[n+1:]...)
			return
		}
	}
}

// SetDown makes discovery and the JWKS answer 503, as an issuer outage.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// Fetches counts the requests for discovery and for the JWKS so far.
func (i *Issuer) Fetches() (discovery, jwks int64) { return i.discovery.Load(), i.jwks.Load() }

// Token signs an access token for claims with the current key. iss, aud,
// iat and exp are added unless claims set them; a claim set to nil is left
// out.
func (i *Issuer) Token(claims map[string]any) (string, error) {
	now := i.now()
	i.mu.Lock()
	k := i.keys[len(i.keys)-1]
	c := jwt.MapClaims{"iss": i.url, "aud": i.Audience, "iat": now.Unix(), "exp": now.Add(i.Lifetime).Unix()}
	i.mu.Unlock()
	for name, v := range claims {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	t := jwt.NewWithClaims(k.method, c)
	t.Header["kid"] = k.kid
	return t.SignedString(k.priv)
}

// ServeHTTP serves discovery, the JWKS, /token and /rotate at the end of
// the request's path.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/.well-known/openid-configuration"):
		i.discovery.Add(1)
		if i.isDown() {
			http.Error(w, "the local issuer is down (SetDown)", http.StatusServiceUnavailable)
			return
		}
		url := i.URL()
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                url,
			"jwks_uri":                              url + "/jwks",
			"token_endpoint":                        url + "/token",
			"response_types_supported":              []string{"token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/jwks"):
		i.jwks.Add(1)
		if i.isDown() {
			http.Error(w, "the local issuer is down (SetDown)", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(i.JWKS())
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/token"):
		claims := map[string]any{}
		if err := readJSON(r, &claims); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		tok, err := i.Token(claims)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(i.Lifetime / time.Second)})
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/rotate"):
		var in struct {
			Alg string `json:"alg"`
		}
		if err := readJSON(r, &in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		kid, err := i.Rotate(in.Alg)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid, "alg": or(in.Alg, "RS256")})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the local issuer serves GET .well-known/openid-configuration, GET jwks, POST token and POST rotate"})
	}
}

func (i *Issuer) isDown() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.down
}

// JWKS is the public keys as a JSON Web Key Set.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	b64 := base64.RawURLEncoding
	var keys []map[string]string
	for _, k := range i.keys {
		jwk := map[string]string{"kid": k.kid, "use": "sig", "alg": k.method.Alg()}
		if i.OmitAlg {
			delete(jwk, "alg")
		}
		switch pub := k.priv.Public().(type) {
		case *rsa.PublicKey:
			jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64.EncodeToString(pub.N.Bytes()), b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
		case *ecdsa.PublicKey:
			b, _ := pub.Bytes() // 0x04 || x || y, 32 bytes each
			jwk["kty"], jwk["crv"], jwk["x"], jwk["y"] = "EC", "P-256", b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:])
		}
		keys = append(keys, jwk)
	}
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}

func newKID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the body must be a JSON object of claims, such as {\"sub\": \"alice\", \"scope\": \"items:read\"}: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Write(append(b, '\n'))
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Package keys defines API key values and ids: how Tollgate generates them,
// how it recognises a malformed value without asking DynamoDB, and the hash
// under which a value is stored. The plaintext value is never stored.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// Prefix starts every generated value, so that people and secret scanners
// can tell a Tollgate key when they see one.
const Prefix = "tgk_"

// Value lengths, as API Gateway allows them.
const (
	MinLen = 20
	MaxLen = 128
)

const (
	base62    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	bodyLen   = 22 // 22 base62 digits carry 130.9 bits
	sumLen    = 6  // 62^6 > 2^32 holds a CRC-32
	generated = len(Prefix) + bodyLen + sumLen
)

// Errors returned by Check. They never include the value.
var (
	ErrEmpty    = errors.New("the API key is empty")
	ErrLength   = fmt.Errorf("an API key must be %d to %d characters long", MinLen, MaxLen)
	ErrCharset  = errors.New("an API key may contain only letters, digits and - . _ ~ + / =")
	ErrChecksum = errors.New("the API key's checksum does not match: it was mistyped or truncated")
)

// Generate returns a new value: Prefix, 22 random base62 digits from
// crypto/rand (130 bits) and a 6-digit CRC-32 of what precedes it.
func Generate() (string, error) {
	var b strings.Builder
	b.Grow(generated)
	b.WriteString(Prefix)
	// Rejection sampling keeps every digit uniform: bytes 248..255 would
	// favour the first eight digits, so they are drawn again.
	var buf [64]byte
	for b.Len() < len(Prefix)+bodyLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("generate API key: %w", err)
		}
		for _, c := range buf {
			if c >= 248 {
				continue
			}
			b.WriteByte(base62[c%62])
			if b.Len() == len(Prefix)+bodyLen {
				break
			}
		}
	}
	sum := checksum(b.String())
	b.Write(sum[:])
	return b.String(), nil
}

// Check reports whether v can be an API key. Values with Prefix must carry
// a valid checksum; others (imported or chosen by the user) need only the
// right length and characters. A value Check rejects cannot be stored, so
// the authorizer denies it without a DynamoDB call.
func Check(v string) error {
	switch {
	case v == "":
		return ErrEmpty
	case len(v) < MinLen || len(v) > MaxLen:
		return ErrLength
	}
	for i := 0; i < len(v); i++ {
		if !allowed(v[i]) {
			return ErrCharset
		}
	}
	if strings.HasPrefix(v, Prefix) {
		if sum := checksum(v[:len(v)-sumLen]); len(v) != generated || string(sum[:]) != v[len(v)-sumLen:] {
			return ErrChecksum
		}
	}
	return nil
}

// Hash is the hex SHA-256 of a value: the only form in which it is stored.
func Hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// Hint is a short, non-secret reminder of a value for logs and errors: the
// prefix, if any, and the last four characters.
func Hint(v string) string {
	if len(v) < MinLen {
		return "…"
	}
	head := ""
	if strings.HasPrefix(v, Prefix) {
		head = Prefix
	}
	return head + "…" + v[len(v)-4:]
}

// NewID returns a random 10-character id of lowercase letters and digits,
// the shape of API Gateway's ids (about 51 bits).
func NewID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var buf [10]byte
	id := make([]byte, 0, len(buf))
	for len(id) < len(buf) {
		rand.Read(buf[:]) // never fails on supported platforms (Go 1.24+)
		for _, c := range buf {
			if c < 252 && len(id) < len(buf) { // 252 = 7·36: keep digits uniform
				id = append(id, alphabet[c%36])
			}
		}
	}
	return string(id)
}

func allowed(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/=", c) >= 0
}

func checksum(s string) (out [sumLen]byte) {
	// crc32.ChecksumIEEE, byte by byte: a value is short, and a string
	// handed to it as []byte would be copied to the heap.
	n := ^uint32(0)
	for i := 0; i < len(s); i++ {
		n = crc32.IEEETable[byte(n)^s[i]] ^ n>>8
	}
	n = ^n
	for i := sumLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return out
}

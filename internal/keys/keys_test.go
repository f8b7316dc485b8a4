package keys

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		v, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v, Prefix) || len(v) != generated {
			t.Fatalf("Generate() = %q: want %q prefix and %d characters", v, Prefix, generated)
		}
		if err := Check(v); err != nil {
			t.Fatalf("Check(Generate()) = %v", err)
		}
		if seen[v] {
			t.Fatalf("Generate returned %q twice", v)
		}
		seen[v] = true
	}
}

func TestCheck(t *testing.T) {
	good, _ := Generate()
	flip := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name  string
		value string
		want  error
	}{
		{"generated", good, nil},
		{"imported, AWS style", "apikey1234abcdefghij0123456789", nil},
		{"imported, 20 chars", strings.Repeat("x", 20), nil},
		{"imported, 128 chars", strings.Repeat("x", 128), nil},
		{"imported, base64 chars", "abc-def.ghi_jkl~mno+pqr/stu=", nil},
		{"empty", "", ErrEmpty},
		{"too short", strings.Repeat("x", 19), ErrLength},
		{"too long", strings.Repeat("x", 129), ErrLength},
		{"space", "apikey1234abcdefghij 0123456789", ErrCharset},
		{"two headers joined by a comma", good + "," + good, ErrCharset},
		{"comma", "apikey1234abcdefghij,0123456789", ErrCharset},
		{"non-ASCII", "apikey1234abcdefghij0123456789é", ErrCharset},
		{"typo in body", flip(good, 10), ErrChecksum},
		{"typo in checksum", flip(good, len(good)-1), ErrChecksum},
		{"truncated", good[:len(good)-1], ErrChecksum},
		{"extended", good + "x", ErrChecksum},
		{"prefix without checksum", Prefix + strings.Repeat("x", 30), ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(tt.value); got != tt.want {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEveryGeneratedTypoIsCaught(t *testing.T) {
	v, _ := Generate()
	for i := len(Prefix); i < len(v); i++ {
		for j := 0; j < len(base62); j++ {
			if base62[j] == v[i] {
				continue
			}
			typo := v[:i] + string(base62[j]) + v[i+1:]
			if Check(typo) == nil {
				t.Fatalf("a one-character typo at %d passes the checksum", i)
			}
		}
	}
}

func TestHash(t *testing.T) {
	// echo -n apikey1234abcdefghij0123456789 | sha256sum
	const want = "fd09e82a9568c6799e27ec9706127f1acb849006feaaeaf64ea076e70de143d7"
	if got := Hash("apikey1234abcdefghij0123456789"); got != want {
		t.Fatalf("Hash = %q, want %q", got, want)
	}
}

func TestHint(t *testing.T) {
	v, _ := Generate()
	if h := Hint(v); !strings.HasPrefix(h, Prefix+"…") || strings.Contains(h, v[len(Prefix):len(v)-4]) {
		t.Errorf("Hint(%q) = %q", v, h)
	}
	if h := Hint("short"); h != "…" {
		t.Errorf("Hint(short) = %q", h)
	}
}

func TestNewID(t *testing.T) {
	id := NewID()
	if len(id) != 10 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatalf("NewID() = %q", id)
	}
	if NewID() == id {
		t.Fatal("NewID repeated")
	}
}

func FuzzCheck(f *testing.F) {
	good, _ := Generate()
	for _, s := range []string{"", good, "apikey1234abcdefghij0123456789", Prefix, "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		err := Check(v)
		if err == nil && (len(v) < MinLen || len(v) > MaxLen) {
			t.Fatalf("Check accepted %d characters", len(v))
		}
		// Only fixed sentences come back, so no error can echo a secret.
		switch err {
		case nil, ErrEmpty, ErrLength, ErrCharset, ErrChecksum:
		default:
			t.Fatalf("Check returned an unexpected error %v", err)
		}
	})
}

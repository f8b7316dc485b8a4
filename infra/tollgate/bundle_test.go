package tollgate

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSourceHash: the asset hash moves with what a function's build reads,
// and with nothing else.
func TestSourceHash(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n")
	write("go.sum", "")
	write("functions/a/main.go", "package main\n")
	hash := func() string {
		t.Helper()
		h, err := hashSource(dir)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash()
	for _, name := range []string{"functions/a/main_test.go", "node_modules/x/y.go", "cdk.out/asset.1/z.go", ".git/HEAD", "dist/a/bootstrap", "README.md", "internal/p/testdata/q.go"} {
		write(name, "anything")
		if hash() != base {
			t.Errorf("writing %s changed the hash", name)
		}
	}
	for _, name := range []string{"internal/p/p.go", "go.sum", "go.mod", "functions/a/main.go"} {
		write(name, "changed "+name)
		if h := hash(); h == base {
			t.Errorf("changing %s left the hash", name)
		} else {
			base = h
		}
	}
}

// TestModuleDir finds this checkout, where go resolves Tollgate's module
// when the app is Tollgate's own.
func TestModuleDir(t *testing.T) {
	if got := modulePath(); got != "github.com/tollgate-dev/tollgate" {
		t.Fatalf("module path %q", got)
	}
	dir, err := moduleDir(modulePath())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs("../..")
	if dir != want {
		t.Errorf("module directory %s, want %s", dir, want)
	}
}

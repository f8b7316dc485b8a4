package tollgate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"
)

// The build every function gets, as `make build` does it: Lambda's
// provided.al2023 runtime on arm64, a static binary without the RPC
// entry point, trimmed and stripped.
var (
	buildEnv   = []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}
	buildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}
)

// FunctionCode is the code of Tollgate's function fn (authorizer, keys,
// plans, usage, notifier, echo). With codeDir set, it is the binary built
// beforehand in codeDir/<fn>/bootstrap (make build). Otherwise the function
// is built at synth, from Tollgate's module source wherever go resolved it
// (the module cache, or a replace directory), with the local Go toolchain,
// through CDK's asset bundling: the asset is named by a hash of the source,
// the toolchain's version and the build, so it is built again only when
// one of them changes.
func FunctionCode(codeDir, fn string) awslambda.Code {
	if codeDir != "" {
		dir := filepath.Join(codeDir, fn)
		if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil {
			panic(fmt.Sprintf("tollgate: %s has no bootstrap: run `make build` in the Tollgate repository, "+
				"or leave Props.CodeDir empty to build the functions at synth", dir))
		}
		return awslambda.Code_FromAsset(jsii.String(dir), nil)
	}
	src, err := source()
	if err != nil {
		panic(fmt.Sprintf("tollgate: cannot build the functions at synth: %v; "+
			"or set Props.CodeDir to a folder of prebuilt <function>/bootstrap binaries (make build)", err))
	}
	pkg := "./functions/" + fn
	hash := sha256.New()
	fmt.Fprintf(hash, "%s\n%s\n%s\n%s\n%s\n", src.hash, src.goVersion, pkg, buildEnv, buildFlags)
	return awslambda.Code_FromAsset(jsii.String(src.dir), &awss3assets.AssetOptions{
		AssetHash: jsii.String(hex.EncodeToString(hash.Sum(nil))),
		Bundling: &awscdk.BundlingOptions{
			// Required, and used only if local bundling declines, which
			// goBuild never does: it builds or fails saying why.
			Image: awscdk.DockerImage_FromRegistry(jsii.String("public.ecr.aws/docker/library/golang:1.25")),
			Local: &goBuild{dir: src.dir, pkg: pkg},
		},
	})
}

// goBuild builds one function into the bundling output directory. CDK
// calls it through jsii, only when the asset is not already in cdk.out.
type goBuild struct {
	dir string // the module's directory
	pkg string
}

func (b *goBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	args := append([]string{"build"}, buildFlags...)
	args = append(args, "-o", filepath.Join(*outputDir, "bootstrap"), b.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = b.dir
	cmd.Env = goEnv(buildEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		panic(fmt.Sprintf("tollgate: go %s (in %s): %v\n%s", strings.Join(args, " "), b.dir, err, out))
	}
	return jsii.Bool(true)
}

// goEnv is the environment for go commands in Tollgate's module: its own
// go.mod and go.sum decide every version, whatever workspace or flags the
// app has.
func goEnv(extra ...string) []string {
	return append(os.Environ(), append([]string{"GOWORK=off", "GOFLAGS=-mod=readonly"}, extra...)...)
}

// moduleSource is Tollgate's module as go resolved it for this app.
type moduleSource struct {
	dir       string
	hash      string // of the Go source, go.mod and go.sum
	goVersion string
}

var (
	sourceOnce sync.Once
	sourceVal  moduleSource
	sourceErr  error
)

func source() (moduleSource, error) {
	sourceOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			sourceErr = fmt.Errorf("go is not on the PATH: install Go 1.25 or later (https://go.dev/dl/)")
			return
		}
		dir, err := moduleDir(modulePath())
		if err != nil {
			sourceErr = err
			return
		}
		hash, err := hashSource(dir)
		if err != nil {
			sourceErr = err
			return
		}
		cmd := exec.Command("go", "env", "GOVERSION")
		cmd.Dir, cmd.Env = dir, goEnv()
		v, err := cmd.Output()
		if err != nil {
			sourceErr = fmt.Errorf("go env GOVERSION in %s: %v", dir, err)
			return
		}
		sourceVal = moduleSource{dir: dir, hash: hash, goVersion: strings.TrimSpace(string(v))}
	})
	return sourceVal, sourceErr
}

// modulePath is Tollgate's module path, read from this package's own.
func modulePath() string {
	return strings.TrimSuffix(reflect.TypeFor[Props]().PkgPath(), "/infra/tollgate")
}

// moduleDir finds the directory of module path as go resolved it: from
// the app's module (the working directory, where cdk runs the app), or
// failing that from the build information of the running binary.
func moduleDir(path string) (string, error) {
	var m struct{ Dir, Version string }
	out, listErr := exec.Command("go", "list", "-m", "-json", path).Output()
	if listErr == nil && json.Unmarshal(out, &m) == nil && m.Dir != "" {
		return m.Dir, nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path != path {
				continue
			}
			if r := dep.Replace; r != nil && r.Version == "" && filepath.IsAbs(r.Path) {
				return r.Path, nil
			}
			if r := dep.Replace; r != nil {
				dep = r
			}
			cmd := exec.Command("go", "mod", "download", "-json", dep.Path+"@"+dep.Version)
			cmd.Env = goEnv()
			if out, err := cmd.Output(); err == nil && json.Unmarshal(out, &m) == nil && m.Dir != "" {
				return m.Dir, nil
			}
		}
	}
	return "", fmt.Errorf("cannot find module %s: run the app from its module's directory (go list -m %s: %v)", path, path, listErr)
}

// hashSource hashes what a function's build reads from the module: every
// Go file but tests, go.mod and go.sum. Folders that are not source (VCS,
// node_modules, CDK output, build output, test data) are skipped.
func hashSource(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "node_modules" || name == "cdk.out" || name == "dist" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) && name != "go.mod" && name != "go.sum" {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package tollgate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// TestAssetBuiltOnlyWhenSourceChanges: a function is built at synth, by CDK's
// asset bundling; synthesising again into the same cdk.out, with the source
// unchanged, finds the asset by its hash and builds nothing. The second
// synth runs with no go on the PATH, so any build would fail it, and with
// CDK's in-process cache of staged assets cleared, as a new cdk synth has.
func TestAssetBuiltOnlyWhenSourceChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function at synth")
	}
	defer jsii.Close()
	out := t.TempDir()
	synth := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
		stack := awscdk.NewStack(app, jsii.String("Bundled"), nil)
		awslambda.NewFunction(stack, jsii.String("Echo"), &awslambda.FunctionProps{
			Runtime: awslambda.Runtime_PROVIDED_AL2023(), Architecture: awslambda.Architecture_ARM_64(),
			Handler: jsii.String("bootstrap"), Code: FunctionCode("", "echo"),
		})
		app.Synth(nil)
		return nil
	}
	assets := func() []string {
		found, _ := filepath.Glob(filepath.Join(out, "asset.*", "bootstrap"))
		return found
	}

	if err := synth(); err != nil {
		t.Fatal(err)
	}
	first := assets()
	if len(first) != 1 {
		t.Fatalf("assets after the first synth: %v, want the echo function's", first)
	}
	src, err := source()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(first[0])
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv("PATH", t.TempDir()) // no go: a build would fail
	awscdk.AssetStaging_ClearAssetHashCache()
	if err := synth(); err != nil {
		t.Fatalf("the second synth, source unchanged, built again: %v", err)
	}
	after, err := os.Stat(first[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := assets(); len(got) != 1 || got[0] != first[0] || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("assets after the second synth: %v (was %s, %v; now %v)", got, first[0], before.ModTime(), after.ModTime())
	}
	t.Logf("echo's asset %s, from source hash %.12s", filepath.Base(filepath.Dir(first[0])), src.hash)
}

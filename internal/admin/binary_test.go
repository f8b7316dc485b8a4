package admin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/lambdatest"
	"github.com/tollgate-dev/tollgate/internal/localstack"
)

// TestFunctionBinaries builds functions/keys, functions/plans and
// functions/usage, runs each as a Lambda execution environment, and sends
// it its sample payloads and a bad one.
func TestFunctionBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	dir := t.TempDir()
	for _, fn := range admin.Functions {
		t.Run(fn, func(t *testing.T) {
			bin, err := lambdatest.Build("../../functions/"+fn, dir)
			if err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join("..", "..", "events", fn, "*.json"))
			for _, file := range files {
				// A fresh table per sample, as the samples assume.
				f := setup(t)
				if err := localstack.SeedSamples(context.Background(), f.tbl); err != nil {
					t.Fatal(err)
				}
				p, err := lambdatest.Start(bin, "TABLE_NAME="+f.tbl.Name, "AWS_ENDPOINT_URL_DYNAMODB="+dynamotest.Endpoint())
				if err != nil {
					t.Fatal(err)
				}
				payload, _ := os.ReadFile(file)
				out, err := p.Invoke(context.Background(), payload)
				if err != nil {
					p.Stop()
					t.Fatalf("%s: %v\n%s", file, err, p.Output())
				}
				if len(out) == 0 || out[0] != '{' {
					t.Fatalf("%s: response %q", file, out)
				}
				// An action of another function: the error's type and message
				// arrive through the Runtime API.
				_, err = p.Invoke(context.Background(), []byte(`{"action":"GetUsagePlanKeys","usagePlanId":"x"}`))
				var fe *lambdatest.FunctionError
				switch {
				case fn == "plans":
					if !errors.As(err, &fe) || fe.Type != admin.NotFound {
						t.Fatalf("GetUsagePlanKeys of a missing plan: %v", err)
					}
				case !errors.As(err, &fe) || fe.Type != admin.BadRequest || !strings.Contains(fe.Message, "plans function"):
					t.Fatalf("an action of the plans function sent to %s: %v", fn, err)
				}
				p.Stop()
			}
		})
	}
}

package cli

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// The AWS CLI v2's --cli-binary-format: how a blob parameter given inline,
// with file:// or in --cli-input-json is read. fileb:// is always the
// file's bytes.
const (
	binaryBase64 = "base64"            // the value is base64: the AWS CLI v2's default
	binaryRaw    = "raw-in-base64-out" // the value is the bytes: tollgate's default
)

// decodeBlobs reads the input's blob members as --cli-binary-format says.
// Without it, tollgate takes them as they are, as raw-in-base64-out does
// (a CSV is text, so nobody need encode it); with base64, it decodes them,
// as the AWS CLI v2 does by default. Those given with fileb:// are bytes
// already.
func decodeBlobs(op *Operation, format string, input map[string]any, opts commandOptions) error {
	if format != binaryBase64 {
		return nil
	}
	for _, m := range op.Input {
		v, ok := input[m.Name].(string)
		if m.Shape.Kind != Blob || !ok || opts.fromFileb[m.Name] {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return parsingError("--"+kebab(m.Name), fmt.Errorf("Invalid base64: %q (--cli-binary-format base64 takes blobs in base64: pass the file with fileb://, or use --cli-binary-format raw-in-base64-out)", abbreviate(v, 40)))
		}
		input[m.Name] = string(b)
	}
	return nil
}

func abbreviate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

package resourcearn

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		arn  string
		want ARN
		err  string
	}{
		{"arn:aws:apigateway:us-east-1::/usageplans/c7y23b", ARN{UsagePlans, "c7y23b"}, ""},
		{"arn:aws:apigateway:eu-west-2::/apikeys/a1b2c3d4e5", ARN{APIKeys, "a1b2c3d4e5"}, ""},
		// The region and the partition are not checked.
		{"arn:aws-cn:apigateway:local::/apikeys/k", ARN{APIKeys, "k"}, ""},
		{"", ARN{}, "resourceArn is required: arn:aws:apigateway:<region>::/usageplans/<id> or"},
		{"c7y23b", ARN{}, `resourceArn must be arn:aws:apigateway:<region>::/usageplans/<id> or arn:aws:apigateway:<region>::/apikeys/<id>, not "c7y23b"`},
		{"arn:aws:execute-api:us-east-1::/apikeys/x", ARN{}, "resourceArn must be"},
		{"arn:aws:apigateway:us-east-1:123456789012:/usageplans/x", ARN{}, "resourceArn must be"},
		{"arn:aws:apigateway:us-east-1::/usageplans/x/keys", ARN{}, "resourceArn must be"},
		{"arn:aws:apigateway:us-east-1::/usageplans/", ARN{}, "resourceArn must be"},
		{"arn:aws:apigateway:us-east-1::usageplans/x", ARN{}, "resourceArn must be"},
		{"arn:aws:apigateway:us-east-1::/restapis/a1b2c3", ARN{}, "Tollgate tags usage plans (::/usageplans/<id>) and API keys (::/apikeys/<id>), not restapis"},
	} {
		got, err := Parse(tc.arn)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.arn, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q) = %+v, %v; want an error with %q", tc.arn, got, err, tc.err)
		}
	}
}

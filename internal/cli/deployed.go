package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

// DefaultStack is the stack `make deploy` creates.
const DefaultStack = "Tollgate"

// outputNames are the stack outputs that name each admin function
// (infra/stack.go).
var outputNames = map[string]string{
	"keys":  "KeysFunctionName",
	"plans": "PlansFunctionName",
	"usage": "UsageFunctionName",
}

// deployed invokes the admin functions of a deployed stack through the
// Lambda Invoke API, with the AWS SDK's standard configuration: --profile
// and --region or AWS_PROFILE and AWS_REGION, the usual credential chain,
// and endpoints from AWS_ENDPOINT_URL_LAMBDA and
// AWS_ENDPOINT_URL_CLOUDFORMATION. Function names come from --keys-function
// and the like, or else from the stack's outputs.
type deployed struct {
	profile, region, stack string
	names                  map[string]string // given names, by function

	once    sync.Once
	initErr error
	lambda  *lambda.Client
	cfn     *cloudformation.Client
	outputs map[string]string
}

func (d *deployed) init(ctx context.Context) error {
	d.once.Do(func() {
		var opts []func(*config.LoadOptions) error
		if d.profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(d.profile))
		}
		if d.region != "" {
			opts = append(opts, config.WithRegion(d.region))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		var noProfile config.SharedConfigProfileNotExistError
		switch {
		case errors.As(err, &noProfile):
			d.initErr = &configError{fmt.Sprintf("The config profile (%s) could not be found", noProfile.Profile)}
			return
		case err != nil:
			d.initErr = &configError{fmt.Sprintf("The AWS configuration cannot be loaded: %v", err)}
			return
		case cfg.Region == "":
			d.initErr = &configError{`You must specify a region. You can also configure your region by running "aws configure".` +
				" (Or pass --region, or set AWS_REGION; for the local stack, pass --endpoint-url or set TOLLGATE_ENDPOINT_URL.)"}
			return
		}
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			d.initErr = &configError{`Unable to locate credentials. You can configure credentials by running "aws configure".` +
				" (For the local stack, pass --endpoint-url or set TOLLGATE_ENDPOINT_URL.)"}
			return
		}
		d.lambda = lambda.NewFromConfig(cfg)
		d.cfn = cloudformation.NewFromConfig(cfg)
	})
	return d.initErr
}

func (d *deployed) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	if err := d.init(ctx); err != nil {
		return nil, err
	}
	name, err := d.functionName(ctx, function)
	if err != nil {
		return nil, err
	}
	out, err := d.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			return nil, &ServiceError{Code: api.ErrorCode(), Message: fmt.Sprintf("Lambda could not invoke %s: %s", name, api.ErrorMessage())}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	if out.FunctionError != nil {
		if e := functionError(out.Payload); e != nil {
			return nil, e
		}
		return nil, &ServiceError{Code: aws.ToString(out.FunctionError), Message: strings.TrimSpace(string(out.Payload))}
	}
	return out.Payload, nil
}

// functionName is the given name, or the stack's output for it, read
// once with DescribeStacks.
func (d *deployed) functionName(ctx context.Context, function string) (string, error) {
	if n := d.names[function]; n != "" {
		return n, nil
	}
	if d.outputs == nil {
		out, err := d.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(d.stack)})
		if err != nil {
			var api smithy.APIError
			if errors.As(err, &api) {
				return "", &callError{op: "DescribeStacks", err: &ServiceError{Code: api.ErrorCode(), Message: api.ErrorMessage() +
					fmt.Sprintf(" (tollgate reads the admin functions' names from stack %s's outputs: deploy it with make deploy, name another with --stack, or name the function with --%s-function)", d.stack, function)}}
			}
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("describe stack %s: %w", d.stack, err)
		}
		d.outputs = map[string]string{}
		for _, s := range out.Stacks {
			for _, o := range s.Outputs {
				d.outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
		}
	}
	if n := d.outputs[outputNames[function]]; n != "" {
		return n, nil
	}
	return "", &configError{fmt.Sprintf("Stack %s has no output %s: name the %s function with --%s-function or TOLLGATE_%s_FUNCTION, or the stack with --stack",
		d.stack, outputNames[function], function, function, strings.ToUpper(function))}
}

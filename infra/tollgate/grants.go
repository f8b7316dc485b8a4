package tollgate

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// GrantAdmin lets grantee (a CI role, an operator's role for the command
// line) invoke the three admin functions: keys, plans and usage, every
// action of each.
func (t *Tollgate) GrantAdmin(grantee awsiam.IGrantable) awsiam.Grant {
	return grantInvoke(grantee, t.KeysFunction, t.PlansFunction, t.UsageFunction)
}

// GrantUsageRead lets grantee (a billing job) invoke the usage function
// only. Lambda grants whole functions, not actions: the usage function also
// serves UpdateUsage, so the grantee can change a key's remaining quota,
// but it cannot read or change keys or plans.
func (t *Tollgate) GrantUsageRead(grantee awsiam.IGrantable) awsiam.Grant {
	return grantInvoke(grantee, t.UsageFunction)
}

// grantInvoke allows lambda:InvokeFunction on the functions' unqualified
// ARNs, which is how Tollgate's functions are called: no versions or
// aliases, so no ":*".
func grantInvoke(grantee awsiam.IGrantable, fns ...awslambda.Function) awsiam.Grant {
	var arns []*string
	for _, fn := range fns {
		arns = append(arns, fn.FunctionArn())
	}
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings("lambda:InvokeFunction"),
		ResourceArns: &arns,
	})
}

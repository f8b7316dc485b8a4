package cli

// Members that several operations share.
var (
	apiKeyID       = Member{Name: "apiKey", Shape: str, Required: true, Doc: "The API key's id."}
	usagePlanID    = Member{Name: "usagePlanId", Shape: str, Required: true, Doc: "The usage plan's id."}
	keyID          = Member{Name: "keyId", Shape: str, Required: true, Doc: "The API key's id."}
	nameQuery      = Member{Name: "nameQuery", Shape: str, Doc: "Only keys whose name starts with this."}
	tags           = Member{Name: "tags", Shape: tagMap, Doc: "Tags: team=x,tier=gold."}
	patchOps       = Member{Name: "patchOperations", Shape: listOf(patchOperation), Doc: "The changes: op=replace,path=/name,value=x [op=... ...]."}
	optionalKeyID  = Member{Name: "keyId", Shape: str, Doc: "Only this API key."}
	planKeyMembers = []Member{usagePlanID, keyID}
	resourceArn    = Member{Name: "resourceArn", Shape: str, Required: true, Doc: "The usage plan's or API key's ARN: arn:aws:apigateway:<region>::/usageplans/<id> or ::/apikeys/<id>."}
)

// operations is the command table: one entry per admin operation, in the
// order help lists them. Adding an operation is adding its entry.
var operations = []Operation{
	{Name: "CreateApiKey", Function: "keys", Doc: "Create an API key; its value appears in this response only.", Input: []Member{
		{Name: "name", Shape: str, Doc: "The key's name."},
		{Name: "description", Shape: str, Doc: "The key's description."},
		{Name: "enabled", Shape: boolean, Doc: "Whether the key can be used (Tollgate's default: enabled)."},
		{Name: "generateDistinctId", Shape: boolean, Doc: "Deprecated in API Gateway; accepted and ignored."},
		{Name: "value", Shape: str, Doc: "Your own value (20-128 characters); Tollgate generates one otherwise."},
		{Name: "stageKeys", Shape: listOf(stageKey), Doc: "Deprecated in API Gateway; rejected: use create-usage-plan-key."},
		{Name: "customerId", Shape: str, Doc: "An AWS Marketplace customer id, or any id of yours."},
		tags,
		{Name: "identities", Shape: listOf(str), Doc: "JWT callers' identities (claim values) this key meters: id1 id2 (a Tollgate extension)."},
		{Name: "expiresAt", Shape: str, Doc: "When the key stops working, RFC 3339: 2027-01-01T00:00:00Z (a Tollgate extension)."},
	}},
	{Name: "GetApiKey", Function: "keys", Doc: "Describe an API key (never its value).", Input: []Member{
		apiKeyID,
		{Name: "includeValue", Shape: boolean, Doc: "Rejected: Tollgate stores only a hash of each value."},
	}},
	{Name: "GetApiKeys", Function: "keys", Paginated: true, Doc: "List API keys.", Input: []Member{
		nameQuery,
		{Name: "customerId", Shape: str, Doc: "Only keys with this customer id."},
		{Name: "includeValues", Shape: boolean, Doc: "Rejected: Tollgate stores only a hash of each value."},
	}},
	{Name: "UpdateApiKey", Function: "keys", Doc: "Change an API key's name, description, customer id or enabled.", Input: []Member{apiKeyID, patchOps}},
	{Name: "DeleteApiKey", Function: "keys", Doc: "Delete an API key; it leaves every usage plan.", Input: []Member{apiKeyID}},
	{Name: "ImportApiKeys", Function: "keys", Doc: "Import API keys from API Gateway's CSV format.", Input: []Member{
		{Name: "body", Shape: blob, Required: true, Doc: "The CSV: fileb://keys.csv or file://keys.csv."},
		{Name: "format", Shape: enum("csv"), Required: true, Doc: "csv."},
		{Name: "failOnWarnings", Shape: boolean, Doc: "Import nothing if any row has a problem."},
	}},
	{Name: "RotateApiKey", Function: "keys", Doc: "Give an API key a new value; the old one works for a grace period (a Tollgate extension).", Input: []Member{
		apiKeyID,
		{Name: "gracePeriod", Shape: integer, Required: true, Doc: "Seconds the current value keeps working beside the new one: 0 (it stops at once) to 2592000 (30 days)."},
		{Name: "value", Shape: str, Doc: "Your own new value (20-128 characters); Tollgate generates one otherwise."},
		{Name: "clientToken", Shape: str, IdempotencyToken: true, Doc: "Makes repeating this rotation safe (up to 128 characters); tollgate sends a fresh UUID if left out."},
	}},

	{Name: "CreateUsagePlan", Function: "plans", Doc: "Create a usage plan: a throttle, a quota, and the API stages it covers.", Input: []Member{
		{Name: "name", Shape: str, Required: true, Doc: "The plan's name."},
		{Name: "description", Shape: str, Doc: "The plan's description."},
		{Name: "apiStages", Shape: listOf(apiStage), Doc: "The API stages: apiId=a1b2c3,stage=prod [apiId=...,stage=... ...]."},
		{Name: "throttle", Shape: throttle, Doc: "The throttle: burstLimit=2,rateLimit=1."},
		{Name: "quota", Shape: quota, Doc: "The quota: limit=5,period=DAY (DAY, WEEK or MONTH; offset=N)."},
		tags,
	}},
	{Name: "GetUsagePlan", Function: "plans", Doc: "Describe a usage plan.", Input: []Member{usagePlanID}},
	{Name: "GetUsagePlans", Function: "plans", Paginated: true, Doc: "List usage plans.", Input: []Member{
		{Name: "keyId", Shape: str, Doc: "Only the plans this API key is in."},
	}},
	{Name: "UpdateUsagePlan", Function: "plans", Doc: "Change a usage plan's throttle, quota, stages, name or description.", Input: []Member{usagePlanID, patchOps}},
	{Name: "DeleteUsagePlan", Function: "plans", Doc: "Delete a usage plan that has no keys or stages left.", Input: []Member{usagePlanID}},
	{Name: "CreateUsagePlanKey", Function: "plans", Doc: "Put an API key in a usage plan.", Input: []Member{
		usagePlanID, keyID,
		{Name: "keyType", Shape: enum("API_KEY"), Required: true, Doc: "API_KEY."},
	}},
	{Name: "GetUsagePlanKey", Function: "plans", Doc: "Describe an API key in a usage plan.", Input: planKeyMembers},
	{Name: "GetUsagePlanKeys", Function: "plans", Paginated: true, Doc: "List the API keys in a usage plan.", Input: []Member{usagePlanID, nameQuery}},
	{Name: "DeleteUsagePlanKey", Function: "plans", Doc: "Take an API key out of a usage plan.", Input: planKeyMembers},

	{Name: "GetUsage", Function: "usage", Paginated: true, Doc: "Read usage: per key, [used, remaining] for each UTC day.", Input: []Member{
		usagePlanID, optionalKeyID,
		{Name: "startDate", Shape: str, Required: true, Doc: "The first day, YYYY-MM-DD (UTC)."},
		{Name: "endDate", Shape: str, Required: true, Doc: "The last day, YYYY-MM-DD (UTC)."},
		{Name: "format", Shape: enum("csv"), Doc: "csv: the usage as CSV in body (a Tollgate extension)."},
	}},
	{Name: "UpdateUsage", Function: "usage", Doc: "Set a key's remaining quota for the current period: op=replace,path=/remaining,value=N.", Input: []Member{
		usagePlanID, keyID, patchOps,
	}},

	{Name: "TagResource", Route: byResourceArn, Doc: "Add tags to a usage plan or an API key, or change their values.", Input: []Member{
		resourceArn,
		{Name: "tags", Shape: tagMap, Required: true, Doc: "The tags to add or change: team=x,tier=gold (tollgate:enforce=shadow|enforce on a plan)."},
	}},
	{Name: "UntagResource", Route: byResourceArn, Doc: "Remove tags from a usage plan or an API key.", Input: []Member{
		resourceArn,
		{Name: "tagKeys", Shape: listOf(str), Required: true, Doc: "The keys of the tags to remove: team tier."},
	}},
	{Name: "GetTags", Route: byResourceArn, Doc: "List a usage plan's or an API key's tags.", Input: []Member{
		resourceArn,
		{Name: "position", Shape: str, Doc: "Accepted and ignored, as API Gateway documents: all tags come back at once."},
		{Name: "limit", Shape: integer, Doc: "Accepted and ignored, as API Gateway documents: all tags come back at once."},
	}},
}

// operation finds a table entry by its subcommand.
func operation(command string) *Operation {
	for i := range operations {
		if operations[i].Command() == command {
			return &operations[i]
		}
	}
	return nil
}

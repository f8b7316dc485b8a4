package store

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Schema is the table's definition. Tests, the local stack and the CDK stack
// all build the table from it, so there is no second copy to drift.
//
// The table has no secondary index on purpose: every item a request writes
// (the meter item) would otherwise cost an index write whenever an indexed
// attribute changed, and listings read catalog items with strong
// consistency instead.
var Schema = TableSchema{
	PartitionKey: "pk",
	SortKey:      "sk",
	TTLAttribute: AttrExpires,
	StreamView:   types.StreamViewTypeNewAndOldImages,
}

// TableSchema describes a DynamoDB table with string partition and sort keys.
type TableSchema struct {
	PartitionKey string
	SortKey      string
	// TTLAttribute holds an item's expiry in epoch seconds. Only usage
	// history items carry it.
	TTLAttribute string
	// StreamView is what the table's stream records carry. The notifier
	// reads meter items' changes from it, before and after (quota alerts).
	StreamView types.StreamViewType
}

// CreateTableInput is the CreateTable request for a table named name, billed
// on demand.
func (s TableSchema) CreateTableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(s.PartitionKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(s.SortKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(s.PartitionKey), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(s.SortKey), KeyType: types.KeyTypeRange},
		},
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: s.StreamView},
	}
}

// UpdateTimeToLiveInput turns on expiry by TTLAttribute.
func (s TableSchema) UpdateTimeToLiveInput(name string) *dynamodb.UpdateTimeToLiveInput {
	return &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(s.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	}
}

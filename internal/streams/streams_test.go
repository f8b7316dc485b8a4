package streams

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

func TestLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"9", "10", true}, {"10", "9", false}, {"000000000000000000001", "000000000000000000002", true},
		{"111100000000012345678901", "111100000000012345678901", false}, {"99999999999999999999999", "100000000000000000000000", true},
	} {
		if got := Less(tt.a, tt.b); got != tt.want {
			t.Errorf("Less(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}

// TestRecords turns a stream record into the record of a Lambda event, with
// every kind of attribute value.
func TestRecords(t *testing.T) {
	when := time.Unix(1795256913, 0)
	image := map[string]types.AttributeValue{
		"s": &types.AttributeValueMemberS{Value: "x"}, "n": &types.AttributeValueMemberN{Value: "42"},
		"b": &types.AttributeValueMemberB{Value: []byte{1, 2}}, "t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true}, "ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{3}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"t": &types.AttributeValueMemberN{Value: "7"}}},
	}
	recs, err := Records([]types.Record{{
		EventID: aws.String("e1"), EventName: types.OperationTypeModify, EventVersion: aws.String("1.1"), AwsRegion: aws.String("eu-west-1"),
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: &when, SequenceNumber: aws.String("123"), SizeBytes: aws.Int64(99),
			StreamViewType: types.StreamViewTypeNewAndOldImages, Keys: map[string]types.AttributeValue{"s": image["s"]},
			NewImage: image, OldImage: map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "41"}},
		},
	}}, "arn:stream")
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	r := recs[0]
	if r.EventID != "e1" || r.EventName != "MODIFY" || r.EventSource != "aws:dynamodb" || r.AWSRegion != "eu-west-1" || r.EventSourceArn != "arn:stream" ||
		r.Change.SequenceNumber != "123" || r.Change.SizeBytes != 99 || !r.Change.ApproximateCreationDateTime.Equal(when) {
		t.Errorf("record %+v", r)
	}
	img := r.Change.NewImage
	if img["s"].String() != "x" || img["n"].Number() != "42" || string(img["b"].Binary()) != "\x01\x02" || !img["t"].Boolean() ||
		!img["z"].IsNull() || len(img["ss"].StringSet()) != 2 || img["ns"].NumberSet()[0] != "1" || img["bs"].BinarySet()[0][0] != 3 ||
		img["l"].List()[0].Number() != "1" || img["m"].Map()["t"].Number() != "7" || r.Change.OldImage["n"].Number() != "41" {
		b, _ := json.Marshal(img)
		t.Errorf("image %s", b)
	}
}

package authorizer

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// request is what a decision reads of an event.
type request struct {
	value     string // the API key, "" if none
	apiID     string
	stage     string
	routeKey  string
	requestID string
}

// newRequest reads a decoded event.
func (s KeySource) newRequest(ev *events.APIGatewayV2CustomAuthorizerV2Request) request {
	keys := ev.Headers
	if s.Query {
		keys = ev.QueryStringParameters
	}
	return request{value: s.lookup(keys), apiID: ev.RequestContext.APIID, stage: ev.RequestContext.Stage,
		routeKey: ev.RouteKey, requestID: ev.RequestContext.RequestID}
}

// lookup finds the key in headers or query parameters. Header names are
// matched without regard to case, as HTTP requires; query parameters
// exactly, as API Gateway does.
func (s KeySource) lookup(m map[string]string) string {
	if v, ok := m[s.Name]; ok || s.Query {
		return v
	}
	for name, v := range m {
		if strings.EqualFold(name, s.Name) {
			return v
		}
	}
	return ""
}

// A decoder turns an event's JSON into a request, decoding only what the
// request holds: of the headers, only the key's. Most of a decision's
// allocations were the header map, so the decoder's type is a struct
// built for the configured header, whose one field encoding/json fills
// from the header of that name, matched without regard to case.
type decoder struct {
	typ reflect.Type
	src KeySource
}

type requestContext struct {
	APIID     string `json:"apiId"`
	Stage     string `json:"stage"`
	RequestID string `json:"requestId"`
}

func newDecoder(src KeySource) decoder {
	keys, tag := reflect.TypeFor[map[string]string](), `json:"queryStringParameters"`
	if !src.Query {
		tag = `json:"headers"`
		if jsonName(src.Name) {
			keys = reflect.StructOf([]reflect.StructField{{Name: "Key", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + src.Name + `"`)}})
		}
	}
	return decoder{src: src, typ: reflect.StructOf([]reflect.StructField{
		{Name: "RouteKey", Type: reflect.TypeFor[string](), Tag: `json:"routeKey"`},
		{Name: "Keys", Type: keys, Tag: reflect.StructTag(tag)},
		{Name: "RequestContext", Type: reflect.TypeFor[requestContext](), Tag: `json:"requestContext"`},
	})}
}

func (d decoder) decode(payload []byte) (request, error) {
	v := reflect.New(d.typ)
	if err := json.Unmarshal(payload, v.Interface()); err != nil {
		return request{}, err
	}
	e := v.Elem()
	rc := e.Field(2).Addr().Interface().(*requestContext)
	r := request{routeKey: e.Field(0).String(), apiID: rc.APIID, stage: rc.Stage, requestID: rc.RequestID}
	if keys := e.Field(1); keys.Kind() == reflect.Struct {
		r.value = keys.Field(0).String()
	} else {
		r.value = d.src.lookup(keys.Interface().(map[string]string))
	}
	return r, nil
}

// jsonName reports whether encoding/json takes name as a field's name in a
// struct tag; header names with other characters fall back to a map.
func jsonName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

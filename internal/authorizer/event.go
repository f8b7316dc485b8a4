package authorizer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// request is what a decision reads of an event.
type request struct {
	value     string // the API key, "" if none
	token     string // the token's header or parameter as sent, "" if none or not read (AUTH_MODE=key)
	apiID     string
	stage     string
	routeKey  string
	requestID string
}

// newRequest reads a decoded event.
func (c *Config) newRequest(ev *events.APIGatewayV2CustomAuthorizerV2Request) request {
	from := func(s KeySource) string {
		if s.Query {
			return s.lookup(ev.QueryStringParameters)
		}
		return s.lookup(ev.Headers)
	}
	r := request{value: from(c.KeySource), apiID: ev.RequestContext.APIID, stage: ev.RequestContext.Stage,
		routeKey: ev.RouteKey, requestID: ev.RequestContext.RequestID}
	if c.readsTokens() {
		r.token = from(c.TokenSource)
	}
	return r
}

// readsTokens reports whether requests are read for a token.
func (c *Config) readsTokens() bool { return c.Auth != AuthKey && c.Auth != "" }

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
// request holds: of the headers, only the key's (and the token's). Most of
// a decision's allocations were the header map, so the decoder's type is a
// struct built for the configured headers, whose fields encoding/json fills
// from the headers of those names, matched without regard to case.
type decoder struct {
	typ        reflect.Type
	key, token KeySource // token.Name is "" when tokens are not read
	headers    int       // the field holding headers, or -1
	query      int       // the field holding query parameters, or -1
	inHeaders  [2]int    // the key's and the token's fields within a headers struct, or -1
}

type requestContext struct {
	APIID     string `json:"apiId"`
	Stage     string `json:"stage"`
	RequestID string `json:"requestId"`
}

func newDecoder(c Config) decoder {
	d := decoder{key: c.KeySource, headers: -1, query: -1, inHeaders: [2]int{-1, -1}}
	if c.readsTokens() {
		d.token = c.TokenSource
	}
	fields := []reflect.StructField{
		{Name: "RouteKey", Type: reflect.TypeFor[string](), Tag: `json:"routeKey"`},
		{Name: "RequestContext", Type: reflect.TypeFor[requestContext](), Tag: `json:"requestContext"`},
	}
	var named []reflect.StructField // one field per header read
	asMap := false
	for i, s := range []KeySource{d.key, d.token} {
		switch {
		case s.Name == "":
		case s.Query:
			if d.query < 0 {
				d.query = len(fields)
				fields = append(fields, reflect.StructField{Name: "Query", Type: reflect.TypeFor[map[string]string](), Tag: `json:"queryStringParameters"`})
			}
		default:
			d.inHeaders[i] = len(named)
			named = append(named, reflect.StructField{Name: fmt.Sprint("H", i), Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + s.Name + `"`)})
			asMap = asMap || !jsonName(s.Name)
		}
	}
	if len(named) > 0 {
		headers := reflect.StructOf(named)
		if asMap {
			headers = reflect.TypeFor[map[string]string]()
		}
		d.headers = len(fields)
		fields = append(fields, reflect.StructField{Name: "Headers", Type: headers, Tag: `json:"headers"`})
	}
	d.typ = reflect.StructOf(fields)
	return d
}

func (d decoder) decode(payload []byte) (request, error) {
	v := reflect.New(d.typ)
	if err := json.Unmarshal(payload, v.Interface()); err != nil {
		return request{}, err
	}
	e := v.Elem()
	rc := e.Field(1).Addr().Interface().(*requestContext)
	r := request{routeKey: e.Field(0).String(), apiID: rc.APIID, stage: rc.Stage, requestID: rc.RequestID}
	get := func(s KeySource, i int) string {
		if s.Query {
			return s.lookup(e.Field(d.query).Interface().(map[string]string))
		}
		h := e.Field(d.headers)
		if h.Kind() == reflect.Struct {
			return h.Field(d.inHeaders[i]).String()
		}
		return s.lookup(h.Interface().(map[string]string))
	}
	r.value = get(d.key, 0)
	if d.token.Name != "" {
		r.token = get(d.token, 1)
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

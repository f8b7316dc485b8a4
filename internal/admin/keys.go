package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

var keyOperations = map[string]operation{
	"CreateApiKey":  op(createApiKey),
	"GetApiKey":     op(getApiKey),
	"GetApiKeys":    op(getApiKeys),
	"UpdateApiKey":  op(updateApiKey),
	"DeleteApiKey":  op(deleteApiKey),
	"ImportApiKeys": op(importApiKeys),
	"RotateApiKey":  op(rotateApiKey),
	"TagResource":   tagResource(kindKeys),
	"UntagResource": untagResource(kindKeys),
	"GetTags":       getTags(kindKeys),
}

// noValues explains why a key's value cannot be read back.
const noValues = "Tollgate stores only a SHA-256 hash of each API key's value, never the value, so it cannot return it: " +
	"the value appears once, in CreateApiKey's (or RotateApiKey's) response. To give a caller a new value, " +
	"rotate the key with RotateApiKey"

type createApiKeyInput struct {
	action
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Enabled     *bool             `json:"enabled"`
	Value       *string           `json:"value"`
	CustomerID  string            `json:"customerId"`
	Tags        map[string]string `json:"tags"`
	// Identities is a Tollgate extension: the JWT claim values this key
	// meters (see the README's "JWT callers").
	Identities []string `json:"identities"`
	// ExpiresAt is a Tollgate extension: when the key stops working.
	ExpiresAt string `json:"expiresAt"`
	// Deprecated in API Gateway; accepted so that old scripts run.
	GenerateDistinctID *bool             `json:"generateDistinctId"`
	StageKeys          []json.RawMessage `json:"stageKeys"`
}

func createApiKey(ctx context.Context, s *Service, in *createApiKeyInput) (any, error) {
	if len(in.StageKeys) > 0 {
		return nil, badRequest("stageKeys is API Gateway's deprecated way to attach keys to stages: create the key, then add it to a usage plan with CreateUsagePlanKey")
	}
	if err := checkKeyFields(in.Name, in.Description, in.CustomerID, in.Tags); err != nil {
		return nil, err
	}
	if err := checkReservedTags(kindKeys, in.Tags); err != nil {
		return nil, err
	}
	if err := checkIdentities("identities", in.Identities); err != nil {
		return nil, err
	}
	expires, e := parseExpiry("expiresAt", in.ExpiresAt)
	if e != nil {
		return nil, e
	}
	value, err := keyValue(in.Value)
	if err != nil {
		return nil, err
	}
	k := &store.Key{
		ID: keys.NewID(), Name: in.Name, Description: in.Description, CustomerID: in.CustomerID,
		Enabled: in.Enabled == nil || *in.Enabled, Tags: in.Tags, Hash: keys.Hash(value), Identities: in.Identities,
	}
	k.ExpiresAt = expires
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return nil, err
	}
	out := apiKey(k)
	out.Value = value
	return out, nil
}

func checkKeyFields(name, description, customerID string, tags map[string]string) *Error {
	if err := checkLength("name", name, maxName); err != nil {
		return err
	}
	if err := checkLength("description", description, maxDescription); err != nil {
		return err
	}
	if err := checkLength("customerId", customerID, maxCustomerID); err != nil {
		return err
	}
	return checkTags(tags)
}

type getApiKeyInput struct {
	action
	APIKey       string `json:"apiKey"`
	IncludeValue bool   `json:"includeValue"`
}

func getApiKey(ctx context.Context, s *Service, in *getApiKeyInput) (any, error) {
	if in.IncludeValue {
		return nil, badRequest("includeValue: %s", noValues)
	}
	if in.APIKey == "" {
		return nil, badRequest("apiKey is required: the id of the API key")
	}
	k, err := s.Store.Key(ctx, in.APIKey)
	if err != nil {
		return nil, err
	}
	return apiKey(k), nil
}

type getApiKeysInput struct {
	action
	paging
	NameQuery     string `json:"nameQuery"`
	CustomerID    string `json:"customerId"`
	IncludeValues bool   `json:"includeValues"`
}

// scanBudget bounds how many keys one call reads while filtering, so that
// a filter matching few of many keys returns a short page with a position
// rather than time out.
const scanBudget = 5000

func getApiKeys(ctx context.Context, s *Service, in *getApiKeysInput) (any, error) {
	if in.IncludeValues {
		return nil, badRequest("includeValues: %s", noValues)
	}
	limit, after, e := in.read()
	if e != nil {
		return nil, e
	}
	found, next, err := s.scanKeys(ctx, s.Store.KeyIDs, limit, after, func(k *store.Key) bool {
		return strings.HasPrefix(k.Name, in.NameQuery) && (in.CustomerID == "" || k.CustomerID == in.CustomerID)
	})
	if err != nil {
		return nil, err
	}
	out := List[ApiKey]{Items: []ApiKey{}, Position: encodePosition(next)}
	for _, k := range found {
		out.Items = append(out.Items, apiKey(k))
	}
	return out, nil
}

// scanKeys pages through key ids with list, reads the keys and keeps those
// that match, until it has limit of them, the list ends, or it has read
// scanBudget keys. It returns the id to continue after, or "".
func (s *Service) scanKeys(ctx context.Context, list func(context.Context, string, int) (store.Page, error),
	limit int, after string, match func(*store.Key) bool) ([]*store.Key, string, error) {
	var out []*store.Key
	for scanned := 0; ; {
		page, err := list(ctx, after, limit-len(out))
		if err != nil {
			return nil, "", err
		}
		found, err := s.Store.Keys(ctx, page.IDs)
		if err != nil {
			return nil, "", err
		}
		for _, id := range page.IDs {
			if k := found[id]; k != nil && match(k) {
				out = append(out, k)
			}
		}
		scanned += len(page.IDs)
		after = page.Next
		if after == "" || len(out) == limit || scanned >= scanBudget {
			return out, after, nil
		}
	}
}

type updateApiKeyInput struct {
	action
	APIKey          string           `json:"apiKey"`
	PatchOperations []PatchOperation `json:"patchOperations"`
}

func updateApiKey(ctx context.Context, s *Service, in *updateApiKeyInput) (any, error) {
	if in.APIKey == "" {
		return nil, badRequest("apiKey is required: the id of the API key")
	}
	if len(in.PatchOperations) == 0 {
		return nil, badRequest("patchOperations is empty: say what to change, e.g. [{\"op\":\"replace\",\"path\":\"/enabled\",\"value\":\"false\"}]")
	}
	k, err := s.Store.UpdateKey(ctx, in.APIKey, func(k *store.Key) error {
		for i, p := range in.PatchOperations {
			if p.Path == "/identities" {
				if e := patchIdentities(k, i, p); e != nil {
					return e
				}
				continue
			}
			if p.Op != "replace" {
				return badRequest("patchOperations[%d]: UpdateApiKey supports op replace, not %q (add and remove are for /identities)", i, p.Op)
			}
			v, e := p.value(i)
			if e != nil {
				return e
			}
			switch p.Path {
			case "/name":
				k.Name = v
			case "/description":
				k.Description = v
			case "/customerId":
				k.CustomerID = v
			case "/enabled":
				if k.Enabled, e = parseBool(i, v); e != nil {
					return e
				}
			case "/expiresAt":
				if k.ExpiresAt, e = parseExpiry(fmt.Sprintf("patchOperations[%d].value", i), v); e != nil {
					return e
				}
			case "/value":
				return badRequest("patchOperations[%d]: a key's value cannot change with UpdateApiKey; give the key a new value with RotateApiKey", i)
			default:
				return badRequest("patchOperations[%d]: UpdateApiKey cannot change %q; it changes /name, /description, /enabled, /customerId and /expiresAt, and adds to or removes from /identities", i, p.Path)
			}
		}
		if e := checkKeyFields(k.Name, k.Description, k.CustomerID, k.Tags); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiKey(k), nil
}

type deleteApiKeyInput struct {
	action
	APIKey string `json:"apiKey"`
}

func deleteApiKey(ctx context.Context, s *Service, in *deleteApiKeyInput) (any, error) {
	if in.APIKey == "" {
		return nil, badRequest("apiKey is required: the id of the API key")
	}
	if err := s.Store.DeleteKey(ctx, in.APIKey); err != nil {
		return nil, err
	}
	return Empty{}, nil
}

// maxIdentity bounds one identity, in characters. OIDC's sub is at most
// 255 ASCII characters; other claims may be longer.
const maxIdentity = 1024

// checkIdentity checks one claim value: it must be matched exactly, so
// whitespace at its ends or control characters are taken for mistakes.
func checkIdentity(field, v string) *Error {
	switch {
	case v == "":
		return badRequest("%s is empty: an identity is the value of the token's identity claim (JWT_IDENTITY_CLAIM, sub by default)", field)
	case strings.TrimSpace(v) != v:
		return badRequest("%s %q has whitespace at an end: identities are matched exactly against the claim's value", field, v)
	case strings.ContainsFunc(v, unicode.IsControl):
		return badRequest("%s has a control character: claim values have none", field)
	}
	return checkLength(field, v, maxIdentity)
}

func checkIdentities(field string, ids []string) *Error {
	if len(ids) > store.MaxIdentities {
		return errorf(LimitExceeded, "%s lists %d identities; a key may have at most %d: for many callers per plan, meter a claim they share (JWT_IDENTITY_CLAIM), such as a tenant id", field, len(ids), store.MaxIdentities)
	}
	for i, v := range ids {
		if e := checkIdentity(fmt.Sprintf("%s[%d]", field, i), v); e != nil {
			return e
		}
		if slices.Contains(ids[:i], v) {
			return badRequest("%s lists %q twice", field, v)
		}
	}
	return nil
}

// patchIdentities applies add or remove /identities. Adding an identity
// the key has changes nothing, so a retried add converges; removing one it
// lacks is an error, so that a mistyped removal does not pass for one.
func patchIdentities(k *store.Key, i int, p PatchOperation) *Error {
	v, e := p.value(i)
	if e != nil {
		return e
	}
	if e := checkIdentity(fmt.Sprintf("patchOperations[%d].value", i), v); e != nil {
		return e
	}
	switch p.Op {
	case "add":
		if !slices.Contains(k.Identities, v) {
			k.Identities = append(k.Identities, v)
		}
	case "remove":
		n := len(k.Identities)
		k.Identities = slices.DeleteFunc(k.Identities, func(s string) bool { return s == v })
		if len(k.Identities) == n {
			return errorf(NotFound, "API key %s has no identity %q; its identities are %q", k.ID, v, k.Identities)
		}
	default:
		return badRequest("patchOperations[%d]: /identities takes op add or remove, one identity each, not %q", i, p.Op)
	}
	return nil
}

package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

type importApiKeysInput struct {
	action
	Body           string `json:"body"`
	Format         string `json:"format"`
	FailOnWarnings bool   `json:"failOnWarnings"`
}

// ImportResult is ImportApiKeys' response.
type ImportResult struct {
	IDs      []string `json:"ids"`
	Warnings []string `json:"warnings"`
}

// importRow is one key to import, checked.
type importRow struct {
	line        int
	name, value string
	description string
	enabled     bool
	planIDs     []string
	identities  []string        // nil: the Identities cell is empty (an existing key keeps its own)
	existing    *store.Key      // a key with this value already, which the import overwrites
	member      map[string]bool // the plans the existing key is in
}

// importApiKeys imports keys from API Gateway's CSV format. A value that
// already exists overwrites that key's name, description and enabled, as
// API Gateway does. Bad rows become warnings; with failOnWarnings, any
// warning means nothing is written.
func importApiKeys(ctx context.Context, s *Service, in *importApiKeysInput) (any, error) {
	if in.Format != "csv" {
		return nil, badRequest("format must be \"csv\", the only import format API Gateway defines, not %q", in.Format)
	}
	rows, warnings, e := parseImport(in.Body)
	if e != nil {
		return nil, e
	}
	rows, more, err := checkImport(ctx, s, rows)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, more...)
	if in.FailOnWarnings && len(warnings) > 0 {
		return nil, badRequest("nothing was imported because failOnWarnings is true and the CSV has problems: %s", strings.Join(warnings, "; "))
	}
	res := ImportResult{IDs: []string{}, Warnings: append([]string{}, warnings...)}
	var done journal
	for _, r := range rows {
		id, err := importOne(ctx, s, r, &done)
		if err == nil {
			res.IDs = append(res.IDs, id)
			continue
		}
		e := apiError(err)
		if in.FailOnWarnings {
			done.undo(ctx, s)
			return nil, &Error{Type: e.Type, Message: fmt.Sprintf("line %d: %s; nothing was imported", r.line, e.Message)}
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("line %d: %s", r.line, e.Message))
	}
	return res, nil
}

// parseImport reads the CSV into rows, warning about rows it cannot use.
// Headers are matched without regard to case or order; unknown columns
// are ignored. A CSV it cannot read at all is an error.
func parseImport(body string) ([]importRow, []string, *Error) {
	records, err := readCSV(body)
	if err != nil {
		return nil, nil, badRequest("body: %v", err)
	}
	if len(records) == 0 {
		return nil, nil, badRequest("body is empty: its first line must name the columns, at least Name and Key")
	}
	col := map[string]int{}
	for i, h := range records[0].fields {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"name", "key"} {
		if _, ok := col[need]; !ok {
			return nil, nil, badRequest("body has no %q column: its first line must name the columns Name and Key, and may add Description, Enabled, UsagePlanIds and Identities, in any order and any case", need)
		}
	}
	get := func(fields []string, name string) string {
		if i, ok := col[name]; ok && i < len(fields) {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	var rows []importRow
	var warnings []string
	seen := map[string]int{}
	claimed := map[string]int{} // identity → the line that lists it
	for _, rec := range records[1:] {
		f := rec.fields
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue // a blank line
		}
		r := importRow{line: rec.line, name: get(f, "name"), value: get(f, "key"), description: get(f, "description"), enabled: true}
		warn := func(format string, args ...any) {
			warnings = append(warnings, fmt.Sprintf("line %d: ", r.line)+fmt.Sprintf(format, args...))
		}
		if err := keys.Check(r.value); err != nil {
			warn("Key: %v", err)
			continue
		}
		if first, dup := seen[r.value]; dup {
			warn("the same Key as line %d; skipped", first)
			continue
		}
		seen[r.value] = r.line
		if e := checkKeyFields(r.name, r.description, "", nil); e != nil {
			warn("%s", e.Message)
			continue
		}
		if v := get(f, "enabled"); v != "" {
			switch strings.ToLower(v) {
			case "true":
			case "false":
				r.enabled = false
			default:
				warn("Enabled must be true or false (any case), not %q", v)
				continue
			}
		}
		for _, id := range strings.Split(get(f, "usageplanids"), ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(r.planIDs, id) {
				r.planIDs = append(r.planIDs, id)
			}
		}
		for _, ident := range strings.Split(get(f, "identities"), ";") {
			if ident = strings.TrimSpace(ident); ident != "" && !slices.Contains(r.identities, ident) {
				r.identities = append(r.identities, ident)
			}
		}
		if e := checkIdentities("Identities", r.identities); e != nil {
			warn("%s", e.Message)
			continue
		}
		if dup := slices.IndexFunc(r.identities, func(id string) bool { return claimed[id] != 0 }); dup >= 0 {
			warn("identity %q is on line %d too; an identity belongs to one key", r.identities[dup], claimed[r.identities[dup]])
			continue
		}
		for _, ident := range r.identities {
			claimed[ident] = r.line
		}
		rows = append(rows, r)
	}
	return rows, warnings, nil
}

// checkImport checks what only the table can tell: that the plans exist,
// and that no key would get two plans for one API stage.
func checkImport(ctx context.Context, s *Service, rows []importRow) ([]importRow, []string, error) {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.planIDs...)
	}
	found, err := s.Store.Plans(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	var ok []importRow
	var warnings []string
rows:
	for _, r := range rows {
		warn := func(format string, args ...any) {
			warnings = append(warnings, fmt.Sprintf("line %d: ", r.line)+fmt.Sprintf(format, args...))
		}
		existing, err := s.Store.KeyByHash(ctx, keys.Hash(r.value))
		if err != nil && !store.IsKind(err, store.NotFound) {
			return nil, nil, err
		}
		if existing != nil && existing.Hash != keys.Hash(r.value) {
			warn("this value was API key %s's until RotateApiKey replaced it; a replaced value cannot be imported again", existing.ID)
			continue
		}
		r.existing = existing
		for _, ident := range r.identities {
			holder, err := s.Store.KeyIDByIdentity(ctx, ident)
			if err != nil && !store.IsKind(err, store.NotFound) {
				return nil, nil, err
			}
			if holder != "" && (existing == nil || holder != existing.ID) {
				warn("identity %q already belongs to API key %s; remove it there first", ident, holder)
				continue rows
			}
		}
		stages := map[string]string{}
		if existing != nil {
			ids, err := s.Store.KeyPlans(ctx, existing.ID)
			if err != nil {
				return nil, nil, err
			}
			r.member = map[string]bool{}
			for _, id := range ids {
				r.member[id] = true
			}
			for stage, holder := range existing.Stages {
				if p := found[holder]; p == nil || hasStage(p, stage) {
					stages[stage] = holder
				}
			}
		}
		for _, id := range r.planIDs {
			p := found[id]
			if p == nil {
				warn("usage plan %s does not exist", id)
				continue rows
			}
			for _, st := range p.APIStages {
				if holder, taken := stages[st.Key()]; taken && holder != id {
					warn("usage plans %s and %s both cover API stage %s; a key may have only one plan per stage", holder, id, st.Key())
					continue rows
				}
				stages[st.Key()] = id
			}
		}
		if existing != nil && len(r.member)+len(newPlans(r)) > store.MaxPlansPerKey {
			warn("the key would be in more than %d usage plans", store.MaxPlansPerKey)
			continue
		}
		if len(r.planIDs) > store.MaxPlansPerKey {
			warn("UsagePlanIds lists %d plans; a key may be in at most %d", len(r.planIDs), store.MaxPlansPerKey)
			continue
		}
		ok = append(ok, r)
	}
	return ok, warnings, nil
}

func hasStage(p *store.Plan, stage string) bool {
	for _, s := range p.APIStages {
		if s.Key() == stage {
			return true
		}
	}
	return false
}

// journal remembers what an import wrote, to undo it.
type journal struct {
	created  []string
	restored []*store.Key // keys as they were before the import overwrote them
	assigned [][2]string  // plan, key
}

func importOne(ctx context.Context, s *Service, r importRow, j *journal) (string, error) {
	var id string
	if r.existing != nil {
		before := *r.existing
		k, err := s.Store.UpdateKey(ctx, r.existing.ID, func(k *store.Key) error {
			k.Name, k.Description, k.Enabled = r.name, r.description, r.enabled
			if r.identities != nil {
				k.Identities = r.identities
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		j.restored = append(j.restored, &before)
		id = k.ID
	} else {
		k := &store.Key{ID: keys.NewID(), Name: r.name, Description: r.description, Enabled: r.enabled, Hash: keys.Hash(r.value), Identities: r.identities}
		if err := s.Store.CreateKey(ctx, k); err != nil {
			return "", err
		}
		j.created = append(j.created, k.ID)
		id = k.ID
	}
	for _, planID := range newPlans(r) {
		if err := s.Store.Assign(ctx, planID, id); err != nil {
			return id, err
		}
		j.assigned = append(j.assigned, [2]string{planID, id})
	}
	return id, nil
}

// newPlans are the row's plans that its key is not in yet.
func newPlans(r importRow) []string {
	var out []string
	for _, id := range r.planIDs {
		if !r.member[id] {
			out = append(out, id)
		}
	}
	return out
}

// undo reverses an import, newest first. It is best effort: it runs after
// a failure, against a table that others may be changing too.
func (j *journal) undo(ctx context.Context, s *Service) {
	for i := len(j.assigned) - 1; i >= 0; i-- {
		s.Store.Unassign(ctx, j.assigned[i][0], j.assigned[i][1])
	}
	for _, before := range j.restored {
		s.Store.UpdateKey(ctx, before.ID, func(k *store.Key) error {
			k.Name, k.Description, k.Enabled, k.Identities = before.Name, before.Description, before.Enabled, before.Identities
			return nil
		})
	}
	for _, id := range j.created {
		s.Store.DeleteKey(ctx, id)
	}
}

// record is one CSV line's fields and where it started.
type record struct {
	line   int
	fields []string
}

// readCSV reads API Gateway's import CSV: comma-separated fields, where a
// field may be enclosed in double or single quotes (so that a list of
// plan ids can hold commas), a doubled quote inside standing for one.
// A quote is special only at the start of a field, so an apostrophe in a
// name ("Bob's key") needs no quoting.
func readCSV(body string) ([]record, error) {
	var out []record
	line := 1
	i := 0
	for i < len(body) {
		rec := record{line: line}
		for {
			// Skip spaces before a field, so ` 'a,b'` still opens a quote.
			j := i
			for j < len(body) && (body[j] == ' ' || body[j] == '\t') {
				j++
			}
			var field strings.Builder
			if j < len(body) && (body[j] == '"' || body[j] == '\'') {
				quote := body[j]
				start := line
				i = j + 1
				for {
					if i >= len(body) {
						return nil, fmt.Errorf("line %d: a field opened with %c is never closed", start, quote)
					}
					c := body[i]
					if c == quote {
						if i+1 < len(body) && body[i+1] == quote {
							field.WriteByte(quote)
							i += 2
							continue
						}
						i++
						break
					}
					if c == '\n' {
						line++
					}
					field.WriteByte(c)
					i++
				}
				// Whatever follows the closing quote up to the comma is kept.
				for i < len(body) && body[i] != ',' && body[i] != '\n' && body[i] != '\r' {
					field.WriteByte(body[i])
					i++
				}
			} else {
				for i < len(body) && body[i] != ',' && body[i] != '\n' && body[i] != '\r' {
					field.WriteByte(body[i])
					i++
				}
			}
			rec.fields = append(rec.fields, field.String())
			if i < len(body) && body[i] == ',' {
				i++
				continue
			}
			break
		}
		if i < len(body) && body[i] == '\r' {
			i++
		}
		if i < len(body) && body[i] == '\n' {
			i++
		}
		line++
		out = append(out, rec)
	}
	return out, nil
}

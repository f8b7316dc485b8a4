package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func addIdentity(ident string) func(*store.Key) error {
	return func(k *store.Key) error {
		if !slices.Contains(k.Identities, ident) {
			k.Identities = append(k.Identities, ident)
		}
		return nil
	}
}

func TestIdentitiesBelongToOneKey(t *testing.T) {
	tbl := newTable(t)
	ctx := context.Background()
	v, _ := keys.Generate()
	alice := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v), Identities: []string{"auth0|alice", "alice@example.com"}}
	if err := tbl.CreateKey(ctx, alice); err != nil {
		t.Fatal(err)
	}
	got, err := tbl.KeyByIdentity(ctx, "alice@example.com")
	if err != nil || got.ID != alice.ID {
		t.Fatalf("KeyByIdentity = %v, %v", got, err)
	}
	// A second key cannot take it, at creation or by update, and the
	// error names the holder.
	v2, _ := keys.Generate()
	bob := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v2), Identities: []string{"bob", "auth0|alice"}}
	if err := tbl.CreateKey(ctx, bob); !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), alice.ID) {
		t.Fatalf("a taken identity at creation: %v", err)
	}
	if _, err := tbl.KeyByIdentity(ctx, "bob"); !store.IsKind(err, store.NotFound) {
		t.Fatalf("the failed creation left identity bob behind: %v", err)
	}
	other, _ := mustKey(t, tbl, "other")
	if _, err := tbl.UpdateKey(ctx, other.ID, addIdentity("auth0|alice")); !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), alice.ID) {
		t.Fatalf("a taken identity by update: %v", err)
	}
	// Identities and key values are separate namespaces.
	if _, err := tbl.KeyByHash(ctx, keys.Hash("alice@example.com")); !store.IsKind(err, store.NotFound) {
		t.Fatalf("an identity found as a key value: %v", err)
	}
	if _, err := tbl.KeyByIdentity(ctx, v); !store.IsKind(err, store.NotFound) {
		t.Fatalf("a key value found as an identity: %v", err)
	}

	// Moving an identity: remove it from one key, add it to another. Each
	// change moves the key's version.
	before := alice.Version
	k, err := tbl.UpdateKey(ctx, alice.ID, func(k *store.Key) error {
		k.Identities = slices.DeleteFunc(k.Identities, func(s string) bool { return s == "auth0|alice" })
		return nil
	})
	if err != nil || k.Version != before+1 || !slices.Equal(k.Identities, []string{"alice@example.com"}) {
		t.Fatalf("remove: %+v, %v", k, err)
	}
	if _, err := tbl.KeyByIdentity(ctx, "auth0|alice"); !store.IsKind(err, store.NotFound) {
		t.Fatalf("a removed identity still found: %v", err)
	}
	if _, err := tbl.UpdateKey(ctx, other.ID, addIdentity("auth0|alice")); err != nil {
		t.Fatal(err)
	}
	if got, _ := tbl.KeyByIdentity(ctx, "auth0|alice"); got == nil || got.ID != other.ID {
		t.Fatalf("the moved identity: %+v", got)
	}
	// Adding what a key has already changes nothing but its version.
	if _, err := tbl.UpdateKey(ctx, other.ID, addIdentity("auth0|alice")); err != nil {
		t.Fatal(err)
	}

	// Deleting a key frees its identities at once.
	if err := tbl.DeleteKey(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.KeyByIdentity(ctx, "alice@example.com"); !store.IsKind(err, store.NotFound) {
		t.Fatalf("a deleted key's identity: %v", err)
	}
	if _, err := tbl.UpdateKey(ctx, other.ID, addIdentity("alice@example.com")); err != nil {
		t.Fatalf("a deleted key's identity cannot be reused: %v", err)
	}
}

func TestIdentitiesPerKeyAreBounded(t *testing.T) {
	tbl := newTable(t)
	ctx := context.Background()
	k, _ := mustKey(t, tbl, "many")
	_, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error {
		for i := range store.MaxIdentities + 1 {
			k.Identities = append(k.Identities, fmt.Sprint("user-", i))
		}
		return nil
	})
	if !store.IsKind(err, store.LimitExceeded) {
		t.Fatalf("%d identities: %v", store.MaxIdentities+1, err)
	}
	// The most a key may have, on a key in plans: one transaction.
	for range 3 {
		tbl.Assign(ctx, mustPlan(t, tbl, keys.NewID()).ID, k.ID)
	}
	_, err = tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error {
		for i := range store.MaxIdentities {
			k.Identities = append(k.Identities, fmt.Sprint("user-", i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.KeyByIdentity(ctx, "user-7"); !store.IsKind(err, store.NotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestRacingIdentityClaimsOneWins: keys claiming one identity at once, some
// by creation and some by update; exactly one holds it, and every other
// gets a Conflict naming it.
func TestRacingIdentityClaimsOneWins(t *testing.T) {
	tbl := newTable(t)
	ctx := context.Background()
	const racers = 8
	var existing []*store.Key
	for range racers / 2 {
		k, _ := mustKey(t, tbl, "racer")
		existing = append(existing, k)
	}
	var wg sync.WaitGroup
	errs := make([]error, racers)
	ids := make([]string, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				ids[i] = existing[i/2].ID
				_, errs[i] = tbl.UpdateKey(ctx, ids[i], addIdentity("contested"))
				return
			}
			v, _ := keys.Generate()
			k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v), Identities: []string{"contested"}}
			ids[i] = k.ID
			errs[i] = tbl.CreateKey(ctx, k)
		}()
	}
	wg.Wait()
	holder, err := tbl.KeyByIdentity(ctx, "contested")
	if err != nil {
		t.Fatal(err)
	}
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			if ids[i] != holder.ID {
				t.Errorf("racer %d succeeded but %s holds the identity", i, holder.ID)
			}
		case !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), holder.ID):
			t.Errorf("racer %d: %v; want a Conflict naming %s", i, err, holder.ID)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won", wins)
	}
}

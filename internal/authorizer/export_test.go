package authorizer

import (
	"context"

	"github.com/tollgate-dev/tollgate/internal/meter"
)

// Reconcile settles every write the instance remembers having lost, as its
// next decisions would, and returns what became of them.
func (a *Authorizer) Reconcile(ctx context.Context) (meter.LateWrites, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.meter.Reconcile(ctx, a.now())
	return a.meter.DrainLateWrites(), err
}

// Pending is how many lost writes the instance remembers.
func (a *Authorizer) Pending() int { return a.meter.Pending() }

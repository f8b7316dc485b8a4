package plans

// Shadow mode. A plan in shadow is metered exactly as one that is
// enforced, with the same writes, so its buckets and quotas evolve the
// same way; but a request over a limit is allowed, and marked as one that
// enforcement would have refused. Switching the plan to enforce then
// refuses exactly what shadow reported, with no state to reset.
const (
	// EnforceTag is the plan tag that says whether its limits are
	// enforced or watched: Enforce or Shadow. Without it, the authorizer's
	// ENFORCE setting decides, which defaults to Enforce.
	EnforceTag = "tollgate:enforce"
	Enforce    = "enforce"
	Shadow     = "shadow"
)

// ValidEnforce reports whether v is a value of EnforceTag.
func ValidEnforce(v string) bool { return v == Enforce || v == Shadow }

// Shadowed reports whether the plan's limits are watched rather than
// enforced: its EnforceTag says so, or it has none and byDefault is true.
func (p *Plan) Shadowed(byDefault bool) bool {
	switch p.Tags[EnforceTag] {
	case Shadow:
		return true
	case Enforce:
		return false
	}
	return byDefault
}

package store

// Lifecycle is the part of a key's record that says until when it works:
// its expiry, and the value a rotation replaced and its grace period. Both
// are instants that every decision compares with its own clock, so a key
// stops working exactly then, even for an authorizer that has it cached.
type Lifecycle struct {
	// ExpiresAt is when the key stops working, in µs since the epoch; nil
	// when it never does. An instant in the past expires it at once.
	ExpiresAt *int64 `json:"xa,omitempty"`
	// PreviousHash is the hash of the value the last rotation replaced.
	// Its hash item still points at the key, so that it keeps working
	// until PreviousExpiresAt (µs), and is denied as rotated afterwards. A
	// key has at most one previous value: rotating again deletes the older
	// one's hash item, which ends its grace period at once.
	PreviousHash      string `json:"ph,omitempty"`
	PreviousExpiresAt int64  `json:"pe,omitempty"`
	// RotationToken is the SHA-256 of the clientToken of the rotation that
	// set Hash, so that the rotation repeated with the same token is
	// recognised rather than applied twice.
	RotationToken string `json:"rt,omitempty"`
}

// Rotated reports whether a value, by its hash, has been rotated out of
// the key at now (µs): it is neither the key's value nor a previous value
// still in its grace period.
func (k *Key) Rotated(hash string, now int64) bool {
	return hash != k.Hash && (hash != k.PreviousHash || now >= k.PreviousExpiresAt)
}

// Expired reports whether the key has expired at now (µs).
func (k *Key) Expired(now int64) bool {
	return k.ExpiresAt != nil && now >= *k.ExpiresAt
}

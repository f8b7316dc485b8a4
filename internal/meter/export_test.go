package meter

// SetHome sets the shard an instance tries first, for tests.
func SetHome(st *State, i int) { st.home = i }

//go:build !linux

package manifest

// fdWalk is the state of a walk by open directory, which only Linux has
// (walkfd_linux.go).
type fdWalk struct{}

// fd walks by open directory where it can: here never.
func (w *walker) fd(root string) (bool, error) { return false, nil }

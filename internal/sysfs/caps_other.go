//go:build !linux

package sysfs

// SetCaps sets file capabilities, which only Linux has: elsewhere it
// succeeds for none and returns ErrUnsupported for some.
func SetCaps(name, caps string) error {
	if caps == "" {
		return nil
	}
	return ErrUnsupported
}

//go:build !linux

package manifest

// osCaps knows no file capabilities off Linux.
func osCaps(string) (string, error) { return "", nil }

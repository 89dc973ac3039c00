//go:build !unix

package durable

import "os"

// createFlags creates a temporary file exclusively.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL

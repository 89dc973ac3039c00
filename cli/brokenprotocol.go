//go:build dualpart_tagfirst

// Built only with -tags dualpart_tagfirst: a dualpart whose every Pair
// writes the destination's manifest and tag before the payload. It is the
// negative control of the power-cut harness (test/powercut/run --dualpart
// tag-first), which must report its cuts as violations; the broken order
// is the library's own, reached through internal/testhooks, so the control
// tests the harness against the real copy code. Never shipped.

package cli

import (
	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/testhooks"
)

func init() {
	protocolOptions = append(protocolOptions, testhooks.Option(testhooks.Protocol{TagFirst: true}).(backup.Option))
}

// Command dualpart keeps an application, and the settings it cannot lose,
// on two flash partitions, and brings the two copies back into agreement at
// every boot. Run "dualpart help" for its commands, and "dualpart demo" for
// a narrated tour on two temporary directories.
//
// The command is package github.com/dualpart/backup/cli; an app that
// embeds the library can call cli.Main itself instead of shipping this
// binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/dualpart/backup/cli"
)

// memoryLimit keeps the garbage collector's target well inside the
// module's 256 MiB of RAM, shared with the app at boot: the live heap of a
// boot in agreement is the two manifests (about 12 MiB each for 100,000
// entries on ARMv7), and without a limit the collector lets the heap grow
// to twice the live set before it runs. A soft limit: the run goes on above
// it, collecting more often. GOMEMLIMIT in the environment overrides it.
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// SIGTERM (the init script's watchdog) and Ctrl-C cancel the context:
	// a copy stops between files, its destination's tag already removed,
	// so the next run completes it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

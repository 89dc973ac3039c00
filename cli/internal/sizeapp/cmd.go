//go:build dualpartcmd

package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/dualpart/backup/cli"
)

// command runs the dualpart command when the app is run as "app dualpart
// ..." or through a link named dualpart, as cli's package example does.
func command(args []string) (int, bool) {
	var rest []string
	switch {
	case filepath.Base(args[0]) == "dualpart":
		rest = args[1:]
	case len(args) > 1 && args[1] == "dualpart":
		rest = args[2:]
	default:
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, rest, os.Stdout, os.Stderr), true
}

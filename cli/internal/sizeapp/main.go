// Command sizeapp is an app that embeds the library, as a customer's app
// does: at start-up it brings its own two copies into agreement, logs the
// result, then does its work. Built with the tag dualpartcmd it also
// serves as the boot command (cmd.go): "sizeapp dualpart reconcile ..." or
// through a symlink named dualpart. Built with and without the tag, for
// ARMv7 and stripped, the difference is what the command adds to an app
// (README, "The command inside your app"; bench/sizeapp.sh measures it).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dualpart/backup"
	"github.com/spf13/afero"
)

func main() {
	if code, ok := command(os.Args); ok {
		os.Exit(code)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	osfs := afero.NewOsFs()
	pair := backup.New(
		backup.Side{Fs: osfs, Dir: "/usrapp/apprun/apps", Tag: "/usrapp/apprun/app_ver.txt"},
		backup.Side{Fs: osfs, Dir: "/usrdata/appbackup/apps", Tag: "/usrdata/appbackup/app_ver.txt"},
		backup.WithLogger(logger),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	res, err := pair.Reconcile(ctx)
	cancel()
	if err != nil {
		logger.Error("reconcile", "err", err)
	} else {
		logger.Info("reconcile", "action", res.Action.String(), "version", fmt.Sprint(res.Primary.Version))
	}
	// ... the app's own work.
}

package cli_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/dualpart/backup/cli"
)

// appMain is the main of an app that embeds the library and serves as the
// boot command too, busybox-style: run as "app dualpart reconcile ..." or
// through a symlink named dualpart ("dualpart reconcile ..."), it is the
// dualpart command; otherwise it is the app. The init script then runs
// DUALPART=/usrapp/apprun/apps/bin/app with DUALPART_APPLET=dualpart, or
// DUALPART=/usr/bin/dualpart where that is a link to the app. Its real
// main is
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		code := appMain(ctx, os.Args, os.Stdout, os.Stderr)
//		stop()
//		os.Exit(code)
//	}
//
// Cancelling ctx on SIGTERM lets the init script's watchdog stop a copy
// between files; the next boot completes it.
func appMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case filepath.Base(args[0]) == "dualpart":
		return cli.Main(ctx, args[1:], stdout, stderr)
	case len(args) > 1 && args[1] == "dualpart":
		return cli.Main(ctx, args[2:], stdout, stderr)
	}
	fmt.Fprintln(stdout, "the app starts")
	return 0
}

// An app serving as the dualpart command: the init script runs it as
// "app dualpart reconcile ...", or through a link named dualpart, before
// it starts the app itself.
func Example() {
	dir, err := os.MkdirTemp("", "dualpart-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A primary as flashed: the app and its tag; no backup yet.
	system, usrData := filepath.Join(dir, "system"), filepath.Join(dir, "usrdata")
	if err := os.MkdirAll(filepath.Join(system, "apps/bin"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(system, "apps/bin/app"), []byte("\x7fELF..."), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(system, "app_ver.txt"), []byte("3\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	sides := []string{
		"--primary", filepath.Join(system, "apps"), "--primary-tag", filepath.Join(system, "app_ver.txt"),
		"--backup", filepath.Join(usrData, "apps"), "--backup-tag", filepath.Join(usrData, "app_ver.txt"),
	}
	ctx := context.Background()
	app := filepath.Join(system, "apps/bin/app")

	// At boot: "app dualpart reconcile ...".
	code := appMain(ctx, append([]string{app, "dualpart", "reconcile"}, sides...), io.Discard, io.Discard)
	tag, _ := os.ReadFile(filepath.Join(usrData, "app_ver.txt"))
	fmt.Printf("app dualpart reconcile: exit %d, the backup's tag %q\n", code, tag)

	// Through a link named dualpart.
	code = appMain(ctx, append([]string{"/usr/bin/dualpart", "status"}, sides...), io.Discard, io.Discard)
	fmt.Printf("dualpart status: exit %d\n", code)

	// Then the app itself.
	appMain(ctx, []string{app}, os.Stdout, os.Stderr)
	// Output:
	// app dualpart reconcile: exit 0, the backup's tag "3\n"
	// dualpart status: exit 0
	// the app starts
}

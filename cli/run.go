package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit statuses. An init script acts on them, so they are part of the
// command's contract (README: "Output and exit status").
const (
	// exitOK: every pair is in agreement (after any copy or repair).
	exitOK = 0
	// exitFailed: a pair could not be brought into agreement (I/O error,
	// no space, damaged with no intact replacement); nothing was lost.
	exitFailed = 1
	// exitUsage: the command line or the --config file is wrong; nothing
	// was read or written.
	exitUsage = 2
	// exitNoVersion: no pair failed, but one holds no version on either
	// side: there is nothing to restore.
	exitNoVersion = 3
)

// A command is one subcommand. Its run parses its own flags (each command
// owns a flag.FlagSet, so that a new command sharing the side flags, such as
// install, registers them with pairFlags.register and nothing else changes).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"reconcile", "bring the pair(s) to the newest intact version", runReconcile},
		{"status", "show each side's version and state and what reconcile would do; writes nothing", runStatus},
		{"install", "install a new version on the primary, then the backup, atomically", runInstall},
		{"manifest", "write or check the manifest of a payload (for build pipelines)", runManifest},
		{"demo", "play the vendor's scenarios on two temporary directories, narrated", runDemo},
	}
}

// Main is the whole dualpart command: args are its arguments without the
// program's name (args[0] is the subcommand, "reconcile", "status", ...).
// It writes to stdout and stderr and returns the exit status instead of
// exiting, so that an app embedding the library can serve as the boot
// command itself (see the package documentation).
//
// Cancelling ctx stops a copy between files, its destination's tag already
// removed, so the next run completes it: cancel it on SIGTERM (the init
// script's watchdog) and SIGINT, as cmd/dualpart does.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "dualpart: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `dualpart keeps a payload directory on two partitions and brings both copies
to the newest intact version at every boot.

Usage:
  dualpart reconcile [flags]      bring the pair(s) to the newest intact version
  dualpart status [flags]         what each side holds and what reconcile would do
  dualpart install --from DIR (--version V | --manifest FILE) [flags]
                                  install a new version, primary then backup
  dualpart manifest write [flags] write a payload's manifest (build pipelines)
  dualpart manifest check [flags] check a payload against its manifest
  dualpart demo [--keep]          a narrated tour on two temporary directories

Run "dualpart COMMAND -h" for a command's flags. With --keyring, only sides
whose manifest is signed (minisign) by one of its keys are trusted.

Exit status: 0 every pair in agreement; 1 a pair could not be brought into
agreement (nothing lost); 2 usage error; 3 no version on either side of a pair.
`)
}

// usageError is a mistake in the command line or the config file: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// parseFlags parses a command's flags and rejects positional arguments. It
// returns the exit status to return at once, or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has printed the error and usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dualpart %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	return -1
}

// fail prints err and returns its exit status: 2 for a usage error, 1
// otherwise.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "dualpart %s: %v\n", cmd, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

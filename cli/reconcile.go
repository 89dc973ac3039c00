package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dualpart/backup"
)

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runPairs(ctx, "reconcile", args, stdout, stderr)
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runPairs(ctx, "status", args, stdout, stderr)
}

// runPairs is reconcile and status: the same flags, the same pairs, the same
// output; status calls the library's Status, which writes nothing and takes
// no lock, instead of Reconcile.
func runPairs(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var f pairFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dualpart %s [flags]\n\n", cmd)
		if cmd == "status" {
			fmt.Fprint(fs.Output(), "Shows each side's version and state and what reconcile would do. Writes nothing.\nThe exit status is the one reconcile would return, except that free space is\nnot checked.\n\n")
		} else {
			fmt.Fprint(fs.Output(), "Brings each pair to the newest intact version. With no flags, serves the\nvendor's layout on the module.\n\n")
		}
		fs.PrintDefaults()
	}
	if st := parseFlags(fs, args, stderr); st >= 0 {
		return st
	}
	specs, err := f.specs(fs)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	status := exitOK
	for _, spec := range specs {
		// One failing pair does not stop the others: each is independent,
		// and the app's pair may well be intact when the parameters' is not.
		o := reconcileOne(ctx, cmd, spec, f.logger(stderr, spec))
		if !o.report(stdout, stderr, o.line(), f.json) {
			status = exitFailed
		}
		status = worse(status, o.exit())
	}
	return status
}

// worse combines the exit statuses of two pairs: a failure outranks "no
// version", which outranks agreement.
func worse(a, b int) int {
	rank := func(s int) int {
		switch s {
		case exitOK:
			return 0
		case exitNoVersion:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// outcome is what one pair's reconcile, status or install found and did;
// output.go prints it.
type outcome struct {
	cmd  string
	spec pairSpec
	res  backup.Result
	err  error
}

// reconcileOne runs the library on one pair: Reconcile, or Status for the
// status command. The demo calls it too, so that what it shows is what the
// command does.
func reconcileOne(ctx context.Context, cmd string, spec pairSpec, logger *slog.Logger, extra ...backup.Option) outcome {
	p := spec.pair(logger, extra...)
	o := outcome{cmd: cmd, spec: spec}
	if cmd == "status" {
		o.res, o.err = p.Status(ctx)
	} else {
		o.res, o.err = p.Reconcile(ctx)
	}
	return o
}

// exit is the pair's exit status.
func (o outcome) exit() int {
	switch {
	case o.err == nil:
		return exitOK
	case errors.Is(o.err, backup.ErrNoVersion):
		return exitNoVersion
	}
	return exitFailed
}

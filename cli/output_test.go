package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dualpart/backup"
	"github.com/google/go-cmp/cmp"
)

var (
	testSpec     = pairSpec{Name: "app", Primary: "/p", PrimaryTag: "/p.txt", Backup: "/b", BackupTag: "/b.txt"}
	sideOK3      = backup.SideStatus{State: backup.StateOK, Version: backup.Decimal(3)}
	sideMissing  = backup.SideStatus{State: backup.StateMissing}
	sideDamaged4 = backup.SideStatus{State: backup.StateDamaged, Version: backup.Decimal(4), Err: errors.New("apps/run: size 0, want 12")}
)

func TestOutcomeLine(t *testing.T) {
	written := backup.CopyStats{FilesWritten: 2, BytesWritten: 1536, Removed: 1}
	tests := []struct {
		name string
		o    outcome
		want string
	}{{
		name: "copied",
		o:    outcome{cmd: "reconcile", res: backup.Result{Primary: sideOK3, Backup: sideMissing, Action: backup.ActionPrimaryToBackup, CopyStats: written}},
		want: "dualpart reconcile: app: primary 3 ok, backup missing: copied primary to backup: 2 entries (1.5 KiB) written, 1 removed; in agreement",
	}, {
		name: "damaged side replaced",
		o:    outcome{cmd: "reconcile", res: backup.Result{Primary: sideOK3, Backup: sideDamaged4, Action: backup.ActionPrimaryToBackup}},
		want: "dualpart reconcile: app: primary 3 ok, backup 4 damaged (apps/run: size 0, want 12): copied primary to backup: 0 entries (0 B) written; in agreement",
	}, {
		name: "copy stopped",
		o: outcome{cmd: "reconcile", res: backup.Result{Primary: sideOK3, Backup: sideMissing, Action: backup.ActionPrimaryToBackup,
			CopyStats: backup.CopyStats{FilesWritten: 1, BytesWritten: 10}}, err: errors.New("no space")},
		want: "dualpart reconcile: app: primary 3 ok, backup missing: copy primary to backup stopped after 1 entry (10 B) written: no space; nothing lost, the next reconcile completes it",
	}, {
		name: "no version",
		o:    outcome{cmd: "reconcile", res: backup.Result{Primary: sideMissing, Backup: sideMissing}, err: backup.ErrNoVersion},
		want: `dualpart reconcile: app: primary missing, backup missing: nothing to restore: neither "/p.txt" nor "/b.txt" exists`,
	}, {
		name: "sides not read",
		o:    outcome{cmd: "reconcile", res: backup.Result{Primary: sideMissing, Backup: sideMissing}, err: errors.New("locked")},
		want: "dualpart reconcile: app: sides not read: error: locked",
	}, {
		name: "status would copy",
		o:    outcome{cmd: "status", res: backup.Result{Primary: sideMissing, Backup: sideOK3, Action: backup.ActionBackupToPrimary}},
		want: "dualpart status: app: primary missing, backup 3 ok: reconcile would copy backup to primary",
	}, {
		name: "status in agreement",
		o:    outcome{cmd: "status", res: backup.Result{Primary: sideOK3, Backup: sideOK3}},
		want: "dualpart status: app: primary 3 ok, backup 3 ok: in agreement, reconcile would do nothing",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.spec = testSpec
			if got := tc.o.line(); got != tc.want {
				t.Errorf("line() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInstallLine(t *testing.T) {
	o := outcome{cmd: "install", spec: testSpec, res: backup.Result{CopyStats: backup.CopyStats{FilesWritten: 1, BytesWritten: 3 << 20}}}
	if got, want := o.installLine(backup.Decimal(5)), "dualpart install: app: installed version 5 on primary and backup: 1 entry (3.0 MiB) written; in agreement"; got != want {
		t.Errorf("installLine(5) = %q, want %q", got, want)
	}
	o.err = errors.New("not newer")
	if got, want := o.installLine(backup.Decimal(5)), "dualpart install: app: version 5 not installed: not newer"; got != want {
		t.Errorf("installLine(5) = %q, want %q", got, want)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReport(t *testing.T) {
	o := outcome{cmd: "status", spec: testSpec, res: backup.Result{Primary: sideOK3, Backup: sideDamaged4, Warnings: []string{"both sides on one filesystem"}},
		err: fmt.Errorf("side damaged: %w", backup.ErrNoIntactCopy)}
	var stdout, stderr bytes.Buffer
	if !o.report(&stdout, &stderr, "the line", true) {
		t.Fatalf("report() = false, want true; stderr:\n%s", &stderr)
	}
	if got, want := stderr.String(), "the line\ndualpart status: app: warning: both sides on one filesystem\n"; got != want {
		t.Errorf("report() wrote on stderr %q, want %q", got, want)
	}
	line, ok := strings.CutSuffix(stdout.String(), "\n")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("report() wrote on stdout %q, want one line", stdout.String())
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var got pairJSON
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	v3, v4 := "3", "4"
	want := pairJSON{
		Pair: "app", Action: "none",
		Primary:  sideJSON{Dir: "/p", Tag: "/p.txt", Version: &v3, State: "ok"},
		Backup:   sideJSON{Dir: "/b", Tag: "/b.txt", Version: &v4, State: "damaged", Reason: "apps/run: size 0, want 12"},
		Warnings: []string{"both sides on one filesystem"},
		Exit:     exitFailed, Error: "side damaged: " + backup.ErrNoIntactCopy.Error(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report() --json (-want +got):\n%s", diff)
	}

	stderr.Reset()
	if o.report(failWriter{}, &stderr, "the line", true) {
		t.Error("report() on a failing stdout = true, want false")
	}
	if !strings.HasSuffix(stderr.String(), "dualpart status: write JSON: disk full\n") {
		t.Errorf("report() on a failing stdout wrote on stderr %q, want the write error", &stderr)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 60 << 20: "60.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

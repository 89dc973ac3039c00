package backup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/crashfs"
	"github.com/spf13/afero"
)

// The project's own filesystems assert the capabilities they offer.
var (
	_ FSSyncer   = (*crashfs.FS)(nil)
	_ FreeSpacer = spaceFs{}
	_ Locker     = (*lockFs)(nil)
)

// lockFs is an afero.Fs wrapper with its own Locker, as an app's could be.
type lockFs struct {
	afero.Fs
	locked, unlocked []string
	unlockErr        error
}

func (l *lockFs) Lock(ctx context.Context, name string) (func() error, error) {
	l.locked = append(l.locked, name)
	return func() error { l.unlocked = append(l.unlocked, name); return l.unlockErr }, nil
}

// TestLockerIsUsed checks that a backup Fs implementing Locker serializes
// Reconcile through it, on the lock beside the backup's tag, and that an
// unlock error is logged rather than dropped.
func TestLockerIsUsed(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	lf := &lockFs{Fs: e.backup.Fs, unlockErr: errors.New("close: input/output error")}
	b := e.backup
	b.Fs = lf
	var log bytes.Buffer
	p := New(e.primary, b, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if _, err := p.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	want := b.Tag + ".lock"
	if len(lf.locked) != 1 || lf.locked[0] != want || len(lf.unlocked) != 1 {
		t.Errorf("Reconcile() locked %q and unlocked %q, want %q once each", lf.locked, lf.unlocked, want)
	}
	if !strings.Contains(log.String(), "input/output error") {
		t.Errorf("the log does not report the unlock error:\n%s", log.String())
	}
}

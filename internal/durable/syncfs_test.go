package durable_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

type fsSyncer struct {
	afero.Fs
	calls []string
	err   error
}

func (f *fsSyncer) SyncFS(name string) error {
	f.calls = append(f.calls, name)
	return f.err
}

func TestWholeSyncCapability(t *testing.T) {
	fake := &fsSyncer{Fs: afero.NewMemMapFs()}
	w, err := durable.NewWholeSync(fake, "/usr_data/appbackup/apps")
	if err != nil {
		t.Fatalf("NewWholeSync(an FSSyncer) = %v", err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if len(fake.calls) != 1 || fake.calls[0] != "/usr_data/appbackup/apps" {
		t.Errorf("SyncFS calls = %q, want one for the payload", fake.calls)
	}
	fake.err = errors.New("flash gone")
	if err := w.Sync(); !errors.Is(err, fake.err) {
		t.Errorf("Sync() = %v, want the filesystem's error", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestWholeSyncUnsupported(t *testing.T) {
	if _, err := durable.NewWholeSync(afero.NewMemMapFs(), "/x"); !errors.Is(err, durable.ErrNoWholeSync) {
		t.Errorf("NewWholeSync(MemMapFs) = %v, want ErrNoWholeSync", err)
	}
	base := afero.NewBasePathFs(afero.NewOsFs(), t.TempDir())
	if _, err := durable.NewWholeSync(base, "/x"); !errors.Is(err, durable.ErrNoWholeSync) {
		t.Errorf("NewWholeSync(BasePathFs) = %v, want ErrNoWholeSync", err)
	}
}

func TestWholeSyncOsFs(t *testing.T) {
	w, err := durable.NewWholeSync(afero.NewOsFs(), t.TempDir())
	if runtime.GOOS != "linux" {
		if !errors.Is(err, durable.ErrNoWholeSync) {
			t.Errorf("NewWholeSync(OsFs) on %s = %v, want ErrNoWholeSync", runtime.GOOS, err)
		}
		return
	}
	if errors.Is(err, durable.ErrNoWholeSync) {
		if _, serr := sysfs.NewSyncer(t.TempDir()); !errors.Is(serr, sysfs.ErrUnsupported) {
			t.Fatalf("NewWholeSync(OsFs) = %v, but sysfs.NewSyncer = %v", err, serr)
		}
		t.Skipf("kernel without error-reporting syncfs: %v", err)
	}
	if err != nil {
		t.Fatalf("NewWholeSync(OsFs) = %v", err)
	}
	if err := w.Sync(); err != nil {
		t.Errorf("Sync() = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

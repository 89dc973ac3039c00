package backup_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/dualpart/backup"
	"github.com/spf13/afero"
)

// vendorLayout returns the two sides of the vendor's layout. On the module
// both use afero.NewOsFs(); the examples use memory so that they run
// anywhere.
func vendorLayout(system, usrData afero.Fs) (primary, bkp backup.Side) {
	return backup.Side{Fs: system, Dir: "/usrapp/apprun/apps", Tag: "/usrapp/apprun/app_ver.txt"},
		backup.Side{Fs: usrData, Dir: "/usrdata/appbackup/apps", Tag: "/usrdata/appbackup/app_ver.txt"}
}

// Reconciling the vendor layout at start-up: on the first boot after
// flashing, the backup does not exist yet and the primary is copied to it;
// on the next boot both agree and nothing is written.
func Example() {
	system, usrData := afero.NewMemMapFs(), afero.NewMemMapFs()
	// What the factory image holds: the app and its tag.
	afero.WriteFile(system, "/usrapp/apprun/apps/app", []byte("\x7fELF..."), 0o755)
	afero.WriteFile(system, "/usrapp/apprun/app_ver.txt", []byte("3\n"), 0o644)

	pair := backup.New(vendorLayout(system, usrData))
	for boot := 1; boot <= 2; boot++ {
		res, err := pair.Reconcile(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("boot %d: primary %v %v, backup %v %v: %v, %d files written\n", boot,
			res.Primary.State, res.Primary.Version, res.Backup.State, res.Backup.Version,
			res.Action, res.FilesWritten)
	}
	// Output:
	// boot 1: primary unverified 3, backup missing <nil>: primary-to-backup, 1 files written
	// boot 2: primary ok 3, backup ok 3: none, 0 files written
}

// date is a caller's own version format: a release date, "2026-11-25".
type date time.Time

func (d date) Compare(v backup.Version) int { return time.Time(d).Compare(time.Time(v.(date))) }
func (d date) String() string               { return time.Time(d).Format(time.DateOnly) }

// A custom version format: tags hold a release date.
func ExampleVersionReaderFunc() {
	readDate := backup.VersionReaderFunc(func(tag []byte) (backup.Version, error) {
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(string(tag)))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", backup.ErrBadTag, err)
		}
		return date(t), nil
	})
	system, usrData := afero.NewMemMapFs(), afero.NewMemMapFs()
	afero.WriteFile(system, "/usrapp/apprun/apps/app", []byte("new"), 0o755)
	afero.WriteFile(system, "/usrapp/apprun/app_ver.txt", []byte("2026-11-25\n"), 0o644)
	afero.WriteFile(usrData, "/usrdata/appbackup/apps/app", []byte("old"), 0o755)
	afero.WriteFile(usrData, "/usrdata/appbackup/app_ver.txt", []byte("2026-03-01\n"), 0o644)

	primary, bkp := vendorLayout(system, usrData)
	pair := backup.New(primary, bkp, backup.WithVersionReader(readDate))
	res, err := pair.Reconcile(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	got, _ := afero.ReadFile(usrData, "/usrdata/appbackup/apps/app")
	fmt.Printf("%v over %v: %s, backup now holds %q\n", res.Primary.Version, res.Backup.Version, res.Action, got)
	// Output:
	// 2026-11-25 over 2026-03-01: primary-to-backup, backup now holds "new"
}

// Restarting when the primary changed: the app embeds the library, and
// system was restored to its factory image (an older app). Reconcile
// restores the newer app from the backup, and the running app, whose own
// files were just replaced, restarts into them.
func ExamplePair_Reconcile_restart() {
	system, usrData := afero.NewMemMapFs(), afero.NewMemMapFs()
	afero.WriteFile(system, "/usrapp/apprun/apps/app", []byte("app 1 (factory)"), 0o755)
	afero.WriteFile(system, "/usrapp/apprun/app_ver.txt", []byte("1\n"), 0o644)
	afero.WriteFile(usrData, "/usrdata/appbackup/apps/app", []byte("app 4"), 0o755)
	afero.WriteFile(usrData, "/usrdata/appbackup/app_ver.txt", []byte("4\n"), 0o644)

	res, err := backup.New(vendorLayout(system, usrData)).Reconcile(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	if res.PrimaryChanged {
		// On the module: syscall.Exec(os.Args[0], os.Args, os.Environ()),
		// or exit and let the init script start the app again.
		fmt.Printf("restored version %v from the backup: restarting\n", res.Backup.Version)
	}
	// Output:
	// restored version 4 from the backup: restarting
}

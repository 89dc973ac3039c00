package backup_test

import (
	"context"
	"errors"
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

// Updating an app in the field: the running app (version 4) downloads
// version 5 to a staging directory, installs it on both partitions, and
// restarts into it. A power cut at any instant leaves version 4 or 5,
// whole, on both sides after the next boot's Reconcile.
func ExamplePair_Install() {
	system, usrData := afero.NewMemMapFs(), afero.NewMemMapFs()
	afero.WriteFile(system, "/usrapp/apprun/apps/app", []byte("app 4"), 0o755)
	afero.WriteFile(system, "/usrapp/apprun/app_ver.txt", []byte("4\n"), 0o644)
	pair := backup.New(vendorLayout(system, usrData))

	// The download, staged on usr_data (it has the room).
	afero.WriteFile(usrData, "/usrdata/download/apps/app", []byte("app 5"), 0o755)
	afero.WriteFile(usrData, "/usrdata/download/apps/lib/libnew.so", []byte("new"), 0o644)

	res, err := pair.Install(context.Background(), usrData, "/usrdata/download/apps", backup.Decimal(5))
	if err != nil {
		log.Fatal(err) // nothing lost: both sides still hold version 4 (or 5)
	}
	usrData.RemoveAll("/usrdata/download")
	if res.PrimaryChanged {
		fmt.Println("installed version 5 on both sides: restarting into it")
	}
	_, err = pair.Install(context.Background(), usrData, "/usrdata/download/apps", backup.Decimal(5))
	fmt.Println(errors.Is(err, backup.ErrNotNewer))
	// Output:
	// installed version 5 on both sides: restarting into it
	// true
}

// Changing parameters atomically: the change is committed as the next
// version on both sides, or not at all.
func ExamplePair_Update() {
	system, usrData := afero.NewMemMapFs(), afero.NewMemMapFs()
	afero.WriteFile(system, "/usrapp/params/apn.conf", []byte("apn=old\n"), 0o600)
	afero.WriteFile(system, "/usrapp/params_ver.txt", []byte("7\n"), 0o644)
	pair := backup.New(
		backup.Side{Fs: system, Dir: "/usrapp/params", Tag: "/usrapp/params_ver.txt"},
		backup.Side{Fs: usrData, Dir: "/usrdata/paramsbackup/params", Tag: "/usrdata/paramsbackup/params_ver.txt"},
	)
	_, err := pair.Update(context.Background(), func(tx *backup.Tx) error {
		return tx.WriteFile("apn.conf", []byte("apn=internet\n"), 0o600)
	})
	if err != nil {
		log.Fatal(err)
	}
	tag, _ := afero.ReadFile(usrData, "/usrdata/paramsbackup/params_ver.txt")
	conf, _ := afero.ReadFile(usrData, "/usrdata/paramsbackup/params/apn.conf")
	fmt.Printf("backup at version %s holds %q\n", strings.TrimSpace(string(tag)), conf)
	// Output:
	// backup at version 8 holds "apn=internet\n"
}

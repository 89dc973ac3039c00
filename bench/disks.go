package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A disk stands in for one flash partition: a loop-mounted ext4 image, or,
// where that cannot be had (not root, no loop devices), a plain directory,
// in which case bytes written cannot be told.
type disk struct {
	label string // "system" or "usr_data"
	mnt   string
	img   string // the image file, "" for a plain directory
	loop  string // /dev/loopN, "" for a plain directory
	mount string // type and options as /proc/mounts shows them
}

// imageSize holds the app payload, the 200 MiB file, a copy's temporary
// files and the 100,000 small files of the scale rows (4 KiB each), with
// room to spare; imageInodes their inodes (the default, one per 16 KiB,
// would give 131,072).
const (
	imageSize   = 2 << 30
	imageInodes = 262144
)

// newLoopDisk makes an ext4 image under work, attaches it to a free loop
// device and mounts it with options (none: the defaults). Lazy inode-table
// and journal initialisation are off: the kernel's ext4lazyinit thread
// would otherwise write in the background and pollute the write counters.
func newLoopDisk(work, label, options string) (*disk, error) {
	d := &disk{label: label, img: filepath.Join(work, label+".img"), mnt: filepath.Join(work, label)}
	f, err := os.Create(d.img)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(imageSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(d.img)
		return nil, err
	}
	fail := func(err error) (*disk, error) {
		d.close()
		return nil, err
	}
	if _, err := command("mkfs.ext4", "-q", "-F", "-L", label, "-N", strconv.Itoa(imageInodes), "-E", "lazy_itable_init=0,lazy_journal_init=0", d.img); err != nil {
		return fail(err)
	}
	out, err := command("losetup", "--find", "--show", d.img)
	if err != nil {
		return fail(err)
	}
	d.loop = strings.TrimSpace(out)
	if err := os.Mkdir(d.mnt, 0o755); err != nil {
		return fail(err)
	}
	args := []string{"-t", "ext4", d.loop, d.mnt}
	if options != "" {
		args = append(args, "-o", options)
	}
	if _, err := command("mount", args...); err != nil {
		os.Remove(d.mnt)
		return fail(err)
	}
	if _, ok := d.written(); !ok {
		return fail(fmt.Errorf("no %s", d.counter()))
	}
	d.mount = d.mountOptions()
	return d, nil
}

// newDirDisk is the fallback: a directory under work.
func newDirDisk(work, label string) (*disk, error) {
	d := &disk{label: label, mnt: filepath.Join(work, label)}
	if err := os.Mkdir(d.mnt, 0o755); err != nil {
		return nil, err
	}
	d.mount = firstLine(command("findmnt", "-n", "-o", "FSTYPE,OPTIONS", "--target", d.mnt))
	return d, nil
}

func (d *disk) counter() string {
	return "/sys/fs/ext4/" + filepath.Base(d.loop) + "/lifetime_write_kbytes"
}

// written returns the bytes written to the device since mkfs, as ext4
// counts them (every block written, journal included), or false where
// there is no counter.
func (d *disk) written() (int64, bool) {
	if d.loop == "" {
		return 0, false
	}
	b, err := os.ReadFile(d.counter())
	if err != nil {
		return 0, false
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false
	}
	return kb << 10, true
}

// mountOptions returns the disk's line of /proc/mounts, or "".
func (d *disk) mountOptions() string {
	b, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == d.mnt {
			return f[2] + " " + f[3]
		}
	}
	return ""
}

// close unmounts and detaches the disk and removes the image.
func (d *disk) close() error {
	var errs []error
	if d.loop != "" {
		if _, err := command("umount", d.mnt); err != nil {
			errs = append(errs, err)
		} else {
			os.Remove(d.mnt)
		}
		if _, err := command("losetup", "--detach", d.loop); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, os.RemoveAll(d.mnt))
	}
	if d.img != "" {
		errs = append(errs, os.Remove(d.img))
	}
	return errors.Join(errs...)
}

// dropCaches writes dirty pages and empties the page cache, dentries and
// inodes, so that the next run reads from the device (and its binary from
// disk) as at boot. It reports whether it could.
func dropCaches() bool {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200) == nil
}

// command runs a setup command and returns its standard output.
func command(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

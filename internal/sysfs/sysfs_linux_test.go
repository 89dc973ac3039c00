//go:build linux

package sysfs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/dualpart/backup/internal/sysfs/sysfstest"
	"github.com/dualpart/backup/internal/treetest"
)

// holdEnv names the lock file a re-executed test binary holds: the other
// process of the lock tests.
const holdEnv = "SYSFS_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if name := os.Getenv(holdEnv); name != "" {
		os.Exit(hold(name))
	}
	os.Exit(m.Run())
}

// hold takes the lock, says "locked", keeps it until its stdin closes,
// releases it and says "unlocked".
func hold(name string) int {
	unlock, err := sysfs.Lock(context.Background(), name)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	if err := unlock(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("unlocked")
	return 0
}

// holder is another process holding a lock.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startHolder starts a process that takes the lock at name and returns
// once it holds it.
func startHolder(t *testing.T, name string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+name)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			// Under qemu-user without binfmt_misc, the kernel cannot run
			// the emulated test binary again; TestLockFlockTool covers
			// a second process there.
			t.Skipf("cannot run the test binary again (emulated without binfmt_misc): %v", err)
		}
		t.Fatalf("start the lock holder: %v", err)
	}
	h := &holder{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if got := h.next(t); got != "locked" {
		t.Fatalf("lock holder said %q, want %q", got, "locked")
	}
	return h
}

// next returns the holder's next line.
func (h *holder) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("lock holder exited: %v", h.cmd.Wait())
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("lock holder silent for 20 s")
	}
	return ""
}

// lockAsync calls Lock in a goroutine and delivers its outcome, releasing
// the lock at once.
func lockAsync(ctx context.Context, name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		unlock, err := sysfs.Lock(ctx, name)
		if err == nil {
			err = unlock()
		}
		done <- err
	}()
	return done
}

// notYet fails the test if done delivers within d.
func notYet(t *testing.T, done <-chan error, d time.Duration, why string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Lock returned (%v) %s", err, why)
	case <-time.After(d):
	}
}

func within(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Lock still waiting after %v", d)
	}
	return nil
}

func TestLockWaitsForOtherProcess(t *testing.T) {
	name := filepath.Join(t.TempDir(), "app_ver.txt.lock")
	h := startHolder(t, name)

	// The deadline is read from the context itself: a start time taken
	// after WithTimeout is later than the one the deadline counts from,
	// and an honest Lock then seems to give up a few microseconds early.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := sysfs.Lock(ctx, name)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a 300 ms deadline while another process holds it = %v, want context.DeadlineExceeded", err)
	}
	if early := time.Until(deadline); early > 0 {
		t.Errorf("Lock gave up %v before its 300 ms deadline", early)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := lockAsync(ctx, name)
	notYet(t, done, 300*time.Millisecond, "while another process held the lock")
	h.stdin.Close()
	if err := within(t, done, 15*time.Second); err != nil {
		t.Fatalf("Lock after the other process released it = %v", err)
	}
	if got := h.next(t); got != "unlocked" {
		t.Errorf("lock holder said %q, want %q", got, "unlocked")
	}
}

func TestLockReleasedWhenHolderKilled(t *testing.T) {
	name := filepath.Join(t.TempDir(), "app_ver.txt.lock")
	h := startHolder(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := lockAsync(ctx, name)
	notYet(t, done, 300*time.Millisecond, "while another process held the lock")
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done, 15*time.Second); err != nil {
		t.Fatalf("Lock after the holder was killed = %v", err)
	}
}

// TestLockFlockTool checks that Lock is flock(2), which util-linux's flock
// (and so a shell script) sees, in both directions.
func TestLockFlockTool(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("flock (util-linux) not found: %v", err)
	}
	name := filepath.Join(t.TempDir(), "app_ver.txt.lock")
	tryLock := func() int {
		t.Helper()
		err := exec.Command(flock, "--nonblock", "--exclusive", name, "true").Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("run flock: %v", err)
		}
		return 0
	}
	unlock, err := sysfs.Lock(context.Background(), name)
	if err != nil {
		t.Fatalf("Lock(%q) = %v", name, err)
	}
	if got := tryLock(); got != 1 {
		t.Errorf("flock --nonblock while Lock is held: exit %d, want 1", got)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock() = %v", err)
	}
	if got := tryLock(); got != 0 {
		t.Errorf("flock --nonblock after unlock: exit %d, want 0", got)
	}

	// The other way round: flock holds it while its command reads stdin.
	cmd := exec.Command(flock, "--exclusive", name, "sh", "-c", "echo locked; cat >/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("flock's command said %q, %v; want \"locked\"", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := lockAsync(ctx, name)
	notYet(t, done, 300*time.Millisecond, "while flock(1) held the lock")
	stdin.Close()
	if err := within(t, done, 15*time.Second); err != nil {
		t.Fatalf("Lock after flock(1) released it = %v", err)
	}
}

// TestLockTwiceInOneProcess: flock locks belong to open files, so two
// Pairs of one process on the same backup exclude each other too.
func TestLockTwiceInOneProcess(t *testing.T) {
	name := filepath.Join(t.TempDir(), "app_ver.txt.lock")
	unlock, err := sysfs.Lock(context.Background(), name)
	if err != nil {
		t.Fatalf("Lock(%q) = %v", name, err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatalf("Lock did not create %q: %v", name, err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("lock file mode %v, want a regular file", fi.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := sysfs.Lock(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while the first is held = %v, want context.DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock() = %v", err)
	}
	unlock, err = sysfs.Lock(context.Background(), name)
	if err != nil {
		t.Fatalf("Lock after unlock = %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock() = %v", err)
	}
}

func TestLockErrors(t *testing.T) {
	name := filepath.Join(t.TempDir(), "no such dir", "x.lock")
	if _, err := sysfs.Lock(context.Background(), name); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("Lock(%q) = %v, want an error naming the path", name, err)
	}
}

func TestFreeBytesTmpfs(t *testing.T) {
	const size = 16 << 20
	m := sysfstest.Tmpfs(t, size)
	free := func(name string) int64 {
		t.Helper()
		n, err := sysfs.FreeBytes(name)
		if err != nil {
			t.Fatalf("FreeBytes(%q) = %v", name, err)
		}
		return n
	}
	before := free(m.Dir)
	if before > size || before < size-64<<10 {
		t.Errorf("FreeBytes of an empty %d-byte tmpfs = %d", size, before)
	}
	if got := free(filepath.Join(m.Dir, "not", "yet")); got != before {
		t.Errorf("FreeBytes of a path not yet made = %d, want its mount's %d", got, before)
	}
	const n = 4 << 20
	if err := os.WriteFile(filepath.Join(m.Dir, "f"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := before - free(m.Dir); got < n || got > n+64<<10 {
		t.Errorf("FreeBytes fell by %d after writing %d bytes", got, n)
	}
}

func TestFreeBytesExt4(t *testing.T) {
	const size = 64 << 20
	m := sysfstest.Ext4(t, size)
	before, err := sysfs.FreeBytes(m.Dir)
	if err != nil {
		t.Fatalf("FreeBytes(%q) = %v", m.Dir, err)
	}
	// Inode tables and the journal take their share; the rest is free.
	if before > size || before < size*3/4 {
		t.Errorf("FreeBytes of an empty %d-byte ext4 = %d", size, before)
	}
	const n = 8 << 20
	f, err := os.Create(filepath.Join(m.Dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, n))
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		t.Fatal(err)
	}
	after, err := sysfs.FreeBytes(m.Dir)
	if err != nil {
		t.Fatalf("FreeBytes(%q) = %v", m.Dir, err)
	}
	if got := before - after; got < n || got > n+1<<20 {
		t.Errorf("FreeBytes fell by %d after writing %d bytes", got, n)
	}
}

func TestSpace(t *testing.T) {
	tests := []struct {
		name      string
		mount     func(t *testing.T) *sysfstest.Mount
		blockSize int64
		typ       uint32
	}{
		{"tmpfs", func(t *testing.T) *sysfstest.Mount { return sysfstest.Tmpfs(t, 16<<20) }, int64(os.Getpagesize()), unix.TMPFS_MAGIC},
		{"ext4 4 KiB", func(t *testing.T) *sysfstest.Mount { return sysfstest.Ext4(t, 32<<20) }, 4096, unix.EXT4_SUPER_MAGIC},
		{"ext4 1 KiB", func(t *testing.T) *sysfstest.Mount {
			return sysfstest.Ext4With(t, 32<<20, sysfstest.Ext4Options{BlockSize: 1024})
		}, 1024, unix.EXT4_SUPER_MAGIC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mount(t)
			name := filepath.Join(m.Dir, "not", "yet")
			got, err := sysfs.Space(name)
			if err != nil {
				t.Fatalf("Space(%q) = %v", name, err)
			}
			if got.BlockSize != tc.blockSize || got.Type != tc.typ {
				t.Errorf("Space(%q) = block size %d, type %#x; want %d, %#x", name, got.BlockSize, got.Type, tc.blockSize, tc.typ)
			}
			if got.Free <= 0 || got.Free > m.Size || got.Free%got.BlockSize != 0 {
				t.Errorf("Space(%q).Free = %d, want a positive multiple of %d up to the size %d", name, got.Free, got.BlockSize, m.Size)
			}
			free, err := sysfs.FreeBytes(name)
			if err != nil || free != got.Free {
				t.Errorf("FreeBytes(%q) = %d, %v; want Space's %d", name, free, err, got.Free)
			}
		})
	}
}

func TestDevice(t *testing.T) {
	a, b := sysfstest.Ext4(t, 16<<20), sysfstest.Ext4(t, 16<<20)
	dev := func(name string) uint64 {
		t.Helper()
		d, err := sysfs.Device(name)
		if err != nil {
			t.Fatalf("Device(%q) = %v", name, err)
		}
		return d
	}
	if err := os.MkdirAll(filepath.Join(a.Dir, "apprun", "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	da, db := dev(a.Dir), dev(b.Dir)
	if da == db {
		t.Errorf("Device of two loop mounts: both %d", da)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(a.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if da != uint64(st.Dev) {
		t.Errorf("Device(%q) = %d, want st_dev %d", a.Dir, da, st.Dev)
	}
	for _, name := range []string{
		filepath.Join(a.Dir, "apprun", "apps"),
		filepath.Join(a.Dir, "apprun", "apps", "not", "yet"),
		filepath.Join(a.Dir, "lost+found"),
	} {
		if got := dev(name); got != da {
			t.Errorf("Device(%q) = %d, want its mount's %d", name, got, da)
		}
	}
	if got := dev(filepath.Dir(a.Dir)); got == da {
		t.Errorf("Device of the directory holding the mount point = %d, the mount's own", got)
	}
}

func TestSyncFS(t *testing.T) {
	m := sysfstest.Ext4(t, 64<<20)
	const n = 8 << 20
	// Written, not synced: the data sits in the page cache.
	if err := os.WriteFile(filepath.Join(m.Dir, "f"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	before, kb := m.DiskStats(t), m.LifetimeWriteKB(t)
	if err := sysfs.SyncFS(filepath.Join(m.Dir, "not", "yet")); err != nil {
		t.Fatalf("SyncFS = %v", err)
	}
	after := m.DiskStats(t)
	if got := (after.WriteSectors - before.WriteSectors) * 512; got < n {
		t.Errorf("SyncFS wrote %d bytes to the device, want at least the %d pending", got, n)
	}
	if after.Flushes == before.Flushes {
		t.Errorf("SyncFS issued no cache flush (flushes stayed at %d)", after.Flushes)
	}
	if got := m.LifetimeWriteKB(t) - kb; got < n>>10 {
		t.Errorf("ext4 counted %d KiB written by SyncFS, want at least %d", got, n>>10)
	}

	// Nothing pending: nothing written.
	before, kb = m.DiskStats(t), m.LifetimeWriteKB(t)
	if err := sysfs.SyncFS(m.Dir); err != nil {
		t.Fatalf("SyncFS = %v", err)
	}
	if got := m.LifetimeWriteKB(t) - kb; got != 0 {
		t.Errorf("SyncFS with nothing pending: ext4 wrote %d KiB", got)
	}
	if got := m.DiskStats(t).WriteSectors - before.WriteSectors; got != 0 {
		t.Errorf("SyncFS with nothing pending wrote %d sectors", got)
	}
}

// TestSyncFSWriteBackError fills the tmpfs that holds an ext4 image, so
// that the loop device's writes fail, and checks that SyncFS reports the
// failure, as it must to stand in for an fsync per file. It also shows why
// a Syncer is opened before the writes it covers: an error that one syncfs
// caller has seen is not reported to a descriptor opened after it.
func TestSyncFSWriteBackError(t *testing.T) {
	s0, err := sysfs.NewSyncer(t.TempDir())
	if errors.Is(err, sysfs.ErrUnsupported) {
		t.Skipf("syncfs does not report write-back errors here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s0.Close()
	back := sysfstest.Tmpfs(t, 32<<20) // mkfs takes 17 MiB of it
	m := sysfstest.Ext4At(t, filepath.Join(back.Dir, "image"), 128<<20)
	early, err := sysfs.NewSyncer(m.Dir)
	if err != nil {
		t.Fatalf("NewSyncer(%q) = %v", m.Dir, err)
	}
	defer early.Close()
	if err := os.WriteFile(filepath.Join(m.Dir, "f"), make([]byte, 48<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// The kernel keeps the latest write-back error: EIO from ext4, or the
	// loop device's ENOSPC.
	writeBackErr := func(err error) bool { return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENOSPC) }
	if err := sysfs.SyncFS(m.Dir); !writeBackErr(err) {
		t.Fatalf("SyncFS with the device full = %v, want EIO or ENOSPC", err)
	}
	if err := early.Sync(); !writeBackErr(err) {
		t.Errorf("Sync of a Syncer opened before the writes, after another syncfs saw the error = %v, want EIO or ENOSPC", err)
	}
	// The kernel reports an error once per descriptor: a retry on the
	// same descriptor, or a new one, may well succeed. Hence "a failed
	// sync is never retried".
	t.Logf("SyncFS again after the error was seen: %v", sysfs.SyncFS(m.Dir))
}

func TestSyncerClosed(t *testing.T) {
	s, err := sysfs.NewSyncer(t.TempDir())
	if errors.Is(err, sysfs.ErrUnsupported) {
		t.Skipf("NewSyncer: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Sync(); err == nil {
		t.Error("Sync() after Close() = nil, want an error")
	}
}

// TestLockNeverOpensADevice: a device node where the lock file should be
// (usr_data is written by everyone) is refused without being opened: a
// driver's open can act (a watchdog's node). The node fails to open
// (treetest.DeadDevice), so an error naming its errno shows it was opened.
func TestLockNeverOpensADevice(t *testing.T) {
	name := filepath.Join(t.TempDir(), "app_ver.txt.lock")
	if err := treetest.DeadDevice(name); err != nil {
		t.Skipf("no device node to test with: %v", err)
	}
	unlock, err := sysfs.Lock(context.Background(), name)
	if err == nil {
		unlock()
		t.Fatal("Lock on a device node succeeded")
	}
	if !errors.Is(err, nofollow.ErrNotRegular) {
		t.Errorf("Lock on a device node = %v: it was open(2)ed, want nofollow.ErrNotRegular", err)
	}
}

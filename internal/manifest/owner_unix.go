//go:build unix

package manifest

import "syscall"

// sysOwner reads the owner from an os.FileInfo's Sys.
func sysOwner(sys any) (uid, gid uint32, ok bool) {
	st, ok := sys.(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, 0, false
	}
	return uint32(st.Uid), uint32(st.Gid), true
}

package backup

import "os"

// dropCache is replaced by sysfs.DropCache when the x/sys port lands.
func dropCache(f *os.File) error { return nil }

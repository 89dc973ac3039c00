//go:build !dualpartcmd

package main

// command: without the tag dualpartcmd the app is not the boot command.
func command([]string) (int, bool) { return 0, false }

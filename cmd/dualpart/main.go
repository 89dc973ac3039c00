// Command dualpart keeps an application, and the settings it cannot lose,
// on two flash partitions, and brings the two copies back into agreement at
// every boot. Run "dualpart help" for its commands, and "dualpart demo" for
// a narrated tour on two temporary directories.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

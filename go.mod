module github.com/dualpart/backup

go 1.23.0

require (
	aead.dev/minisign v0.3.0
	github.com/google/go-cmp v0.7.0
	github.com/spf13/afero v1.15.0
	golang.org/x/sys v0.35.0
)

require (
	golang.org/x/crypto v0.13.0 // indirect
	golang.org/x/text v0.28.0 // indirect
)

//go:build !linux

package sysfs

import (
	"context"
	"os"
)

// Space is not implemented on this system.
func Space(name string) (SpaceInfo, error) { return SpaceInfo{}, ErrUnsupported }

// FreeBytes is not implemented on this system.
func FreeBytes(name string) (int64, error) { return 0, ErrUnsupported }

// Device is not implemented on this system.
func Device(name string) (uint64, error) { return 0, ErrUnsupported }

// Lock is not implemented on this system.
func Lock(ctx context.Context, name string) (func() error, error) { return nil, ErrUnsupported }

// NewSyncer is not implemented on this system.
func NewSyncer(name string) (*Syncer, error) { return nil, ErrUnsupported }

// Sync is not implemented on this system.
func (s *Syncer) Sync() error { return ErrUnsupported }

// A LockOpener is not used on this system.
type LockOpener struct {
	Existing func(name string) (*os.File, error)
	Create   func(name string) (*os.File, error)
}

// LockWith is not implemented on this system.
func LockWith(ctx context.Context, name string, open LockOpener) (func() error, error) {
	return nil, ErrUnsupported
}

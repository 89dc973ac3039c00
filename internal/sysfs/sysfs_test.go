package sysfs

import (
	"path/filepath"
	"testing"
)

func TestReleaseAtLeast(t *testing.T) {
	tests := []struct {
		release string
		want    bool
	}{
		{"5.8.0", true},
		{"5.8", true},
		{"5.10.0-28-armmp", true},
		{"6.1.0-18-amd64", true},
		{"6.18.44-fc-v669", true},
		{"10.0.1", true},
		{"5.7.19", false},
		{"4.19.0", false},
		{"3.18.20", false}, // the Quectel EC2x's kernel
		{"3.18.44-perf+", false},
		{"5.08.0", true},
		{"5.8-rc1", true},
		{"5", false},
		{"", false},
		{"linux", false},
		{"x.9.0", false},
	}
	for _, tc := range tests {
		if got := releaseAtLeast(tc.release, 5, 8); got != tc.want {
			t.Errorf("releaseAtLeast(%q, 5, 8) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

func TestExisting(t *testing.T) {
	have := map[string]bool{"/": true, "/a": true, "/a/b": true}
	exists := func(p string) bool { return have[filepath.ToSlash(p)] }
	tests := []struct{ name, want string }{
		{"/a/b", "/a/b"},
		{"/a/b/c/d", "/a/b"},
		{"/a/x/../b/c", "/a/b"},
		{"/z/y", "/"},
		{"/", "/"},
	}
	for _, tc := range tests {
		if got := filepath.ToSlash(existing(filepath.FromSlash(tc.name), exists)); got != tc.want {
			t.Errorf("existing(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

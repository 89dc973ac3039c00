package main

import (
	"strings"
	"testing"
)

func TestAgreement(t *testing.T) {
	ok := `{"pair":"/system/apps","action":"none","primary":{"version":"1","state":"ok"},"backup":{"version":"1","state":"ok"},"files_written":0,"bytes_written":0,"exit":0}` + "\n"
	if err := agreement([]byte(ok)); err != nil {
		t.Errorf("agreement: %v", err)
	}
	for name, out := range map[string]string{
		"copied":    strings.Replace(ok, `"action":"none"`, `"action":"primary-to-backup"`, 1),
		"wrote":     strings.Replace(ok, `"files_written":0`, `"files_written":1`, 1),
		"exit 1":    strings.Replace(ok, `"exit":0`, `"exit":1`, 1),
		"version 2": strings.Replace(ok, `"backup":{"version":"1"`, `"backup":{"version":"2"`, 1),
		"missing":   strings.Replace(ok, `"primary":{"version":"1"`, `"primary":{"version":null`, 1),
		"no json":   "dualpart reconcile: in agreement\n",
		"two pairs": ok + ok,
	} {
		if err := agreement([]byte(out)); err == nil {
			t.Errorf("%s: accepted %s", name, out)
		}
	}
}

func TestSmallFilesTree(t *testing.T) {
	tr := smallFilesTree(250)
	files, dirs, links, size := shapeOf(tr)
	if files != 250 || dirs != 4 || links != 0 { // conf and d000..d002
		t.Errorf("shape: %d files, %d dirs, %d links", files, dirs, links)
	}
	for p, n := range tr {
		if strings.HasSuffix(p, ".conf") && (n.Size() < 100 || n.Size() > 1000) {
			t.Errorf("%s: %d bytes", p, n.Size())
		}
	}
	if size < 250*100 || size > 250*1000 {
		t.Errorf("%d bytes in all", size)
	}
	if _, _, err := benchPayload("files0", 16); err == nil {
		t.Error("files0 accepted")
	}
}

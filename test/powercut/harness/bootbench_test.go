package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []int64
		want float64
	}{
		{nil, 0},
		{[]int64{7}, 7},
		{[]int64{3, 1, 2}, 2},
		{[]int64{4, 1, 3, 2}, 2.5},
		{[]int64{10, 10, 1000, 10, 9}, 10}, // an outlier does not move it
	} {
		in := slices.Clone(c.xs)
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
		if !slices.Equal(in, c.xs) {
			t.Errorf("median reordered its argument: %v", c.xs)
		}
	}
}

func TestCells(t *testing.T) {
	if got, want := msCell([]int64{250_000, 120_000, 130_000}), "130 (120–250)"; got != want {
		t.Errorf("msCell = %q, want %q", got, want)
	}
	if got, want := msCell([]int64{1_500, 2_250}), "1.9 (1.5–2.2)"; got != want {
		t.Errorf("msCell = %q, want %q", got, want)
	}
	if got := msCell(nil); got != "-" {
		t.Errorf("msCell(nil) = %q", got)
	}
	if got, want := ratioCell([]int64{300, 100, 200}, []int64{50, 100}), "2.67"; got != want {
		t.Errorf("ratioCell = %q, want %q", got, want)
	}
	if got := ratioCell([]int64{1}, nil); got != "-" {
		t.Errorf("ratioCell without a denominator = %q", got)
	}
}

func TestParseCounts(t *testing.T) {
	if n, err := parseCounts("1000, 10000,"); err != nil || !slices.Equal(n, []int{1000, 10000}) {
		t.Errorf("parseCounts = %v, %v", n, err)
	}
	if n, err := parseCounts(""); err != nil || len(n) != 0 {
		t.Errorf("parseCounts(\"\") = %v, %v", n, err)
	}
	for _, bad := range []string{"0", "-5", "ten"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
	if got := benchPayloads(true, []int{1000}); !slices.Equal(got, []string{"app", "files1000"}) {
		t.Errorf("benchPayloads = %v", got)
	}
}

func TestBenchTable(t *testing.T) {
	r := &benchResult{
		Cold: map[string][]int64{"none": {200_000, 220_000}, "quick": {400_000}, "full": {900_000},
			"script": {100_000, 100_000}, "dp-start": {50_000}, "sh-start": {5_000}},
		Warm: map[string][]int64{},
	}
	var b bytes.Buffer
	benchTable(&b, []*benchRow{{payload: "app", r: r}, {payload: "files10", err: "boot: timed out"}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 { // header, rule, app cold (no warm samples), files10
		t.Fatalf("table:\n%s", b.String())
	}
	want := "| app | cold | 2 | 210 (200–220) | 400 (400–400) | 900 (900–900) | 100 (100–100) | **2.10** | **4.00** | 9.00 | 50.0 (50.0–50.0) | 5.0 (5.0–5.0) |"
	if lines[2] != want {
		t.Errorf("row\n got %s\nwant %s", lines[2], want)
	}
	if !strings.HasPrefix(lines[3], "| files10 | no figures: boot: timed out |") {
		t.Errorf("failed payload's row: %s", lines[3])
	}
	for _, l := range lines {
		if n := strings.Count(l, "|"); n != 13 {
			t.Errorf("%d cells separators, want 13: %s", n, l)
		}
	}
}

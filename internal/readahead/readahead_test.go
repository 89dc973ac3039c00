package readahead_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/readahead"
	"github.com/google/go-cmp/cmp"
)

// recorder is a warm function that records what it was called on and, for
// each call, how far ahead of the reader it was.
type recorder struct {
	mu     sync.Mutex
	warmed map[string]int
	pos    *int // the reader's position, read under mu
	ahead  int  // the largest index-minus-position seen
	index  map[string]int
}

func (r *recorder) warm(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warmed[name]++
	r.ahead = max(r.ahead, r.index[name]-*r.pos)
}

// byName warms list[i] with warm, and skips the empty names.
func byName(list []string, warm func(string)) func(int) {
	return func(i int) {
		if list[i] != "" {
			warm(list[i])
		}
	}
}

func names(n int, skip func(int) bool) ([]string, map[string]int) {
	out := make([]string, n)
	index := make(map[string]int)
	for i := range out {
		if !skip(i) {
			out[i] = fmt.Sprintf("f%03d", i)
			index[out[i]] = i
		}
	}
	return out, index
}

// Every named entry is warmed once, the empty ones never, and no helper
// runs more than the window ahead of the reader.
func TestWarmsEachOnceWithinWindow(t *testing.T) {
	const n, window = 200, 8
	list, index := names(n, func(i int) bool { return i%5 == 0 })
	pos := 0
	r := &recorder{warmed: map[string]int{}, pos: &pos, index: index}
	a := readahead.Start(len(list), 4, window, byName(list, r.warm))
	// The reader: waits a little for its helpers before each entry, as a
	// copy waits on its writes.
	for i := range list {
		deadline := time.Now().Add(2 * time.Second)
		for list[i] != "" && time.Now().Before(deadline) {
			r.mu.Lock()
			done := r.warmed[list[i]] > 0
			r.mu.Unlock()
			if done {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		r.mu.Lock()
		pos = i
		r.mu.Unlock()
		a.Passed(i)
	}
	a.Stop()
	want := map[string]int{}
	for _, s := range list {
		if s != "" {
			want[s] = 1
		}
	}
	if diff := cmp.Diff(want, r.warmed); diff != "" {
		t.Errorf("warmed (-want +got):\n%s", diff)
	}
	if r.ahead > window {
		t.Errorf("a helper warmed an entry %d past the reader, want at most the window, %d", r.ahead, window)
	}
}

// A reader that is faster than its helpers is never waited for, and the
// helpers skip what it passed: nothing behind the reader is warmed.
func TestSkipsWhatTheReaderPassed(t *testing.T) {
	const n = 100
	list, index := names(n, func(int) bool { return false })
	release := make(chan struct{})
	var mu sync.Mutex
	var behind []string
	pos, calls := 0, 0
	a := readahead.Start(len(list), 1, 4, byName(list, func(name string) {
		mu.Lock()
		calls++
		if index[name] < pos {
			behind = append(behind, name)
		}
		mu.Unlock()
		<-release // the medium is slow
	}))
	for i := range 50 {
		mu.Lock()
		pos = i + 1
		mu.Unlock()
		a.Passed(i)
	}
	close(release)
	// Let the helper fill the window ahead of the reader before stopping.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		c := calls
		mu.Unlock()
		if c >= 4 {
			break
		}
	}
	a.Stop()
	if calls < 4 {
		t.Fatalf("the helper warmed %d entries in 5 s, want the 4 of the window", calls)
	}
	// The one helper may have taken f000 before the reader passed it; no
	// entry it took after that is behind the reader.
	if len(behind) > 1 {
		t.Errorf("the helper warmed %v after the reader had passed them", behind)
	}
}

// Stop returns promptly with the helpers waiting for room in the window.
func TestStopWhileWaiting(t *testing.T) {
	list, _ := names(1000, func(int) bool { return false })
	a := readahead.Start(len(list), 4, 2, func(int) {})
	done := make(chan struct{})
	go func() { a.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return within 5 s with the helpers waiting for the reader")
	}
}

// A reader that waits for each entry to be warmed before it passes it
// (the worst case for the wake-ups the helpers need) still gets every
// entry warmed, at every window, within seconds: the helpers are woken
// whenever the reader's next entry could be one they have not taken.
func TestReaderWaitingOnEachEntryNeverStalls(t *testing.T) {
	for _, window := range []int{1, 2, 3, 4, 5, 8, 32} {
		const n = 300
		warmed := make([]chan struct{}, n)
		for i := range warmed {
			warmed[i] = make(chan struct{})
		}
		a := readahead.Start(n, 4, window, func(i int) { close(warmed[i]) })
		for i := range n {
			select {
			case <-warmed[i]:
			case <-time.After(5 * time.Second):
				a.Stop()
				t.Fatalf("window %d: entry %d not warmed within 5 s of the reader waiting on it", window, i)
			}
			a.Passed(i)
		}
		a.Stop()
	}
}

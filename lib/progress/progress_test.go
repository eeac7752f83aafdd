package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr/ktbuild/internal/syncbuf"
)

// clock is a settable time source for Reporter.now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is safe to read while the Reporter's refresh goroutine writes.
type syncBuffer = syncbuf.Buffer

// newTest returns a Reporter in mode m on a fake clock whose background
// refresh is too slow to fire during a test.
func newTest(m Mode) (*Reporter, *syncBuffer, *clock) {
	out := &syncBuffer{}
	clk := &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := NewMode(out, m)
	r.now = clk.Now
	r.tick = time.Hour
	return r, out, clk
}

// lastLive returns the text of the last live-line redraw in out.
func lastLive(out string) string {
	draws := strings.Split(out, "\r")
	return strings.TrimSuffix(draws[len(draws)-1], "\x1b[K")
}

func TestTerminalBarAndETA(t *testing.T) {
	r, out, clk := newTest(Mode{Terminal: true})
	defer r.Done()
	r.Phase("build")
	clk.Advance(10 * time.Second)
	r.Count(50, 100)

	line := lastLive(out.String())
	for _, want := range []string{"build", "50/100 objects", " 50%", "ETA 10s", "[############------------]"} {
		if !strings.Contains(line, want) {
			t.Errorf("live line %q lacks %q", line, want)
		}
	}
}

func TestTerminalNoBarWithoutExpected(t *testing.T) {
	r, out, clk := newTest(Mode{Terminal: true})
	defer r.Done()
	r.Phase("build")
	clk.Advance(time.Second)
	r.Count(7, 0)

	line := lastLive(out.String())
	if !strings.Contains(line, "7 objects") {
		t.Errorf("live line %q lacks the object count", line)
	}
	if strings.Contains(line, "%") || strings.Contains(line, "ETA") || strings.Contains(line, "[") {
		t.Errorf("live line %q shows a bar although expected is 0", line)
	}
}

func TestTerminalRedrawRateLimit(t *testing.T) {
	r, out, clk := newTest(Mode{Terminal: true})
	defer r.Done()
	r.Phase("build")
	for i := 1; i <= 10; i++ {
		clk.Advance(10 * time.Millisecond)
		r.Count(i, 0)
	}
	// The Phase draw and one redraw once 100 ms have passed.
	if got := strings.Count(out.String(), "\x1b[K"); got != 2 {
		t.Errorf("%d redraws in 100 ms, want 2:\n%q", got, out.String())
	}
	if !strings.Contains(lastLive(out.String()), "10 objects") {
		t.Errorf("last redraw %q does not show the latest count", lastLive(out.String()))
	}
}

func TestTerminalPhaseChangeLeavesDoneLine(t *testing.T) {
	r, out, clk := newTest(Mode{Terminal: true})
	r.Phase("configure")
	clk.Advance(3 * time.Second)
	r.Phase("build")
	r.Count(5, 0)
	clk.Advance(2 * time.Second)
	r.Done()

	text := out.String()
	if !strings.Contains(text, "\r\x1b[Kconfigure: done in 3.0s\n") {
		t.Errorf("output lacks the configure done line after clearing the live line:\n%q", text)
	}
	if !strings.HasSuffix(text, "build: done in 2.0s (5 objects)\n") {
		t.Errorf("output does not end with the build done line:\n%q", text)
	}
}

func TestTerminalTruncatesToWidth(t *testing.T) {
	r, out, _ := newTest(Mode{Terminal: true, Width: 20})
	defer r.Done()
	r.Phase("a-very-long-phase-name-indeed")
	if line := lastLive(out.String()); len(line) != 19 {
		t.Errorf("live line %q is %d columns, want 19 on a 20-column terminal", line, len(line))
	}
}

func TestPlainIntervalLines(t *testing.T) {
	r, out, clk := newTest(Mode{})
	defer r.Done()
	r.Interval = 30 * time.Second
	r.Phase("build")
	clk.Advance(time.Second)
	r.Count(1, 40)
	if strings.Contains(out.String(), "objects") {
		t.Errorf("status line printed before the interval:\n%s", out.String())
	}

	clk.Advance(30 * time.Second)
	r.Count(10, 40)
	want := "build: 10/40 objects (25%), ETA 1m33s, 31s elapsed\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("plain output contains terminal control characters:\n%q", out.String())
	}
}

func TestPlainPhaseLines(t *testing.T) {
	r, out, clk := newTest(Mode{})
	r.Phase("configure")
	clk.Advance(2 * time.Second)
	r.Phase("build")
	r.Done()

	want := "configure: started\nconfigure: done in 2.0s\nbuild: started\nbuild: done in 0.0s\n"
	if out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
}

func TestBytesProgress(t *testing.T) {
	r, out, clk := newTest(Mode{Terminal: true})
	defer r.Done()
	r.Phase("download")
	clk.Advance(4 * time.Second)
	r.Bytes(10<<20, 40<<20)
	line := lastLive(out.String())
	for _, want := range []string{"10.0/40.0 MiB", " 25%", "ETA 12s"} {
		if !strings.Contains(line, want) {
			t.Errorf("live line %q lacks %q", line, want)
		}
	}
}

func TestGitHubActionsGroups(t *testing.T) {
	r, out, _ := newTest(Mode{GitHubActions: true})
	r.Phase("configure")
	r.Phase("build")
	r.Done()
	r.Done()

	var markers []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "::") {
			markers = append(markers, line)
		}
	}
	want := []string{"::group::configure", "::endgroup::", "::group::build", "::endgroup::"}
	if fmt.Sprint(markers) != fmt.Sprint(want) {
		t.Errorf("group markers = %q, want %q", markers, want)
	}
}

func TestColorOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		r, out, _ := newTest(Mode{Terminal: true, Color: enabled})
		r.Phase("build")
		r.Done()
		hasColor := strings.Contains(out.String(), "\x1b[3")
		if hasColor != enabled {
			t.Errorf("Color=%v: colour escapes present = %v:\n%q", enabled, hasColor, out.String())
		}
	}
}

func TestNilReporterIsNoop(t *testing.T) {
	var r *Reporter
	r.Phase("build")
	r.Count(1, 2)
	r.Bytes(1, 2)
	r.Done()
}

func TestConcurrentCalls(t *testing.T) {
	r, out, _ := newTest(Mode{Terminal: true})
	r.Redraw = 0
	r.Phase("build")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r.Count(g*200+i, 1600)
				r.Bytes(int64(i), 200)
			}
		}()
	}
	wg.Wait()
	r.Done()
	if !strings.Contains(out.String(), "build: done") {
		t.Errorf("output lacks the done line after concurrent calls")
	}
}

func TestBackgroundRefresh(t *testing.T) {
	out := &syncBuffer{}
	r := NewMode(out, Mode{})
	r.Interval = time.Millisecond
	r.tick = time.Millisecond
	r.Phase("link")

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "elapsed") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(out.String(), "link: ") || !strings.Contains(out.String(), "elapsed") {
		t.Fatalf("no status line without counts:\n%s", out.String())
	}

	r.Done()
	after := out.String()
	time.Sleep(20 * time.Millisecond)
	if out.String() != after {
		t.Errorf("output grew after Done:\n%s", out.String()[len(after):])
	}
}

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty %d: %v", n, err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

func TestDetectModeTerminal(t *testing.T) {
	_, tty := openPTY(t)
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	t.Setenv("GITHUB_ACTIONS", "")
	m := DetectMode(tty)
	if !m.Terminal || !m.Color || m.GitHubActions {
		t.Errorf("DetectMode(pty) = %+v, want Terminal and Color", m)
	}

	t.Setenv("NO_COLOR", "1")
	if m := DetectMode(tty); m.Color {
		t.Errorf("DetectMode(pty) with NO_COLOR = %+v, want no Color", m)
	}
}

func TestDetectModePipe(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("NO_COLOR", "")
	reader, writer, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	defer writer.Close()
	for _, w := range []io.Writer{writer, &bytes.Buffer{}} {
		m := DetectMode(w)
		if m.Terminal || m.Color || !m.GitHubActions {
			t.Errorf("DetectMode(%T) = %+v, want GitHubActions only", w, m)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	cases := map[time.Duration]string{
		1500 * time.Millisecond:                 "1.5s",
		42 * time.Second:                        "42s",
		125 * time.Second:                       "2m05s",
		time.Hour + 2*time.Minute:               "1h02m",
		59*time.Minute + 59600*time.Millisecond: "1h00m",
	}
	for d, want := range cases {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFailEndsPhaseAsFailed(t *testing.T) {
	var out bytes.Buffer
	r := NewMode(&out, Mode{})
	r.Phase("build")
	r.Count(3, 0)
	r.Fail()
	if !strings.Contains(out.String(), "build: failed in") {
		t.Errorf("Fail did not report the phase as failed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "build: done") {
		t.Errorf("a failed phase was reported done:\n%s", out.String())
	}
}

func TestPlainCountPastEstimate(t *testing.T) {
	r, out, clk := newTest(Mode{})
	r.Interval = 30 * time.Second
	r.Phase("build")
	clk.Advance(31 * time.Second)
	r.Count(58, 22)
	clk.Advance(time.Second)
	r.Done()

	if !strings.Contains(out.String(), "build: 58 objects, 31s elapsed\n") {
		t.Errorf("status line past the estimate is not a bare count:\n%s", out.String())
	}
	if strings.Contains(out.String(), "/22") || strings.Contains(out.String(), "%") {
		t.Errorf("output still shows the wrong estimate:\n%s", out.String())
	}
	if !strings.HasSuffix(out.String(), "build: done in 32s (58 objects)\n") {
		t.Errorf("done line does not report the bare count:\n%s", out.String())
	}
}

func TestPlainDoneLineBelowEstimate(t *testing.T) {
	r, out, _ := newTest(Mode{})
	r.Phase("build")
	r.Count(39, 75)
	r.Done()

	if !strings.HasSuffix(out.String(), "build: done in 0.0s (39 objects)\n") {
		t.Errorf("done line of a build smaller than its estimate:\n%s", out.String())
	}
}

// Package progress shows how far a kernel build has come.
//
// On a terminal a Reporter keeps one live line (phase, objects compiled and,
// when the expected count is known, a bar with percent and ETA) and redraws
// it at most ten times a second. Off a terminal it prints a status line every
// Interval and a line at each phase change, which suits CI logs. Under GitHub
// Actions each phase is folded into a ::group:: block.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"
	"golang.org/x/term"
)

// Mode is the output style of a Reporter: a terminal or a log, with or
// without GitHub Actions groups and colour.
type Mode struct {
	Terminal      bool
	GitHubActions bool
	Color         bool
	// Width is the terminal width in columns. Live lines are cut to fit it
	// unless it is 0 (unknown).
	Width int
}

// DetectMode returns the Mode for w: Terminal when w is an *os.File on a
// terminal, GitHubActions when GITHUB_ACTIONS=true, and Color on a terminal
// unless NO_COLOR is set or TERM is dumb.
func DetectMode(w io.Writer) Mode {
	var m Mode
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		m.Terminal = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			m.Width = width
		}
	}
	m.GitHubActions = os.Getenv("GITHUB_ACTIONS") == "true"
	m.Color = m.Terminal && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return m
}

// Defaults for the Reporter's intervals.
const (
	DefaultInterval = 30 * time.Second
	DefaultRedraw   = 100 * time.Millisecond
)

// Reporter prints the progress of a build's phases. Its methods are safe
// for concurrent use and do nothing on a nil *Reporter, so callers can pass
// nil for "no progress output".
//
// A Reporter refreshes its output from a background goroutine between the
// first Phase and Done, so the elapsed time moves during long quiet steps
// such as the final link. Call Done to stop it.
type Reporter struct {
	// Interval is the time between status lines off a terminal.
	Interval time.Duration
	// Redraw is the minimum time between live-line redraws on a terminal.
	Redraw time.Duration

	mu   sync.Mutex
	w    io.Writer
	mode Mode
	now  func() time.Time
	tick time.Duration // background refresh period, one second when 0

	phaseColor *color.Color
	doneColor  *color.Color

	phase      string
	phaseStart time.Time
	objects    int
	expected   int
	bytesDone  int64
	bytesTotal int64
	hasBytes   bool

	lastDraw  time.Time // last live-line redraw on a terminal
	lastLine  time.Time // last status line off a terminal
	liveShown bool
	groupOpen bool
	stop      chan struct{}
}

// New returns a Reporter writing to w in the Mode DetectMode picks for it.
func New(w io.Writer) *Reporter {
	return NewMode(w, DetectMode(w))
}

// NewMode returns a Reporter writing to w in mode m.
func NewMode(w io.Writer, m Mode) *Reporter {
	r := &Reporter{
		Interval:   DefaultInterval,
		Redraw:     DefaultRedraw,
		w:          w,
		mode:       m,
		now:        time.Now,
		phaseColor: color.New(color.FgCyan, color.Bold),
		doneColor:  color.New(color.FgGreen),
	}
	for _, c := range []*color.Color{r.phaseColor, r.doneColor} {
		if m.Color {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return r
}

// Phase ends the current phase, printing how long it took, and starts the
// phase called name with its counters at zero.
func (r *Reporter) Phase(name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	now := r.now()
	r.finishPhase(now, "done")

	r.phase = name
	r.phaseStart = now
	r.objects, r.expected = 0, 0
	r.bytesDone, r.bytesTotal, r.hasBytes = 0, 0, false
	if r.mode.GitHubActions {
		r.printLine("::group::" + name)
		r.groupOpen = true
	} else if !r.mode.Terminal {
		r.printLine(name + ": started")
	}
	r.lastLine = now
	if r.mode.Terminal {
		r.draw(now)
	}
	r.startTicker()
}

// Count records that n objects of the current phase are done out of
// expected. With expected 0 (unknown) no bar or ETA is shown, and once n
// passes expected the estimate is dropped as wrong.
func (r *Reporter) Count(n int, expected int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	if n > expected {
		expected = 0
	}
	r.objects, r.expected = n, expected
	r.update(r.now())
}

// Bytes records that done bytes of total are transferred in the current
// phase. With total 0 (unknown) no bar or ETA is shown.
func (r *Reporter) Bytes(done, total int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	r.bytesDone, r.bytesTotal, r.hasBytes = done, total, true
	r.update(r.now())
}

// Done ends the current phase, printing how long it took, closes an open
// GitHub Actions group and stops the background refresh. It is idempotent.
func (r *Reporter) Done() {
	r.end("done")
}

// Fail ends the current phase like Done, but reports it as failed, for a
// phase cut short by an error or a cancellation.
func (r *Reporter) Fail() {
	r.end("failed")
}

func (r *Reporter) end(outcome string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	r.finishPhase(r.now(), outcome)
	r.phase = ""
	if r.stop != nil {
		close(r.stop)
		r.stop = nil
	}
}

// update redraws the live line or prints a status line when the rate limit
// for the mode allows it.
func (r *Reporter) update(now time.Time) {
	if r.phase == "" {
		return
	}
	if r.mode.Terminal {
		if now.Sub(r.lastDraw) >= r.Redraw {
			r.draw(now)
		}
		return
	}
	if now.Sub(r.lastLine) >= r.Interval {
		r.printLine(r.plainStatus(now))
		r.lastLine = now
	}
}

// refresh is the background tick: it keeps the elapsed time moving on a
// terminal and the status lines coming off one while no counts arrive.
func (r *Reporter) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()

	now := r.now()
	if r.mode.Terminal && r.phase != "" && now.Sub(r.lastDraw) >= time.Second {
		r.draw(now)
		return
	}
	r.update(now)
}

// finishPhase prints the end of the current phase, if there is one, and
// closes its GitHub Actions group.
func (r *Reporter) finishPhase(now time.Time, outcome string) {
	if r.phase == "" {
		return
	}
	r.clearLive()
	shown := outcome
	if outcome == "done" {
		shown = r.doneColor.Sprint(outcome)
	}
	line := fmt.Sprintf("%s: %s in %s", r.phaseColor.Sprint(r.phase), shown, formatDuration(now.Sub(r.phaseStart)))
	// A finished phase reports what it did; the estimate no longer matters.
	r.expected = 0
	if counts := r.counts(); counts != "" {
		line += " (" + counts + ")"
	}
	r.printLine(line)
	if r.groupOpen {
		r.printLine("::endgroup::")
		r.groupOpen = false
	}
}

// draw rewrites the live line on a terminal: carriage return, the status,
// then clear to the end of the line so a shorter status leaves no residue.
func (r *Reporter) draw(now time.Time) {
	line := r.status(now)
	if r.mode.Width > 1 && len(line) >= r.mode.Width {
		line = line[:r.mode.Width-1]
	}
	if r.mode.Color {
		line = strings.Replace(line, r.phase, r.phaseColor.Sprint(r.phase), 1)
	}
	fmt.Fprint(r.w, "\r"+line+"\x1b[K")
	r.liveShown = true
	r.lastDraw = now
}

// clearLive erases the live line so a permanent line can take its place.
func (r *Reporter) clearLive() {
	if r.liveShown {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.liveShown = false
	}
}

// printLine writes a permanent line, erasing the live line first.
func (r *Reporter) printLine(line string) {
	r.clearLive()
	fmt.Fprintln(r.w, line)
	if r.mode.Terminal && r.phase != "" {
		r.lastDraw = time.Time{}
	}
}

func (r *Reporter) startTicker() {
	if r.stop != nil {
		return
	}
	period := r.tick
	if period == 0 {
		period = time.Second
	}
	r.stop = make(chan struct{})
	go func(stop <-chan struct{}) {
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				r.refresh()
			}
		}
	}(r.stop)
}

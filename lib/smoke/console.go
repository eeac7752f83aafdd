package smoke

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// panicMarker is the start of the kernel's panic message on every
// architecture ("Kernel panic - not syncing: ...").
const panicMarker = "Kernel panic - not syncing"

// console collects a guest's serial output and signals the first byte, the
// first report line and the first panic line.
type console struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// scanned is the offset up to which complete lines were checked.
	scanned int
	tee     []io.Writer

	output   chan struct{}
	reported chan struct{}
	panicked chan struct{}
}

func newConsole(tee ...io.Writer) *console {
	c := &console{
		output:   make(chan struct{}),
		reported: make(chan struct{}),
		panicked: make(chan struct{}),
	}
	for _, w := range tee {
		if w != nil {
			c.tee = append(c.tee, w)
		}
	}
	return c
}

// Write stores p and closes the signal channels whose event first shows up
// in a complete line. Tee errors are ignored so a broken log cannot stop
// the boot.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	for _, w := range c.tee {
		_, _ = w.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.buf.Len() == 0 {
		close(c.output)
	}
	c.buf.Write(p)

	data := c.buf.Bytes()
	end := bytes.LastIndexByte(data, '\n')
	if end < c.scanned {
		return len(p), nil
	}
	lines := data[c.scanned : end+1]
	if bytes.Contains(lines, []byte(Marker)) {
		closeOnce(c.reported)
	}
	if bytes.Contains(lines, []byte(panicMarker)) {
		closeOnce(c.panicked)
	}
	c.scanned = end + 1
	return len(p), nil
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// lastLines returns up to n non-empty lines from the end of text, with
// carriage returns removed.
func lastLines(text string, n int) []string {
	lines := strings.Split(strings.ReplaceAll(text, "\r", ""), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			out = append(out, lines[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// causeMarkers start the first line of an oops report: the kernel's own
// "Oops:"/"BUG:" headers, the pre-6.2 trap names and the arm64 forms.
var causeMarkers = []string{
	"Oops:", "BUG:", "kernel BUG at", "general protection fault",
	"invalid opcode:", "int3: ", "Unable to handle kernel", "Internal error:",
}

// pcMarkers start the line naming the faulting instruction: RIP on x86_64,
// pc on arm64.
var pcMarkers = []string{"RIP:", "pc : "}

// panicLines returns the lines that explain the first kernel panic in text,
// or nil when text contains no panic. The first oops up to its RIP (or pc)
// line names the cause and the faulting function. A few lines before the
// panic line follow, then the panic line and what follows it, up to the
// end-of-panic line or a fixed count.
func panicLines(text string) []string {
	const before, after, causeMax = 10, 24, 8
	lines := strings.Split(strings.ReplaceAll(text, "\r", ""), "\n")
	at := -1
	for i, l := range lines {
		if strings.Contains(l, panicMarker) {
			at = i
			break
		}
	}
	if at < 0 {
		return nil
	}

	var out []string
	keep := func(i int) {
		if strings.TrimSpace(lines[i]) != "" {
			out = append(out, lines[i])
		}
	}
	from := max(0, at-before)
	// The first oops is the cause. Later ones, and the register dump right
	// before the panic, are often its consequences.
	if cause := firstLine(lines[:from], causeMarkers); cause >= 0 {
		i := cause
		for ; i < from && i < cause+causeMax; i++ {
			keep(i)
			if containsAny(lines[i], pcMarkers) {
				i++
				break
			}
		}
		if i < from {
			out = append(out, "[...]")
		}
	}
	for i := from; i < at; i++ {
		keep(i)
	}
	for i := at; i < len(lines) && i <= at+after; i++ {
		keep(i)
		if strings.Contains(lines[i], "end Kernel panic") {
			break
		}
	}
	return out
}

// firstLine returns the index of the first line containing one of markers,
// or -1.
func firstLine(lines, markers []string) int {
	for i, l := range lines {
		if containsAny(l, markers) {
			return i
		}
	}
	return -1
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func indent(lines []string) string {
	if len(lines) == 0 {
		return "  (no console output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}

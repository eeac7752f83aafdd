package kbuild

import (
	"bytes"
	"io"
	"strings"

	"github.com/ktstr/ktbuild/lib/progress"
)

const (
	// failureLines is how many lines a MakeError shows: the lines that
	// look like errors first, then the end of the output.
	failureLines = 20
	// maxErrorLines caps the error-looking lines so the tail still shows.
	maxErrorLines = 10
	// maxLineBytes bounds one buffered line, and longer lines are cut.
	maxLineBytes = 4096
)

// objectTags are the kbuild quiet-mode tags counted as compiled objects.
var objectTags = map[string]bool{
	"CC": true, "AS": true, "AR": true, "LD": true,
	"HOSTCC": true, "HOSTCXX": true, "HOSTLD": true,
}

// outputScanner receives make's combined stdout and stderr. It copies the
// raw stream to the log and the verbose writer, counts object lines for
// progress, and keeps the lines a failure report needs.
type outputScanner struct {
	log      io.Writer // nil when there is no log
	verbose  io.Writer // nil unless make's output is streamed
	progress *progress.Reporter
	expected int

	partial  []byte
	objects  int
	errLines []string
	tail     []string // ring buffer of the last failureLines lines
	tailNext int
}

// Write is called by os/exec's copying goroutine, one call at a time.
func (s *outputScanner) Write(p []byte) (int, error) {
	if s.log != nil {
		// A failed log write (a full disk) must not stop the build. The
		// scanned lines still reach the failure report.
		_, _ = s.log.Write(p)
	}
	if s.verbose != nil {
		_, _ = s.verbose.Write(p)
	}

	data := p
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if len(s.partial) > 0 {
			s.partial = appendBounded(s.partial, data[:i])
			s.line(string(s.partial))
			s.partial = s.partial[:0]
		} else {
			s.line(string(data[:min(i, maxLineBytes)]))
		}
		data = data[i+1:]
	}
	s.partial = appendBounded(s.partial, data)
	return len(p), nil
}

// flush handles a last line that lacks a newline.
func (s *outputScanner) flush() {
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func appendBounded(dst, src []byte) []byte {
	room := maxLineBytes - len(dst)
	if room <= 0 {
		return dst
	}
	return append(dst, src[:min(len(src), room)]...)
}

func (s *outputScanner) line(text string) {
	text = strings.TrimRight(text, "\r")
	if isObjectLine(text) {
		s.objects++
		s.progress.Count(s.objects, s.expected)
	}
	if isErrorLine(text) && len(s.errLines) < maxErrorLines {
		s.errLines = append(s.errLines, text)
	}
	if len(s.tail) < failureLines {
		s.tail = append(s.tail, text)
		return
	}
	s.tail[s.tailNext] = text
	s.tailNext = (s.tailNext + 1) % failureLines
}

// report returns the lines a failure shows: error lines first, then the
// end of the output, failureLines in all and without repeats.
func (s *outputScanner) report() []string {
	tail := append(append([]string(nil), s.tail[s.tailNext:]...), s.tail[:s.tailNext]...)
	lines := append([]string(nil), s.errLines...)
	shown := map[string]bool{}
	for _, l := range lines {
		shown[l] = true
	}

	var rest []string
	for _, l := range tail {
		if !shown[l] {
			rest = append(rest, l)
		}
	}
	if room := failureLines - len(lines); len(rest) > room {
		rest = rest[len(rest)-room:]
	}
	return append(lines, rest...)
}

// isObjectLine reports whether text is a kbuild quiet-mode line for one
// object, such as "  CC      kernel/fork.o" or "  LD [M]  fs/fuse/fuse.ko".
func isObjectLine(text string) bool {
	rest, ok := strings.CutPrefix(text, "  ")
	if !ok {
		return false
	}
	tag, target, ok := strings.Cut(rest, " ")
	if !ok || !objectTags[tag] {
		return false
	}
	target = strings.TrimPrefix(strings.TrimLeft(target, " "), "[M]")
	return strings.TrimSpace(target) != ""
}

// isErrorLine reports whether text looks like a compiler, linker or make
// error: "error:", make's "***" markers, or "Error 1" style exits.
func isErrorLine(text string) bool {
	return strings.Contains(text, "error:") ||
		strings.Contains(text, "***") ||
		strings.Contains(text, "Error ") ||
		strings.HasPrefix(text, "ERROR:")
}

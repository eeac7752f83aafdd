package progress

import (
	"fmt"
	"strings"
	"time"
)

const barWidth = 24

// status returns the live line without colour, e.g.
// "build  1234/5000 objects  [#####-------------------]   24%  ETA 3m20s  1m02s".
func (r *Reporter) status(now time.Time) string {
	elapsed := now.Sub(r.phaseStart)
	parts := []string{r.phase}
	if counts := r.counts(); counts != "" {
		parts = append(parts, counts)
	}
	if fraction, ok := r.fraction(); ok {
		parts = append(parts, bar(fraction), fmt.Sprintf("%3.0f%%", fraction*100))
		if eta, ok := r.eta(elapsed); ok {
			parts = append(parts, "ETA "+formatDuration(eta))
		}
	}
	parts = append(parts, formatDuration(elapsed))
	return strings.Join(parts, "  ")
}

// plainStatus returns the status line for logs, e.g.
// "build: 1234/5000 objects (24%), ETA 3m20s, 1m02s elapsed".
func (r *Reporter) plainStatus(now time.Time) string {
	elapsed := now.Sub(r.phaseStart)
	line := r.phase + ":"
	if counts := r.counts(); counts != "" {
		line += " " + counts
	}
	if fraction, ok := r.fraction(); ok {
		line += fmt.Sprintf(" (%.0f%%)", fraction*100)
		if eta, ok := r.eta(elapsed); ok {
			line += ", ETA " + formatDuration(eta)
		}
	}
	return line + ", " + formatDuration(elapsed) + " elapsed"
}

// counts describes the phase's counters, e.g. "1234/5000 objects", or ""
// when nothing was counted.
func (r *Reporter) counts() string {
	switch {
	case r.hasBytes:
		return formatBytes(r.bytesDone, r.bytesTotal)
	case r.expected > 0:
		return fmt.Sprintf("%d/%d objects", r.objects, r.expected)
	case r.objects > 0:
		return fmt.Sprintf("%d objects", r.objects)
	}
	return ""
}

// progress returns the phase's done and total units, bytes when a transfer
// is being reported and objects otherwise.
func (r *Reporter) progress() (done, total float64) {
	if r.hasBytes {
		return float64(r.bytesDone), float64(r.bytesTotal)
	}
	return float64(r.objects), float64(r.expected)
}

// fraction returns how much of the phase is done, capped at 1, and false
// when the total is unknown.
func (r *Reporter) fraction() (float64, bool) {
	done, total := r.progress()
	if total <= 0 {
		return 0, false
	}
	return min(done/total, 1), true
}

// eta extrapolates the phase's remaining time from its average rate so far,
// and returns false before the first unit or after the last.
func (r *Reporter) eta(elapsed time.Duration) (time.Duration, bool) {
	done, total := r.progress()
	if done <= 0 || done >= total {
		return 0, false
	}
	return time.Duration(float64(elapsed) * (total - done) / done), true
}

func bar(fraction float64) string {
	filled := int(fraction * barWidth)
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]"
}

// formatDuration renders d compactly: tenths of a second under ten seconds,
// whole seconds under a minute, then "2m05s" and "1h02m".
func formatDuration(d time.Duration) string {
	if d < 9950*time.Millisecond {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// formatBytes renders a transfer in MiB, e.g. "12.3/140.0 MiB".
func formatBytes(done, total int64) string {
	const mib = 1 << 20
	if total > 0 {
		return fmt.Sprintf("%.1f/%.1f MiB", float64(done)/mib, float64(total)/mib)
	}
	return fmt.Sprintf("%.1f MiB", float64(done)/mib)
}

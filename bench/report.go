package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the result table. Every column is preformatted text.
type row struct {
	name, ours, peer, ratio, target, result string
}

// Results of a row: a met target, a missed one, and a figure that is shown
// for context and has no target.
const (
	resultPass = "pass"
	resultFail = "FAIL"
	resultInfo = "info"
)

// session is one bench run: its settings, scratch dir and report.
type session struct {
	cfg   config
	repo  string // module root, where mage.go and ./bench live
	work  string // scratch dir, removed by close unless -keep
	kt    string // compiled magefile, made on first use
	rows  []row
	notes []string
}

func newSession(cfg config) (*session, error) {
	repo, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.workRoot, 0o755); err != nil {
		return nil, fmt.Errorf("bench: create -work dir %s: %w", cfg.workRoot, err)
	}
	work, err := os.MkdirTemp(cfg.workRoot, "ktbuild-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: create scratch dir under %s: %w — pass a writable -work dir", cfg.workRoot, err)
	}
	return &session{cfg: cfg, repo: repo, work: work}, nil
}

// moduleRoot returns the directory of the go.mod that governs the current
// directory, which `go run ./bench` requires to be ktbuild's.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("bench: go env GOMOD: %w — run bench from the ktbuild checkout with go on PATH", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("bench: no go.mod governs the current directory — run `go run ./bench` from the ktbuild checkout")
	}
	return filepath.Dir(gomod), nil
}

func (s *session) close() {
	if s.cfg.keep {
		s.progress("kept scratch dir %s", s.work)
		return
	}
	if err := os.RemoveAll(s.work); err != nil {
		s.progress("could not remove scratch dir %s: %v", s.work, err)
	}
}

func (s *session) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (s *session) addRow(r row) { s.rows = append(s.rows, r) }

func (s *session) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// ratioRow adds a row comparing two figures where lower is better, with the
// pass bar and the aim (0 = none) of the target.
func (s *session) ratioRow(name, ours, peer string, ratio, bar, aim float64) {
	target := fmt.Sprintf("≤ %.2g×", bar)
	if aim > 0 {
		target += fmt.Sprintf(" (aim %.2g×)", aim)
	}
	result := resultPass
	if ratio > bar {
		result = resultFail
	}
	s.addRow(row{name: name, ours: ours, peer: peer, ratio: fmt.Sprintf("%.3f×", ratio), target: target, result: result})
}

// infoRow adds a ratio shown for context, with no target.
func (s *session) infoRow(name, ours, peer string, ratio float64) {
	s.addRow(row{name: name, ours: ours, peer: peer, ratio: fmt.Sprintf("%.3f×", ratio), target: "-", result: resultInfo})
}

// memRow adds a peak-RSS row with an upper bound in MiB; peer is the peer
// command's own peak, or "-".
func (s *session) memRow(name string, kib int64, peer string, limitMiB int) {
	result := resultPass
	if kib >= int64(limitMiB)<<10 {
		result = resultFail
	}
	s.addRow(row{name: name, ours: formatKiB(kib), peer: peer, ratio: "-", target: fmt.Sprintf("< %d MiB", limitMiB), result: result})
}

// print writes the table and the notes to w and returns how many targets
// were missed.
func (s *session) print(w io.Writer) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tours\tpeer\tratio\ttarget\tresult")
	missed, met := 0, 0
	for _, r := range s.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.ours, r.peer, r.ratio, r.target, r.result)
		switch r.result {
		case resultFail:
			missed++
		case resultPass:
			met++
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%d of %d targets met\n", met, met+missed)
	if len(s.notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range s.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	return missed
}

// formatDuration prints d with three significant digits in ms or s.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func formatKiB(kib int64) string {
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func formatBytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

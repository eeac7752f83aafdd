package sandbox

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// orphanAge is the minimum age of a dead process's sandbox group before
// New removes it. A day leaves alone any group that a live tool might still
// be setting up, even if its pid was reused.
const orphanAge = 24 * time.Hour

// sweepOrphans removes ktstr-build-{nanos}-{pid} groups in parent whose
// pid is not running (no procRoot/{pid}) and whose directory was last
// changed over a day before now. Groups that still hold tasks stay,
// because rmdir refuses them.
func sweepOrphans(parent, procRoot string, now time.Time) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := groupPID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid))); err == nil {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < orphanAge {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if err := removeDir(dir); err != nil {
			slog.Debug("sandbox: keep orphaned cgroup", "cgroup", dir, "err", err)
			continue
		}
		slog.Debug("sandbox: removed orphaned cgroup", "cgroup", dir, "pid", pid)
	}
}

// groupPID parses the pid from a name of the form ktstr-build-{nanos}-{pid}.
func groupPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, GroupPrefix)
	if !ok {
		return 0, false
	}
	nanos, pidText, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	if _, err := strconv.ParseUint(nanos, 10, 64); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

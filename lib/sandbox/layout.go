package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"

	"github.com/ktstr/ktbuild/lib/topology"
)

// hierarchy is the cgroup directory this process belongs to, in the
// hierarchy that offers cpuset.
type hierarchy struct {
	version int    // 1 or 2
	mount   string // the hierarchy's mount point, e.g. /sys/fs/cgroup/cpuset
	group   string // our cgroup path from /proc/self/cgroup, e.g. "/" or "/user.slice"
	dir     string // the directory of our cgroup under mount
}

// relative returns our cgroup's path below the mount point, which differs
// from group when the mount shows only a sub-tree of the hierarchy.
func (h hierarchy) relative() string {
	rel, _ := filepath.Rel(h.mount, h.dir)
	return filepath.Join("/", rel)
}

// findHierarchy picks the cgroup hierarchy to create the sandbox in: the
// v2 hierarchy when it offers cpuset to our cgroup, else the v1 cpuset
// hierarchy. It returns a *DegradedError when neither is usable.
func findHierarchy(cgroupRoot, procRoot string) (hierarchy, error) {
	procCgroup := filepath.Join(procRoot, "self", "cgroup")
	v1Paths, v2Group, err := cgroups.ParseCgroupFileUnified(procCgroup)
	if err != nil {
		return hierarchy{}, degraded(NoCgroupFS, err, "cannot read this process's cgroups from %s", procCgroup)
	}
	mounts := readMountRoots(filepath.Join(procRoot, "self", "mountinfo"))

	var v2Mount string
	switch {
	case exists(filepath.Join(cgroupRoot, "cgroup.controllers")):
		v2Mount = cgroupRoot
	case exists(filepath.Join(cgroupRoot, "unified", "cgroup.controllers")):
		v2Mount = filepath.Join(cgroupRoot, "unified")
	}
	v1Mount := filepath.Join(cgroupRoot, "cpuset")
	v1Group, inV1 := v1Paths["cpuset"]
	hasV1 := inV1 && exists(filepath.Join(v1Mount, "cpuset.cpus"))

	if v2Mount == "" && !hasV1 {
		if !hasAnyHierarchy(cgroupRoot) {
			return hierarchy{}, degraded(NoCgroupFS, nil, "no cgroup filesystem at %s", cgroupRoot)
		}
		return hierarchy{}, degraded(NoCpuset, nil, "no cpuset controller under %s", cgroupRoot)
	}

	if v2Mount != "" && v2Group != "" {
		h := hierarchy{version: 2, mount: v2Mount, group: v2Group, dir: groupDir(v2Mount, v2Group, mounts)}
		controllers := strings.Fields(readTrimmed(filepath.Join(h.dir, "cgroup.controllers")))
		if slices.Contains(controllers, "cpuset") || !hasV1 {
			return h, nil
		}
	}
	if hasV1 {
		return hierarchy{version: 1, mount: v1Mount, group: v1Group, dir: groupDir(v1Mount, v1Group, mounts)}, nil
	}
	return hierarchy{}, degraded(NoCpuset, nil, "no cpuset controller: %s has no v2 cgroup of this process and no v1 cpuset hierarchy", cgroupRoot)
}

// hasAnyHierarchy reports whether root contains a mounted cgroup hierarchy
// of either version, which distinguishes a missing cpuset from a missing
// cgroup filesystem.
func hasAnyHierarchy(root string) bool {
	entries, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if exists(filepath.Join(dir, "cgroup.procs")) {
			return true
		}
	}
	return exists(filepath.Join(root, "cgroup.procs"))
}

// groupDir joins a cgroup path to its mount point. In a container the
// mount's root can be a sub-tree while /proc/self/cgroup shows paths from
// the top of the hierarchy, so the mount's root is stripped first.
func groupDir(mount, group string, mountRoots map[string]string) string {
	if root, ok := mountRoots[mount]; ok && root != "/" {
		if rel, ok := strings.CutPrefix(group, root); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
			group = rel
		}
	}
	return filepath.Join(mount, group)
}

// readMountRoots maps each mount point in a mountinfo file to the root of
// the filesystem mounted there; it returns nil when the file is missing.
func readMountRoots(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()

	roots := make(map[string]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		roots[unescapeMountinfo(fields[4])] = unescapeMountinfo(fields[3])
	}
	return roots
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) that
// mountinfo uses for white space and backslashes in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readCPUSet reads a cpuset file such as cpuset.cpus.effective.
func readCPUSet(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := topology.ParseList(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// readFirstCPUSet reads the first of paths that exists; the effective
// files are missing on old kernels and in hand-made test trees.
func readFirstCPUSet(paths ...string) ([]int, error) {
	var err error
	for _, p := range paths {
		var set []int
		set, err = readCPUSet(p)
		if !errors.Is(err, fs.ErrNotExist) {
			return set, err
		}
	}
	return nil, err
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// intersect returns the members of want that are in have, ascending.
func intersect(want, have []int) []int {
	var out []int
	for _, v := range want {
		if slices.Contains(have, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

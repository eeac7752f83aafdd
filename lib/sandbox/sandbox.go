// Package sandbox confines make and its children to the reserved CPUs with
// a cgroup cpuset, without moving the calling process.
//
// On cgroup v2 make is started directly inside a child cgroup of ours
// (clone3 with CLONE_INTO_CGROUP). On v1 and hybrid hosts, where v2 has no
// cpuset, the wrapped command first writes its own pid to the v1 cpuset
// group and then execs make, so make forks nothing outside the group.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ktstr/ktbuild/lib/topology"
)

// GroupPrefix starts the name of every sandbox cgroup; the full name is
// ktstr-build-{unix nanoseconds}-{pid}, as ktstr names its build groups.
const GroupPrefix = "ktstr-build-"

// Options configures New.
type Options struct {
	// CPUs and Mems are the planned CPUs and NUMA nodes. Mems may be empty,
	// which keeps the parent cgroup's memory nodes.
	CPUs []int
	Mems []int
	// Strict turns every degradation into an error; set it when the
	// operator gave a CPU cap.
	Strict bool
	// CgroupRoot is the directory that cgroup filesystems are mounted
	// under; "" means /sys/fs/cgroup.
	CgroupRoot string
	// ProcRoot is the procfs to read self/cgroup, self/mountinfo and pids
	// from; "" means /proc.
	ProcRoot string
	// Warn receives degradation warnings when Strict is off; nil logs with
	// log/slog at warning level.
	Warn func(format string, args ...any)

	// failStep, when set by tests, returns an error to inject at a named
	// step ("subtree_control", "mkdir") before the step touches the tree.
	failStep func(step string) error
}

// Sandbox is a cpuset cgroup for one build. The zero sandbox returned on
// a degradation without a group wraps nothing and closes nothing.
type Sandbox struct {
	// Dir is the sandbox cgroup's directory; "" when there is none.
	Dir string
	// Version is the cgroup version of Dir (1 or 2); 0 when there is none.
	Version int
	// CPUs and Mems are the sets read back from the group after writing.
	CPUs []int
	Mems []int
	// Degraded is the degradation that was warned about, if any.
	Degraded *DegradedError

	parentDir string
	dirFD     *os.File // cgroup v2: the group directory, for CgroupFD
	closed    bool
}

// New creates the sandbox cgroup under this process's own cgroup and
// writes opts.CPUs and opts.Mems to it. It also removes ktstr-build-*
// groups next to it whose process is gone and that are over a day old.
//
// When the host cannot provide the cpuset (see Reason), New returns a
// *DegradedError if opts.Strict is set; otherwise it warns and returns a
// sandbox without a group, or with the narrower CPU set it got.
func New(ctx context.Context, opts Options) (*Sandbox, error) {
	if len(opts.CPUs) == 0 {
		return nil, errors.New("sandbox: no CPUs given — pass the reservation's CPUs, or skip the sandbox when there is no plan")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	opts.CgroupRoot = cmpOr(opts.CgroupRoot, "/sys/fs/cgroup")
	opts.ProcRoot = cmpOr(opts.ProcRoot, "/proc")
	warn := opts.Warn
	if warn == nil {
		warn = func(format string, args ...any) { slog.Warn(fmt.Sprintf(format, args...)) }
	}

	s, err := create(opts)
	var d *DegradedError
	if !errors.As(err, &d) {
		return s, err
	}
	if opts.Strict {
		if s != nil {
			s.Close()
		}
		return nil, d
	}
	if d.Reason == Narrowed && s != nil {
		warn("%v; make runs on CPUs %s", d, topology.FormatList(s.CPUs))
	} else {
		warn("%v; make runs without a cpuset", d)
		s = &Sandbox{}
	}
	s.Degraded = d
	return s, nil
}

// create builds the group. Along with a *DegradedError of reason Narrowed
// it returns the usable, narrower sandbox.
func create(opts Options) (*Sandbox, error) {
	h, err := findHierarchy(opts.CgroupRoot, opts.ProcRoot)
	if err != nil {
		return nil, err
	}
	if h.version == 2 {
		if err := enableCpuset(h, opts); err != nil {
			return nil, err
		}
	}

	name := GroupPrefix + strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.Itoa(os.Getpid())
	sweepOrphans(h.dir, opts.ProcRoot, time.Now())

	cpus, mems, narrowed, err := fitToParent(h, opts)
	if err != nil {
		return nil, err
	}
	if opts.failStep != nil {
		if err := opts.failStep("mkdir"); err != nil {
			return nil, classify(err, "create cgroup %s", filepath.Join(h.dir, name))
		}
	}

	s := &Sandbox{Dir: filepath.Join(h.dir, name), Version: h.version, parentDir: h.dir}
	if h.version == 2 {
		err = createV2(h, name, cpus, mems)
	} else {
		err = createV1(h, name, cpus, mems)
	}
	if err != nil {
		s.removeGroup()
		return nil, classify(err, "create cgroup %s with cpus %s", s.Dir, topology.FormatList(cpus))
	}

	if err := s.readBack(); err != nil {
		s.Close()
		return nil, classify(err, "read back the cpuset of %s", s.Dir)
	}
	if s.Version == 2 {
		if s.dirFD, err = os.Open(s.Dir); err != nil {
			s.Close()
			return nil, classify(err, "open cgroup %s for CLONE_INTO_CGROUP", s.Dir)
		}
	}

	requested := intersect(opts.CPUs, opts.CPUs)
	if narrowed || len(intersect(requested, s.CPUs)) < len(requested) {
		return s, degraded(Narrowed, nil, "cgroup %s allows only CPUs %s of the planned %s",
			h.dir, topology.FormatList(s.CPUs), topology.FormatList(opts.CPUs))
	}
	return s, nil
}

// enableCpuset makes sure our v2 cgroup hands the cpuset controller to its
// children. The root cgroup's subtree_control is left as the host set it.
func enableCpuset(h hierarchy, opts Options) error {
	controllers := strings.Fields(readTrimmed(filepath.Join(h.dir, "cgroup.controllers")))
	if !slices.Contains(controllers, "cpuset") {
		return degraded(NoCpuset, nil, "cgroup %s offers no cpuset controller (cgroup.controllers: %q)", h.dir, strings.Join(controllers, " "))
	}

	subtree := filepath.Join(h.dir, "cgroup.subtree_control")
	if slices.Contains(strings.Fields(readTrimmed(subtree)), "cpuset") {
		return nil
	}
	if h.group == "/" {
		return degraded(RootCgroup, nil, "this process is in the root cgroup of %s, whose cgroup.subtree_control does not delegate cpuset", h.mount)
	}
	var err error
	if opts.failStep != nil {
		err = opts.failStep("subtree_control")
	}
	if err == nil {
		err = os.WriteFile(subtree, []byte("+cpuset"), 0)
	}
	if err != nil {
		return classify(err, "enable cpuset in %s", subtree)
	}
	return nil
}

// fitToParent limits the requested sets to what our cgroup allows. Memory
// nodes outside the parent (a CPU-only NUMA node) fall back to the
// parent's nodes, because a cpuset needs at least one memory node.
func fitToParent(h hierarchy, opts Options) (cpus, mems []int, narrowed bool, err error) {
	cpusFiles, memsFiles := []string{"cpuset.cpus.effective", "cpuset.cpus"}, []string{"cpuset.mems.effective", "cpuset.mems"}
	if h.version == 1 {
		cpusFiles, memsFiles = []string{"cpuset.effective_cpus", "cpuset.cpus"}, []string{"cpuset.effective_mems", "cpuset.mems"}
	}
	parentCPUs, err := readFirstCPUSet(join(h.dir, cpusFiles)...)
	if err != nil {
		return nil, nil, false, classify(err, "read the CPUs of cgroup %s", h.dir)
	}
	parentMems, err := readFirstCPUSet(join(h.dir, memsFiles)...)
	if err != nil {
		return nil, nil, false, classify(err, "read the memory nodes of cgroup %s", h.dir)
	}

	cpus = intersect(opts.CPUs, parentCPUs)
	if len(cpus) == 0 {
		return nil, nil, false, degraded(Narrowed, nil, "cgroup %s allows CPUs %s, none of the planned %s",
			h.dir, topology.FormatList(parentCPUs), topology.FormatList(opts.CPUs))
	}
	mems = intersect(opts.Mems, parentMems)
	if len(mems) == 0 {
		mems = parentMems
	}
	return cpus, mems, len(cpus) < len(opts.CPUs), nil
}

func join(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

func createV2(h hierarchy, name string, cpus, mems []int) error {
	parent, err := cgroup2.Load(h.relative(), cgroup2.WithMountpoint(h.mount))
	if err != nil {
		return err
	}
	child, err := parent.NewChild(name, nil)
	if err != nil {
		return err
	}
	return child.Update(&cgroup2.Resources{CPU: &cgroup2.CPU{
		Cpus: topology.FormatList(cpus),
		Mems: topology.FormatList(mems),
	}})
}

func createV1(h hierarchy, name string, cpus, mems []int) error {
	cgroupRoot := filepath.Dir(h.mount)
	onlyCpuset := cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{cgroup1.NewCpuset(cgroupRoot)}, nil
	})
	resources := &specs.LinuxResources{CPU: &specs.LinuxCPU{
		Cpus: topology.FormatList(cpus),
		Mems: topology.FormatList(mems),
	}}
	_, err := cgroup1.New(cgroup1.StaticPath(path.Join(h.relative(), name)), resources, onlyCpuset)
	return err
}

// readBack reads the sets the kernel applied to the group.
func (s *Sandbox) readBack() error {
	cpusFiles := []string{"cpuset.cpus.effective", "cpuset.cpus"}
	memsFiles := []string{"cpuset.mems.effective", "cpuset.mems"}
	if s.Version == 1 {
		cpusFiles, memsFiles = []string{"cpuset.cpus"}, []string{"cpuset.mems"}
	}
	var err error
	if s.CPUs, err = readFirstCPUSet(join(s.Dir, cpusFiles)...); err != nil {
		return err
	}
	s.Mems, err = readFirstCPUSet(join(s.Dir, memsFiles)...)
	return err
}

// classify turns a cgroup filesystem error into a DegradedError whose
// reason names what the operator has to fix.
func classify(err error, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	switch {
	case permissionError(err):
		return degraded(PermissionDenied, err, "%s", detail)
	case errors.Is(err, fs.ErrNotExist):
		return degraded(NoCpuset, err, "%s", detail)
	default:
		return degraded(CreateFailed, err, "%s", detail)
	}
}

// joinScript is run by /bin/sh as the first step of a v1 sandboxed
// command: it moves the shell into the cgroup given as $1 and then execs
// the real command, so everything the command forks starts in the group.
const joinScript = `echo $$ > "$1/cgroup.procs" || { echo "ktbuild: joining cpuset cgroup $1 failed — check that it exists and is writable" >&2; exit 126; }; shift; exec "$@"`

// Wrap prepares cmd, before it is started, to run inside the sandbox. It
// does nothing for a sandbox without a group. On cgroup v2 it sets
// SysProcAttr.UseCgroupFD; on v1 it rewrites cmd to run through /bin/sh,
// which joins the group and then execs the original program with its
// arguments. Other SysProcAttr fields, Env, Dir and the standard streams
// are kept.
func (s *Sandbox) Wrap(cmd *exec.Cmd) error {
	if s == nil || s.Dir == "" {
		return nil
	}
	if s.closed {
		return fmt.Errorf("sandbox: cgroup %s is already closed — call Wrap before Close", s.Dir)
	}
	if cmd.Process != nil {
		return fmt.Errorf("sandbox: %s already started — call Wrap before Start", cmd.Path)
	}
	if cmd.Err != nil {
		return cmd.Err
	}

	if s.Version == 2 {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(s.dirFD.Fd())
		return nil
	}

	shell, err := exec.LookPath("sh")
	if err != nil {
		shell = "/bin/sh"
	}
	var args []string
	if len(cmd.Args) > 1 {
		args = cmd.Args[1:]
	}
	cmd.Args = append([]string{"sh", "-c", joinScript, "ktbuild-cgroup-join", s.Dir, cmd.Path}, args...)
	cmd.Path = shell
	return nil
}

// Close moves any task left in the group back to the parent cgroup and
// removes the group, retrying for up to about a second while the kernel
// reports it busy. Calling it again does nothing.
func (s *Sandbox) Close() error {
	if s == nil || s.Dir == "" || s.closed {
		return nil
	}
	s.closed = true
	if s.dirFD != nil {
		s.dirFD.Close()
	}
	return s.removeGroup()
}

func (s *Sandbox) removeGroup() error {
	delay := 10 * time.Millisecond
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		moveTasks(s.Dir, s.parentDir)
		err = removeDir(s.Dir)
		if err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("sandbox: remove cgroup %s: %w — remove it by hand once its tasks have exited (rmdir %s)", s.Dir, err, s.Dir)
	}
	return nil
}

// moveTasks moves every process in dir's cgroup.procs to parent's. Errors
// are only logged, because a process may exit meanwhile and rmdir reports
// any task that stays.
func moveTasks(dir, parent string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, field := range strings.Fields(string(data)) {
		if err := os.WriteFile(filepath.Join(parent, "cgroup.procs"), []byte(field), 0); err != nil {
			slog.Debug("sandbox: move task to parent cgroup", "pid", field, "cgroup", parent, "err", err)
		}
	}
}

// removeDir removes a cgroup directory. cgroupfs removes a group's control
// files with it; a plain directory (a test tree) needs them removed first.
func removeDir(dir string) error {
	err := unix.Rmdir(dir)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTEMPTY):
		return os.RemoveAll(dir)
	default:
		return err
	}
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

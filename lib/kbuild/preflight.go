package kbuild

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MinPahole is the oldest pahole that can generate BTF (CONFIG_DEBUG_INFO_BTF),
// as Linux 6.12's lib/Kconfig.debug requires.
const MinPahole = "1.16"

const minPaholeMajor, minPaholeMinor = 1, 16

// Tool is one host requirement of a kernel build and whether it was found.
type Tool struct {
	Name string
	// Why is the purpose the kernel build uses the tool for.
	Why string
	// Package is the distribution package that provides the tool.
	Package string
	Found   bool
	// Version is the tool's version where Preflight reads one (the C
	// compiler and pahole), else "".
	Version string
	// Path is the program's or header's location.
	Path string
	// Problem explains why a tool that exists is not usable, e.g. a pahole
	// older than MinPahole.
	Problem string
}

// Host is the set of directories Preflight searches. The zero value
// describes this machine.
type Host struct {
	// Path lists the directories searched for programs; nil means $PATH.
	Path []string
	// IncludeDirs lists the directories searched for C headers; nil means
	// /usr/include, /usr/local/include and the multiarch directory.
	IncludeDirs []string
	// OSRelease is the os-release file used to pick package names; ""
	// means /etc/os-release.
	OSRelease string
}

// requirement describes how to find one tool.
type requirement struct {
	name, why      string
	debian, fedora string
	programs       []string // any one of them will do
	headers        []string // any one of them will do
	versionArg     string
}

var requirements = []requirement{
	{name: "make", why: "runs the kernel build", debian: "make", fedora: "make", programs: []string{"make"}},
	{name: "C compiler", why: "compiles the kernel", debian: "gcc", fedora: "gcc", programs: []string{"cc", "gcc", "clang"}, versionArg: "--version"},
	{name: "flex", why: "generates the kconfig lexer", debian: "flex", fedora: "flex", programs: []string{"flex"}},
	{name: "bison", why: "generates the kconfig parser", debian: "bison", fedora: "bison", programs: []string{"bison"}},
	{name: "bc", why: "computes kernel/timeconst.h", debian: "bc", fedora: "bc", programs: []string{"bc"}},
	{name: "libelf headers", why: "objtool and resolve_btfids are built against libelf", debian: "libelf-dev", fedora: "elfutils-libelf-devel", headers: []string{"gelf.h", "libelf.h"}},
	{name: "openssl headers", why: "the module signing and certificate tools are built against OpenSSL", debian: "libssl-dev", fedora: "openssl-devel", headers: []string{"openssl/opensslv.h"}},
	{name: "pahole", why: "converts DWARF to BTF for CONFIG_DEBUG_INFO_BTF (" + MinPahole + " or later)", debian: "dwarves", fedora: "dwarves", programs: []string{"pahole"}, versionArg: "--version"},
	{name: "cpio", why: "packs the in-kernel headers archive", debian: "cpio", fedora: "cpio", programs: []string{"cpio"}},
}

// Preflight checks this machine for the tools a sched_ext kernel build
// needs; see Host.Preflight.
func Preflight() ([]Tool, error) {
	return Host{}.Preflight()
}

// Preflight returns every required tool with whether it was found. The
// error lists each missing or unusable tool and one command that installs
// them all: dnf on Fedora and RHEL-like systems, apt-get elsewhere.
func (h Host) Preflight() ([]Tool, error) {
	fedora := h.isFedoraLike()
	tools := make([]Tool, 0, len(requirements))
	var missing []Tool
	for _, req := range requirements {
		tool := h.check(req)
		if fedora {
			tool.Package = req.fedora
		}
		tools = append(tools, tool)
		if !tool.Found || tool.Problem != "" {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return tools, nil
	}

	var packages []string
	var b strings.Builder
	for _, tool := range missing {
		packages = append(packages, tool.Package)
		problem := tool.Problem
		if problem == "" {
			problem = "not found"
		}
		fmt.Fprintf(&b, "\n  %s: %s — %s (package %s)", tool.Name, problem, tool.Why, tool.Package)
	}
	install := "apt-get install " + strings.Join(packages, " ")
	if fedora {
		install = "dnf install " + strings.Join(packages, " ")
	}
	return tools, fmt.Errorf("kbuild: %d build tool(s) missing — install them with: %s%s", len(missing), install, b.String())
}

// ToolVersions returns the first line of the C compiler's and pahole's
// --version output on this machine, "" for a tool that is missing.
func ToolVersions() (compiler, pahole string) {
	return Host{}.ToolVersions()
}

// ToolVersions returns the first line of the C compiler's and pahole's
// --version output, "" for a tool that is missing.
func (h Host) ToolVersions() (compiler, pahole string) {
	return h.version("C compiler"), h.version("pahole")
}

// version returns the --version line of the requirement called name.
func (h Host) version(name string) string {
	for _, req := range requirements {
		if req.name == name {
			return h.check(req).Version
		}
	}
	return ""
}

func (h Host) check(req requirement) Tool {
	tool := Tool{Name: req.name, Why: req.why, Package: req.debian}
	for _, program := range req.programs {
		if path, ok := h.lookPath(program); ok {
			tool.Found, tool.Path = true, path
			break
		}
	}
	for _, header := range req.headers {
		if path, ok := h.findHeader(header); ok {
			tool.Found, tool.Path = true, path
			break
		}
	}
	if !tool.Found || req.versionArg == "" {
		return tool
	}

	tool.Version = firstLine(tool.Path, req.versionArg)
	if req.name == "pahole" {
		tool.Problem = paholeProblem(tool.Version)
	}
	return tool
}

var paholeVersion = regexp.MustCompile(`v?(\d+)\.(\d+)`)

// paholeProblem returns why a pahole --version output is too old, or "".
// An output it cannot parse is accepted, because the build will tell.
func paholeProblem(version string) string {
	m := paholeVersion.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major > minPaholeMajor || major == minPaholeMajor && minor >= minPaholeMinor {
		return ""
	}
	return fmt.Sprintf("version %s.%s is older than %s", m[1], m[2], MinPahole)
}

// firstLine runs program with arg and returns the first line of its output,
// or "" when it fails or runs longer than five seconds.
func firstLine(program, arg string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, program, arg).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func (h Host) lookPath(program string) (string, bool) {
	dirs := h.Path
	if dirs == nil {
		dirs = filepath.SplitList(os.Getenv("PATH"))
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, program)
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return path, true
		}
	}
	return "", false
}

func (h Host) findHeader(header string) (string, bool) {
	dirs := h.IncludeDirs
	if dirs == nil {
		dirs = []string{"/usr/include", "/usr/local/include", filepath.Join("/usr/include", multiarch())}
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, header)
		if _, err := os.Stat(path); err == nil {
			return path, true
		}
	}
	return "", false
}

// multiarch returns Debian's multiarch triplet for this machine, the
// directory under /usr/include that holds some architecture's headers.
func multiarch() string {
	if HostArch() == "aarch64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

// isFedoraLike reports whether os-release names Fedora, RHEL or CentOS in
// ID or ID_LIKE.
func (h Host) isFedoraLike() bool {
	path := h.OSRelease
	if path == "" {
		path = "/etc/os-release"
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()

	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), "=")
		if !ok || (key != "ID" && key != "ID_LIKE") {
			continue
		}
		for _, id := range strings.Fields(strings.Trim(value, `"'`)) {
			switch id {
			case "fedora", "rhel", "centos":
				return true
			}
		}
	}
	return false
}

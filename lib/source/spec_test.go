package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want Spec
	}{
		{"./linux", Spec{Kind: SpecPath, Path: "./linux"}},
		{"../linux", Spec{Kind: SpecPath, Path: "../linux"}},
		{".", Spec{Kind: SpecPath, Path: "."}},
		{"/usr/src/linux", Spec{Kind: SpecPath, Path: "/usr/src/linux"}},
		{"linux/", Spec{Kind: SpecPath, Path: "linux/"}},
		{"/usr/src/linux-source-6.12.tar.xz", Spec{Kind: SpecPath, Path: "/usr/src/linux-source-6.12.tar.xz"}},
		{"~/src/linux", Spec{Kind: SpecPath, Path: filepath.Join(home, "src/linux")}},
		{"~", Spec{Kind: SpecPath, Path: home}},
		{"../a..b", Spec{Kind: SpecPath, Path: "../a..b"}},
		{"  ./padded  ", Spec{Kind: SpecPath, Path: "./padded"}},

		{"6.12", Spec{Kind: SpecVersion, Version: "6.12"}},
		{"6.12.3", Spec{Kind: SpecVersion, Version: "6.12.3"}},
		{"6.13-rc2", Spec{Kind: SpecVersion, Version: "6.13-rc2"}},
		{"6.12.3-rc1", Spec{Kind: SpecVersion, Version: "6.12.3-rc1"}},
		{"4.19.325", Spec{Kind: SpecVersion, Version: "4.19.325"}},

		{"git+https://git.kernel.org/pub/scm/linux/kernel/git/tj/sched_ext.git#for-next",
			Spec{Kind: SpecGit, GitURL: "https://git.kernel.org/pub/scm/linux/kernel/git/tj/sched_ext.git", GitRef: "for-next"}},
		{"git+https://host/repo#weird#v6.12", Spec{Kind: SpecGit, GitURL: "https://host/repo#weird", GitRef: "v6.12"}},
		{"git+git@github.com:org/linux.git#abc1234", Spec{Kind: SpecGit, GitURL: "git@github.com:org/linux.git", GitRef: "abc1234"}},
		{"git+file:///srv/linux#refs/heads/main", Spec{Kind: SpecGit, GitURL: "file:///srv/linux", GitRef: "refs/heads/main"}},

		{"6.10..6.12", Spec{Kind: SpecRange, From: "6.10", To: "6.12"}},
		{"6.12.1..6.12.5", Spec{Kind: SpecRange, From: "6.12.1", To: "6.12.5"}},
		{"6.13-rc1..6.13", Spec{Kind: SpecRange, From: "6.13-rc1", To: "6.13"}},
		{"6.12..6.12", Spec{Kind: SpecRange, From: "6.12", To: "6.12"}},

		{"6.12.3-tarball-x86_64-kc1a2b3c4d", Spec{Kind: SpecCacheKey, Key: "6.12.3-tarball-x86_64-kc1a2b3c4d"}},
		{"local-abc1234-x86_64-kc1a2b3c4d", Spec{Kind: SpecCacheKey, Key: "local-abc1234-x86_64-kc1a2b3c4d"}},
		{"v6.12", Spec{Kind: SpecCacheKey, Key: "v6.12"}},
		{"6.12-custom", Spec{Kind: SpecCacheKey, Key: "6.12-custom"}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSpec(c.in)
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", c.in, err)
			}
			c.want.Raw = c.in
			if got != c.want {
				t.Fatalf("ParseSpec(%q) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	cases := []struct {
		in      string
		mention string // a word the message must contain
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"git+", "#REF"},
		{"git+https://host/repo", "#REF"},
		{"git+#main", "empty URL"},
		{"git+https://host/repo#", "empty ref"},
		{"git+https://host/repo#  ", "empty ref"},
		{"6.12..6.10", "older version first"},
		{"6.10..", "malformed range"},
		{"6.10..next", "malformed range"},
		{"a..b", "malformed range"},
		{"6.12.1.4", "malformed version"},
		{"6.", "malformed version"},
		{"6.12-rc", "malformed version"},
		{"my key", "spaces"},
		{`a\b`, "backslashes"},
		{"bad\x00key", "control character"},
		{"~no-such-user-ktbuild/linux", "~no-such-user-ktbuild"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSpec(c.in)
			if err == nil {
				t.Fatalf("ParseSpec(%q) = %+v, want an error", c.in, got)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("ParseSpec(%q) error %q does not mention %q", c.in, err, c.mention)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"6.12", "6.12", 0},
		{"6.12", "6.12.0", 0},
		{"6.9", "6.10", -1},
		{"6.12.10", "6.12.9", 1},
		{"6.13-rc7", "6.13", -1},
		{"6.13-rc2", "6.13-rc10", -1},
		{"5.19", "6.0", -1},
		{"junk", "6.1", -1},
		{"6.1", "junk", 1},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestSpecKindString(t *testing.T) {
	want := map[SpecKind]string{SpecPath: "path", SpecVersion: "version", SpecGit: "git", SpecRange: "range", SpecCacheKey: "cache key"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), s)
		}
	}
}

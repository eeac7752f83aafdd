package kbuild

import (
	"strings"
	"testing"
)

func TestParseFragmentLines(t *testing.T) {
	cases := []struct {
		line   string
		symbol string // "" for a comment
		value  string
	}{
		{"CONFIG_BPF=y", "CONFIG_BPF", "y"},
		{"CONFIG_HZ=1000", "CONFIG_HZ", "1000"},
		{"CONFIG_PHYSICAL_START=0x1000000", "CONFIG_PHYSICAL_START", "0x1000000"},
		{`CONFIG_CMDLINE="console=ttyS0 quiet"`, "CONFIG_CMDLINE", `"console=ttyS0 quiet"`},
		{`CONFIG_LOCALVERSION=""`, "CONFIG_LOCALVERSION", `""`},
		{"CONFIG_USB=m", "CONFIG_USB", "m"},
		{"  CONFIG_SMP=y  ", "CONFIG_SMP", "y"},
		{"# CONFIG_DRM is not set", "CONFIG_DRM", "n"},
		{"# a comment", "", ""},
		{"#CONFIG_DRM is not set", "", ""},
		{"# CONFIG_DRM=y", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		lines, err := ParseFragment("frag", []byte(c.line))
		if err != nil {
			t.Errorf("%q: unexpected error %v", c.line, err)
			continue
		}
		if c.symbol == "" {
			if len(lines) != 0 {
				t.Errorf("%q: parsed %+v, want a comment", c.line, lines)
			}
			continue
		}
		if len(lines) != 1 || lines[0].Symbol != c.symbol || lines[0].Value != c.value {
			t.Errorf("%q: parsed %+v, want %s=%s", c.line, lines, c.symbol, c.value)
		}
	}
}

func TestParseFragmentRejects(t *testing.T) {
	cases := []struct {
		line, want string
	}{
		{"BPF=y", `"BPF" is not an option name`},
		{"config_bpf=y", `"config_bpf" is not an option name`},
		{"CONFIG_=y", `"CONFIG_" is not an option name`},
		{"CONFIG_BPF y", `has no "="`},
		{"CONFIG_BPF", `has no "="`},
		{"CONFIG_BPF=", "empty value"},
		{"CONFIG_BPF=y # turn on BPF", "kconfig has no trailing comments"},
		{"CONFIG_BPF =y", "is not an option name"},
		{`CONFIG_CMDLINE="console=ttyS0`, "unterminated string"},
		{"CONFIG_BPF-JIT=y", "is not an option name"},
	}
	for _, c := range cases {
		_, err := ParseFragment("extra.kconfig", []byte("CONFIG_OK=y\n\n"+c.line+"\n"))
		if err == nil {
			t.Errorf("%q: accepted, want an error", c.line)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) {
			t.Errorf("%q: error %q lacks %q", c.line, msg, c.want)
		}
		if !strings.HasPrefix(msg, "extra.kconfig:line 3: ") {
			t.Errorf("%q: error %q does not start with the file and line", c.line, msg)
		}
		if !strings.HasSuffix(msg, "— expected CONFIG_NAME=value or # CONFIG_NAME is not set") {
			t.Errorf("%q: error %q does not say what is expected", c.line, msg)
		}
	}
}

func TestParseFragmentListsEveryBadLine(t *testing.T) {
	_, err := ParseFragment("extra.kconfig", []byte("FOO=y\nCONFIG_OK=y\nBAR=n\n"))
	if err == nil {
		t.Fatal("two bad lines accepted")
	}
	for _, want := range []string{"extra.kconfig:line 1:", "extra.kconfig:line 3:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestParseFragmentNumbersLines(t *testing.T) {
	lines, err := ParseFragment("f", []byte("# header\n\nCONFIG_A=y\n# CONFIG_B is not set\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Number != 3 || lines[1].Number != 4 {
		t.Errorf("lines = %+v, want numbers 3 and 4", lines)
	}
	if lines[1].Line != "# CONFIG_B is not set" {
		t.Errorf("Line = %q, want the setting as written", lines[1].Line)
	}
}

func TestMergeFragments(t *testing.T) {
	got := string(MergeFragments([]byte("CONFIG_A=y"), []byte("# CONFIG_A is not set\n")))
	if want := "CONFIG_A=y\n# CONFIG_A is not set\n"; got != want {
		t.Errorf("MergeFragments = %q, want %q", got, want)
	}
}

func TestEffectiveLastWins(t *testing.T) {
	lines, err := ParseFragment("f", []byte("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_A is not set\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := effective(lines)
	if len(got) != 2 || got[0].Symbol != "CONFIG_A" || got[0].Value != "n" || got[1].Symbol != "CONFIG_B" {
		t.Errorf("effective = %+v, want CONFIG_A=n then CONFIG_B=y", got)
	}
}

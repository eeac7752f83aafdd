package smoke

import (
	"strings"
	"testing"
	"time"
)

func TestReportCheck(t *testing.T) {
	tests := []struct {
		name    string
		console string
		want    Report
		wantErr []string // substrings; nil means no error
	}{
		{
			name:    "sched_ext disabled",
			console: "[    2.1] Run /init as init process\r\n\r\nKTBUILD-SMOKE {\"v\":1,\"release\":\"6.12.48\",\"cpus\":2,\"sched_ext\":true,\"sched_ext_state\":\"disabled\",\"btf\":true}\r\n[    2.3] reboot: Power down\r\n",
			want:    Report{Reported: true, Release: "6.12.48", CPUs: 2, SchedExtPresent: true, SchedExtState: "disabled", BTFPresent: true},
		},
		{
			name:    "no sched_ext",
			console: "KTBUILD-SMOKE {\"v\":1,\"release\":\"6.1.0-57-amd64\",\"cpus\":2,\"sched_ext\":false,\"sched_ext_state\":\"\",\"btf\":true}\n",
			want:    Report{Reported: true, Release: "6.1.0-57-amd64", CPUs: 2, BTFPresent: true},
			wantErr: []string{"6.1.0-57-amd64", "CONFIG_SCHED_CLASS_EXT=y", "/sys/kernel/sched_ext"},
		},
		{
			name:    "no BTF",
			console: "KTBUILD-SMOKE {\"v\":1,\"release\":\"6.12.0\",\"cpus\":4,\"sched_ext\":true,\"sched_ext_state\":\"disabled\",\"btf\":false}\n",
			want:    Report{Reported: true, Release: "6.12.0", CPUs: 4, SchedExtPresent: true, SchedExtState: "disabled"},
			wantErr: []string{"CONFIG_DEBUG_INFO_BTF=y", "pahole"},
		},
		{
			name:    "neither",
			console: "KTBUILD-SMOKE {\"v\":1,\"release\":\"5.15.0\",\"cpus\":1,\"sched_ext\":false,\"sched_ext_state\":\"\",\"btf\":false}\n",
			want:    Report{Reported: true, Release: "5.15.0", CPUs: 1},
			wantErr: []string{"CONFIG_SCHED_CLASS_EXT=y", "CONFIG_DEBUG_INFO_BTF=y"},
		},
		{
			name:    "mount failed",
			console: "KTBUILD-SMOKE {\"v\":1,\"release\":\"6.12.0\",\"cpus\":1,\"sched_ext\":false,\"sched_ext_state\":\"\",\"btf\":false,\"errors\":[\"mount sysfs on /sys: no such device\"]}\n",
			want:    Report{Reported: true, Release: "6.12.0", CPUs: 1, GuestErrors: []string{"mount sysfs on /sys: no such device"}},
			wantErr: []string{"CONFIG_SCHED_CLASS_EXT=y", "mount sysfs on /sys"},
		},
		{
			name:    "kernel text before marker",
			console: "[    1.9] random: crng initKTBUILD-SMOKE {\"v\":1,\"release\":\"6.12.0\",\"cpus\":2,\"sched_ext\":true,\"sched_ext_state\":\"enabled\",\"btf\":true}\n",
			want:    Report{Reported: true, Release: "6.12.0", CPUs: 2, SchedExtPresent: true, SchedExtState: "enabled", BTFPresent: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, found, err := parseReport(tt.console)
			if err != nil || !found {
				t.Fatalf("parseReport: found=%v err=%v", found, err)
			}
			var r Report
			r.apply(g)
			if r.Reported != tt.want.Reported || r.Release != tt.want.Release || r.CPUs != tt.want.CPUs ||
				r.SchedExtPresent != tt.want.SchedExtPresent || r.SchedExtState != tt.want.SchedExtState ||
				r.BTFPresent != tt.want.BTFPresent || strings.Join(r.GuestErrors, "|") != strings.Join(tt.want.GuestErrors, "|") {
				t.Errorf("report = %+v, want %+v", r, tt.want)
			}

			err = r.Check()
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Check: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error containing %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Check error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Check error %q spans several lines", err)
			}
		})
	}
}

func TestParseReportBad(t *testing.T) {
	tests := []struct {
		name    string
		console string
		found   bool
		wantErr string
	}{
		{"no marker", "[ 0.0] Linux version 6.12.0\n", false, ""},
		{"cut line", "KTBUILD-SMOKE {\"v\":1,\"release\":\"6.1", true, "unreadable guest report"},
		{"other version", "KTBUILD-SMOKE {\"v\":2}\n", true, "version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, found, err := parseReport(tt.console)
			if found != tt.found {
				t.Errorf("found = %v, want %v", found, tt.found)
			}
			if tt.wantErr == "" && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReportCheckWithoutReport(t *testing.T) {
	if err := (Report{}).Check(); err == nil {
		t.Error("Check of an empty report passed")
	}
}

func TestReportString(t *testing.T) {
	r := Report{
		Reported: true, Release: "6.12.48", CPUs: 2, SchedExtPresent: true,
		SchedExtState: "disabled", BTFPresent: true, Accel: "tcg",
		Duration: 3141 * time.Millisecond, Fallback: "kvm: guest printed nothing in 5s — used tcg",
	}
	s := r.String()
	for _, want := range []string{"6.12.48", "2 CPUs", "sched_ext: built in, no scheduler loaded (state: disabled)", "BTF:       present", "3.14s under tcg", "used tcg"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}

	r.SchedExtPresent, r.SchedExtState = false, ""
	if s := r.String(); !strings.Contains(s, "sched_ext: missing") {
		t.Errorf("String() = %q, want sched_ext: missing", s)
	}
}

func TestPanicLines(t *testing.T) {
	log := strings.Join([]string{
		"[    1.20] Freeing unused kernel image memory: 2048K",
		"[    1.21] check access for rdinit=/missing failed: -2, ignoring",
		"[    1.22] VFS: Cannot open root device \"\" or unknown-block(0,0): error -6",
		"[    1.23] Please append a correct \"root=\" boot option",
		"[    1.24] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
		"[    1.25] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0 #1",
		"[    1.26] Call Trace:",
		"[    1.27]  <TASK>",
		"[    1.30] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---",
		"[    1.31] this line comes after the end marker",
	}, "\r\n")

	got := panicLines(log)
	joined := strings.Join(got, "\n")
	for _, want := range []string{"Please append a correct", "Kernel panic - not syncing: VFS", "Call Trace:", "end Kernel panic"} {
		if !strings.Contains(joined, want) {
			t.Errorf("panic lines miss %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "after the end marker") {
		t.Errorf("panic lines run past the end marker:\n%s", joined)
	}
	if strings.Contains(joined, "\r") {
		t.Error("panic lines keep carriage returns")
	}

	if got := panicLines("[ 0.1] all is well\n"); got != nil {
		t.Errorf("panicLines of a clean log = %q, want nil", got)
	}
}

func TestLastLines(t *testing.T) {
	got := lastLines("a\n\nb\r\nc\n\n", 2)
	if strings.Join(got, ",") != "b,c" {
		t.Errorf("lastLines = %q, want [b c]", got)
	}
	if got := lastLines("", 3); len(got) != 0 {
		t.Errorf("lastLines of empty text = %q", got)
	}
}

func TestConsoleSignals(t *testing.T) {
	c := newConsole()
	select {
	case <-c.output:
		t.Fatal("output signalled before any byte")
	default:
	}

	// A marker only counts once its line is complete.
	c.Write([]byte("boot\nKTBUILD-SMOKE {\"v\":1"))
	select {
	case <-c.output:
	default:
		t.Error("output not signalled after the first bytes")
	}
	select {
	case <-c.reported:
		t.Error("report signalled before the line ended")
	default:
	}
	c.Write([]byte("}\nKernel panic - not syncing: x\n"))
	select {
	case <-c.reported:
	default:
		t.Error("report not signalled after the line ended")
	}
	select {
	case <-c.panicked:
	default:
		t.Error("panic not signalled")
	}
	// Further writes must not close the channels a second time.
	c.Write([]byte("KTBUILD-SMOKE again\nKernel panic - not syncing: y\n"))
}

package smoke

import (
	"os"
	"strings"
	"testing"
)

// testdata/int3-oops.log is the end of a real console: a 6.12 kernel under
// multi-threaded TCG hit a stale int3, oopsed twice and panicked. The ten
// lines before the panic are the second oops's register dump.
func TestPanicLinesShowsOops(t *testing.T) {
	raw, err := os.ReadFile("testdata/int3-oops.log")
	if err != nil {
		t.Fatal(err)
	}
	got := panicLines(string(raw))
	joined := strings.Join(got, "\n")

	for _, want := range []string{
		"Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
		"RIP: 0010:sched_clock_cpu+0x9/0x190",
		"[...]",
		"Kernel panic - not syncing: Fatal exception in interrupt",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("panic lines miss %q:\n%s", want, joined)
		}
	}
	if oops, rip := strings.Index(joined, "Oops: int3"), strings.Index(joined, "RIP:"); oops > rip {
		t.Errorf("RIP line comes before the oops line:\n%s", joined)
	}
	// The cause block stops at RIP, so the call trace between the two
	// oopses stays in the log file only.
	if strings.Contains(joined, "smpboot_thread_fn") {
		t.Errorf("panic lines include the first oops's call trace:\n%s", joined)
	}
}

func TestPanicLinesCauseCases(t *testing.T) {
	filler := func(n int) []string {
		var l []string
		for i := range n {
			l = append(l, "[ 2.0] filler "+string(rune('a'+i)))
		}
		return l
	}
	tests := []struct {
		name    string
		lines   []string
		want    []string
		without []string
	}{
		{
			name: "bug line far before",
			lines: append(append([]string{
				"[ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
				"[ 1.1] #PF: supervisor read access in kernel mode",
				"[ 1.2] Oops: 0000 [#1] PREEMPT SMP NOPTI",
				"[ 1.3] RIP: 0010:some_func+0x1/0x10",
				"[ 1.4] Code: 90 90",
			}, filler(12)...), "[ 3.0] Kernel panic - not syncing: Fatal exception"),
			want:    []string{"BUG: kernel NULL pointer dereference", "#PF:", "RIP: 0010:some_func", "[...]", "filler l"},
			without: []string{"Code: 90 90", "filler a"},
		},
		{
			name: "arm64 pc line",
			lines: append(append([]string{
				"[ 1.0] Unable to handle kernel paging request at virtual address 0000000000000008",
				"[ 1.1] Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP",
				"[ 1.2] pc : some_func+0x8/0x20",
				"[ 1.3] lr : caller+0x4/0x10",
			}, filler(11)...), "[ 3.0] Kernel panic - not syncing: Oops: Fatal exception"),
			want:    []string{"Unable to handle kernel paging request", "pc : some_func+0x8/0x20"},
			without: []string{"lr : caller"},
		},
		{
			name: "oops inside the window",
			lines: append([]string{
				"[ 1.0] Oops: general protection fault, probably for non-canonical address",
				"[ 1.1] RIP: 0010:near+0x2/0x4",
			}, "[ 3.0] Kernel panic - not syncing: Fatal exception"),
			want:    []string{"Oops: general protection fault", "RIP: 0010:near"},
			without: []string{"[...]"},
		},
		{
			name:    "no oops",
			lines:   append(filler(12), "[ 3.0] Kernel panic - not syncing: VFS: Unable to mount root fs"),
			want:    []string{"filler c", "Unable to mount root fs"},
			without: []string{"[...]", "filler b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := panicLines(strings.Join(tt.lines, "\n"))
			joined := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("panic lines miss %q:\n%s", w, joined)
				}
			}
			for _, w := range tt.without {
				if strings.Contains(joined, w) {
					t.Errorf("panic lines hold %q:\n%s", w, joined)
				}
			}
			if strings.Count(joined, "[...]") > 1 {
				t.Errorf("more than one gap marker:\n%s", joined)
			}
		})
	}
}

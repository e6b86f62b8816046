// Porcupine's side of faultline's side-by-side benchmark
// (checker/benches/porcupine.sh copies this file into a Porcupine checkout
// as faultline_side_test.go and runs it with GOMAXPROCS=1; it is not part
// of Porcupine). It uses Porcupine's own etcd model and log parser from
// porcupine_test.go, checks each test_data/jepsen history in-process with
// CheckEvents, and writes one row per history to $FAULTLINE_SIDE_OUT:
//
//	run<TAB>etcd_NNN<TAB>valid|invalid<TAB>median ns<TAB>samples
//
// The verdict must be the one Porcupine's own TestEtcdJepsenNNN expects
// (read from porcupine_test.go), or the test fails.
package porcupine

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Each history is checked until this much time is spent (at least
// minSamples times, at most maxSamples), and the median time is kept.
const (
	sampleBudget = 30 * time.Millisecond
	minSamples   = 5
	maxSamples   = 20000
)

// expectedVerdicts reads checkJepsen(t, N, true|false) from Porcupine's test.
func expectedVerdicts(t *testing.T) map[int]bool {
	source, err := os.ReadFile("porcupine_test.go")
	if err != nil {
		t.Fatalf("reading porcupine_test.go: %v", err)
	}
	call := regexp.MustCompile(`checkJepsen\(t, (\d+), (true|false)\)`)
	expected := map[int]bool{}
	for _, m := range call.FindAllStringSubmatch(string(source), -1) {
		n, _ := strconv.Atoi(m[1])
		expected[n] = m[2] == "true"
	}
	return expected
}

func medianCheck(events []Event, want bool, t *testing.T, name string) (time.Duration, int) {
	if CheckEvents(etcdModel, events) != want { // also the warm-up
		t.Fatalf("%s: CheckEvents disagrees with Porcupine's own test", name)
	}
	var samples []time.Duration
	var spent time.Duration
	for len(samples) < maxSamples && (len(samples) < minSamples || spent < sampleBudget) {
		started := time.Now()
		CheckEvents(etcdModel, events)
		d := time.Since(started)
		samples = append(samples, d)
		spent += d
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return samples[len(samples)/2], len(samples)
}

func TestFaultlineSideBySide(t *testing.T) {
	out := os.Getenv("FAULTLINE_SIDE_OUT")
	if out == "" {
		t.Skip("FAULTLINE_SIDE_OUT is not set (run by checker/benches/porcupine.sh)")
	}
	if runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("GOMAXPROCS is %d, the benchmark wants 1", runtime.GOMAXPROCS(0))
	}
	run := os.Getenv("FAULTLINE_SIDE_RUN")
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("opening %s: %v", out, err)
	}
	defer f.Close()
	expected := expectedVerdicts(t)
	numbers := make([]int, 0, len(expected))
	for n := range expected {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	for _, n := range numbers {
		name := fmt.Sprintf("etcd_%03d", n)
		events := parseJepsenLog(fmt.Sprintf("test_data/jepsen/%s.log", name))
		median, samples := medianCheck(events, expected[n], t, name)
		verdict := "invalid"
		if expected[n] {
			verdict = "valid"
		}
		fmt.Fprintf(f, "%s\t%s\t%s\t%d\t%d\n", run, name, verdict, median.Nanoseconds(), samples)
	}
}

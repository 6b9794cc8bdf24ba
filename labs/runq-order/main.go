// The runq-order lab: under GOMAXPROCS=1, main starts N goroutines that each record
// their index, then waits for them. In which order do they run? golab's scheduler
// model predicts it from the scenario and from the P's state read with dlv when
// main.main starts; this program reports what really happened.
//
// Usage: main N wg|chan none|all|every:K [main:K1,K2,...]
// (the last: main calls runtime.Gosched() after its K1-th, K2-th ... go statement)
package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

var (
	order []int32
	next  int32
	// How many goroutines main has started: golab reads it when sysmon preempts main,
	// so that the model knows where the preemption fell.
	spawned int
)

func record(i int) {
	order[atomic.AddInt32(&next, 1)-1] = int32(i)
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	mode := os.Args[2]
	yield := make([]bool, n)
	switch g := os.Args[3]; {
	case g == "all":
		for i := range yield {
			yield[i] = true
		}
	case strings.HasPrefix(g, "every:"):
		k, _ := strconv.Atoi(strings.TrimPrefix(g, "every:"))
		for i := range yield {
			yield[i] = i%k == 0
		}
	}
	mainYield := map[int]bool{}
	if len(os.Args) > 4 && strings.HasPrefix(os.Args[4], "main:") {
		for _, k := range strings.Split(strings.TrimPrefix(os.Args[4], "main:"), ",") {
			v, _ := strconv.Atoi(k)
			mainYield[v] = true
		}
	}
	order = make([]int32, n)
	ch := make(chan struct{}, n)
	var wg sync.WaitGroup
	wg.Add(n)

	for i := 0; i < n; i++ {
		go func(i int) {
			if yield[i] {
				runtime.Gosched()
			}
			record(i)
			if mode == "chan" {
				ch <- struct{}{}
			} else {
				wg.Done()
			}
		}(i)
		spawned++
		if mainYield[spawned] {
			runtime.Gosched()
		}
	}
	if mode == "chan" {
		for k := 0; k < n; k++ {
			<-ch
		}
	} else {
		wg.Wait()
	}

	var b strings.Builder
	b.WriteString("order")
	for _, i := range order {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(int(i)))
	}
	b.WriteString("\n")
	os.Stdout.WriteString(b.String())
}

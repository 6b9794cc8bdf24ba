// The scheduler-callers lab: a small program that makes the scheduler do its usual
// work, so that the functions the lab notes ask about are really called:
// goroutines created (newproc), parked and readied on channels (park_m, ready),
// yielding (Gosched -> goschedImpl -> globrunqput), timers and sleeping, and two Ps
// so that an idle P looks for work and steals it (findRunnable, stealWork).
package main

import (
	"runtime"
	"sync"
	"time"
)

func worker(ch chan int, out chan int, wg *sync.WaitGroup) {
	defer wg.Done()
	for v := range ch {
		if v%4 == 0 {
			runtime.Gosched()
		}
		out <- v * v
	}
}

func main() {
	runtime.GOMAXPROCS(2)
	var wg sync.WaitGroup
	ch := make(chan int)
	out := make(chan int, 64)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go worker(ch, out, &wg)
	}
	go func() {
		for i := 0; i < 64; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum := 0
	for i := 0; i < 64; i++ {
		sum += <-out
	}
	time.Sleep(2 * time.Millisecond)
	wg.Wait()
	println("sum", sum)
}

// The channel-park lab: a goroutine blocks receiving on an unbuffered channel
// (chanrecv -> gopark, waitReasonChanReceive); main's send finds it in the channel's
// receive queue, hands the value over and readies it (send -> goready -> ready ->
// runqput(next=true)): the readied goroutine waits in runnext of main's P.
package main

import (
	"os"
	"runtime"
)

var (
	ch   = make(chan int)
	done = make(chan bool)
	got  int
)

func receiver() {
	got = <-ch
	done <- true
}

func main() {
	go receiver()
	// Let the receiver run: it parks in <-ch (GOMAXPROCS=1). Under a debugger sysmon may
	// preempt it on the way (the time stopped at breakpoints counts as running): give it
	// a few turns.
	for i := 0; i < 3; i++ {
		runtime.Gosched()
	}
	ch <- 42 // the receiver is parked: the value goes straight to it
	<-done
	if got != 42 {
		os.Exit(1)
	}
}

package  main
func main() {
	go func() {
		println("in grt do sth")
    }()
	args()
}
func args() {
	println("do sth")
}
// 通过 go build  编译. 通过编译标识告诉 go 编译器不要优化不要内联.
// go build -gcflags "all=-l -N" main.go

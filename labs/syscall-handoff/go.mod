module syscallhandoff

go 1.15

module golab/tools/gocallers

go 1.15

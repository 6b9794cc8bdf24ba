module golab/tools/goshape

go 1.15

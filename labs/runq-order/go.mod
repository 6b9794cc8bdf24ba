module runqorder

go 1.15

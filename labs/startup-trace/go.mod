module startuptrace

go 1.15

module schedulercallers

go 1.15

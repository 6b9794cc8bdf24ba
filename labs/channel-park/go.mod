module channelpark

go 1.15

module periscope/e2e/gotls

go 1.19

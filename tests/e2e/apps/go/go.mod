module periscope/e2e/chainapp

go 1.19

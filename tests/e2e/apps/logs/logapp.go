// logapp.go — net/http, one log line per request from the handler's goroutine (see logapp.py).
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	mode := os.Getenv("MODE")
	http.HandleFunc("/r/", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		level := "INFO"
		if i%2 == 1 {
			level = "WARN"
		}
		if mode == "json" {
			b, _ := json.Marshal(map[string]interface{}{"level": strings.ToLower(level), "msg": fmt.Sprintf("req %d", i), "n": i})
			os.Stderr.Write(append(b, '\n'))
		} else {
			fmt.Fprintf(os.Stdout, "%s req %d handled\n", level, i)
		}
		w.Write([]byte("ok"))
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}

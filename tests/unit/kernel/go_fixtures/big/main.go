// big: a real Go ELF of about 100 MB for timing go_binary: many std
// packages linked in (used behind an argument check so the linker keeps
// them) plus a large embedded blob (written by build_go_fixtures.sh next to
// this file in the build directory).
package main

import (
	"crypto/tls"
	"database/sql"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/parser"
	"go/token"
	"go/types"
	htmltemplate "html/template"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	_ "net/http/pprof"
	"net/rpc"
	"net/smtp"
	"os"
	"os/exec"
	"regexp"
	"text/template"
)

//go:embed blob.bin
var blob []byte

func main() {
	fmt.Println(len(blob))
	if len(os.Args) < 3 {
		return
	}
	arg := os.Args[2]
	resp, err := http.Get(arg)
	fmt.Println(resp, err)
	c, err := tls.Dial("tcp", arg, &tls.Config{})
	fmt.Println(c, err)
	db, err := sql.Open(arg, arg)
	fmt.Println(db, err)
	var v interface{}
	fmt.Println(json.Unmarshal([]byte(arg), &v), xml.Unmarshal([]byte(arg), &v))
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, arg, nil, 0)
	fmt.Println(f, err)
	pkg, err := (&types.Config{}).Check(arg, fset, nil, nil)
	fmt.Println(pkg, err)
	t1, err := htmltemplate.New(arg).Parse(arg)
	fmt.Println(t1, err)
	t2, err := template.New(arg).Parse(arg)
	fmt.Println(t2, err)
	img, kind, err := image.Decode(os.Stdin)
	fmt.Println(img, kind, err)
	rc, err := rpc.Dial("tcp", arg)
	fmt.Println(rc, err)
	fmt.Println(smtp.SendMail(arg, nil, arg, []string{arg}, nil))
	fmt.Println(exec.Command(arg).Run(), regexp.MustCompile(arg).String())
}

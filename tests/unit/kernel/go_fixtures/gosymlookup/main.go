// gosymlookup: an independent reference for test_go_binary. It reads an ELF
// file's pclntab with Go's own debug/gosym (sections required) and prints
// "START END" (hex) of each function named on the command line, or "none".
package main

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gosymlookup BINARY FUNC...")
		os.Exit(2)
	}
	f, err := elf.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sec := f.Section(".gopclntab")
	if sec == nil {
		sec = f.Section(".data.rel.ro.gopclntab")
	}
	text := f.Section(".text")
	if sec == nil || text == nil {
		fmt.Fprintln(os.Stderr, "no .gopclntab or .text section")
		os.Exit(1)
	}
	data, err := sec.Data()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, name := range os.Args[2:] {
		fn := tab.LookupFunc(name)
		if fn == nil {
			fmt.Println("none")
			continue
		}
		fmt.Printf("%x %x\n", fn.Entry, fn.End)
	}
}

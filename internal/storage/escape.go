package storage

import (
	"strconv"
	"strings"
)

// s3Escape spells a valid key as gocloud's s3blob stores it, so that the
// raw S3 calls of a locked store name the objects its writer made. s3blob
// escapes control characters and "../" (ValidateKey refuses both) and the
// start of anything that reads as one of its escapes, "__0x<hex>__", whose
// first "_" becomes "__0x5f__". (A copy of gocloud.dev/internal/escape's
// rules for valid keys: that package is internal.)
func s3Escape(key string) string {
	if !strings.Contains(key, "__0x") {
		return key
	}
	r := []rune(key)
	var b strings.Builder
	for i := range r {
		if ok, _, _ := hexEscape(r, i); ok {
			b.WriteString("__0x5f__")
		} else {
			b.WriteRune(r[i])
		}
	}
	return b.String()
}

// s3Unescape reverses s3Escape.
func s3Unescape(key string) string {
	if !strings.Contains(key, "__0x") {
		return key
	}
	r := []rune(key)
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		ok, c, end := hexEscape(r, i)
		if ok {
			i = end
		} else {
			c = r[i]
		}
		b.WriteRune(c)
	}
	return b.String()
}

// hexEscape reports whether r[i:] starts with "__0x<hex>__", the rune it
// stands for and the index of its last rune.
func hexEscape(r []rune, i int) (bool, rune, int) {
	const head = "__0x"
	for k := 0; k < len(head); k++ {
		if i+k >= len(r) || r[i+k] != rune(head[k]) {
			return false, 0, 0
		}
	}
	j := i + len(head)
	start := j
	for j < len(r) && r[j] != '_' {
		j++
	}
	if j+1 >= len(r) || r[j+1] != '_' {
		return false, 0, 0
	}
	v, err := strconv.ParseInt(string(r[start:j]), 16, 32)
	if err != nil {
		return false, 0, 0
	}
	return true, rune(v), j + 1
}

package storage

import "strconv"

// s3Escape spells a valid key as gocloud's s3blob stores it, so that the
// raw S3 calls of a locked store name the objects its writer made. s3blob
// escapes control characters and "../" (ValidateKey refuses both) and the
// start of anything that reads as one of its escapes, "__0x<hex>__", whose
// first "_" becomes "__0x5f__". (A copy of gocloud.dev/internal/escape's
// rules for valid keys: that package is internal.)
func s3Escape(key string) string {
	r := []rune(key)
	var out []rune
	for i := range r {
		if ok, _, _ := hexEscape(r, i); ok {
			if out == nil {
				out = append([]rune(nil), r[:i]...)
			}
			out = append(out, []rune("__0x5f__")...)
			continue
		}
		if out != nil {
			out = append(out, r[i])
		}
	}
	if out == nil {
		return key
	}
	return string(out)
}

// s3Unescape reverses s3Escape.
func s3Unescape(key string) string {
	r := []rune(key)
	var out []rune
	for i := 0; i < len(r); i++ {
		if ok, c, end := hexEscape(r, i); ok {
			if out == nil {
				out = append([]rune(nil), r[:i]...)
			}
			out = append(out, c)
			i = end
			continue
		}
		if out != nil {
			out = append(out, r[i])
		}
	}
	if out == nil {
		return key
	}
	return string(out)
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

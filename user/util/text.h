/* text.h — small string helpers shared by the parsers and span builders. */
#ifndef PERISCOPE_TEXT_H
#define PERISCOPE_TEXT_H

#include <stddef.h>
#include <string.h>

/* Copies n bytes of src, cut to fit, and a NUL into dst (cap > 0); returns
 * the length copied. */
static inline size_t text_copy(char *dst, size_t cap, const char *src, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

#endif

/* go_offsets.c — the per-version table of Go struct offsets and the
 * register-ABI locations used by the crypto/tls probes (go_offsets.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kernel/go_offsets.h"

/* One row per range of identical layouts (x86-64). */
static const struct go_tls_offsets tls_offsets[] = {
    {
        .min_minor = 17,
        .max_minor = 23,
        .conn_iface = 0,
        .conn_is_client = 16,
        .iface_data = 8,
        .tcpconn_fd = 0,
        .netfd_pfd = 0,
        .pfd_sysfd = 16,
        .sysfd_size = 8,
    },
};

static const struct go_tls_call_regs tls_call_regs = {
    .receiver = GO_X86_RAX,
    .buf_ptr = GO_X86_RBX,
    .buf_len = GO_X86_RCX,
    .ret_n = GO_X86_RAX,
    .ret_err_itab = GO_X86_RBX,
    .ret_err_data = GO_X86_RCX,
    .g = GO_X86_R14,
};

/* Reads a decimal number of at most 6 digits at *s, advancing it. */
static int number(const char **s, unsigned *out)
{
	unsigned v = 0;
	int digits = 0;

	while (**s >= '0' && **s <= '9') {
		if (++digits > 6)
			return -EINVAL;
		v = v * 10 + (unsigned)(**s - '0');
		(*s)++;
	}
	if (!digits)
		return -EINVAL;
	*out = v;
	return 0;
}

int go_version_parse(const char *s, struct go_version *out)
{
	struct go_version v = {0};
	const char *p;
	int err = -EINVAL;

	if (!s || !out)
		goto cleanup;
	p = strstr(s, "go");
	if (!p || (p != s && p[-1] != ' '))
		goto cleanup;
	p += 2;
	if (number(&p, &v.major) != 0 || *p++ != '.' || number(&p, &v.minor) != 0)
		goto cleanup;
	if (*p == '.' && (p++, number(&p, &v.patch) != 0))
		goto cleanup;
	*out = v;
	err = 0;
cleanup:
	return err;
}

const struct go_tls_offsets *go_offsets_tls(const struct go_version *v)
{
	if (!v || v->major != 1 || v->minor < GO_REGABI_AMD64_MIN_MINOR)
		return NULL;
	for (size_t i = 0; i < sizeof(tls_offsets) / sizeof(tls_offsets[0]); i++) {
		if (v->minor >= tls_offsets[i].min_minor && v->minor <= tls_offsets[i].max_minor)
			return &tls_offsets[i];
	}
	return NULL;
}

const struct go_tls_call_regs *go_offsets_tls_call_regs(void)
{
	return &tls_call_regs;
}

/* trace_id.c — random trace/span ids and the W3C traceparent header. */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "conn/trace_id.h"

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next(struct id_gen *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void id_gen_seed_fixed(struct id_gen *g, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix(&seed);
}

void id_gen_seed(struct id_gen *g)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
	}
	id_gen_seed_fixed(g, seed);
}

static void fill_nonzero(struct id_gen *g, uint8_t *out, size_t n)
{
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = next(g);
			memcpy(out + i, &v, n - i < 8 ? n - i : 8);
		}
	} while (out[0] == 0 && !memcmp(out, out + 1, n - 1));
}

void id_gen_trace_id(struct id_gen *g, uint8_t out[16])
{
	fill_nonzero(g, out, 16);
}

void id_gen_span_id(struct id_gen *g, uint8_t out[8])
{
	fill_nonzero(g, out, 8);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* W3C: lowercase only */
}

static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	bool nonzero = false;

	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		nonzero |= out[i] != 0;
	}
	return nonzero;
}

bool traceparent_parse(const char *s, size_t len, struct traceparent *out)
{
	uint8_t version;

	/* 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 */
	if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return false;
	if (hexval(s[0]) < 0 || hexval(s[1]) < 0)
		return false;
	version = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
	if (version == 0xff || (version == 0 && len != 55))
		return false;
	if (len > 55 && s[55] != '-')
		return false;
	if (!hex_decode(s + 3, out->trace_id, 16) || !hex_decode(s + 36, out->parent_id, 8))
		return false;
	if (hexval(s[53]) < 0 || hexval(s[54]) < 0)
		return false;
	out->flags = (uint8_t)(hexval(s[53]) << 4 | hexval(s[54]));
	return true;
}

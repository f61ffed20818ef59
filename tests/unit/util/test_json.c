/* test_json.c — the JSON writer (structure, escaping, invalid UTF-8, fixed
 * and growing buffers, numbers) and the JSON-lines logger built on it. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/log.h"
#include "unit.h"

/* The JSON text of one string value written by json_str. */
static const char *escaped(const char *s, size_t n, char *out, size_t size)
{
	struct json_writer w;

	json_init(&w, out, size, size);
	json_strn(&w, s, n);
	return json_text(&w);
}

static void test_structure(void)
{
	char buf[256];
	struct json_writer w;

	json_init(&w, buf, sizeof(buf), sizeof(buf));
	json_object_begin(&w);
	json_kv_str(&w, "a", "x");
	json_kv_int(&w, "b", -5);
	json_key(&w, "c");
	json_array_begin(&w);
	json_int(&w, 1);
	json_bool(&w, true);
	json_null(&w);
	json_object_begin(&w);
	json_object_end(&w);
	json_array_begin(&w);
	json_array_end(&w);
	json_array_end(&w);
	json_key(&w, "d");
	json_object_begin(&w);
	json_kv_bool(&w, "e", false);
	json_object_end(&w);
	json_kv_uint(&w, "f", UINT64_MAX);
	json_kv_str(&w, "g", NULL);
	json_object_end(&w);
	CHECK(json_ok(&w));
	CHECK_EQ_STR(json_text(&w),
	             "{\"a\":\"x\",\"b\":-5,\"c\":[1,true,null,{},[]],\"d\":{\"e\":false},"
	             "\"f\":18446744073709551615,\"g\":null}");
	CHECK_EQ_INT(json_len(&w), strlen(json_text(&w)));
	json_reset(&w);
	json_int(&w, INT64_MIN);
	CHECK_EQ_STR(json_text(&w), "-9223372036854775808");
	json_release(&w);
}

static void test_escaping(void)
{
	char out[256];

	CHECK_EQ_STR(escaped("plain", 5, out, sizeof(out)), "\"plain\"");
	CHECK_EQ_STR(escaped("a\"b\\c", 5, out, sizeof(out)), "\"a\\\"b\\\\c\"");
	CHECK_EQ_STR(escaped("\n\r\t\b\f", 5, out, sizeof(out)), "\"\\n\\r\\t\\b\\f\"");
	CHECK_EQ_STR(escaped("\x01\x1f\x7f", 3, out, sizeof(out)), "\"\\u0001\\u001f\x7f\"");
	/* an embedded NUL is data too */
	CHECK_EQ_STR(escaped("a\0b", 3, out, sizeof(out)), "\"a\\u0000b\"");
	CHECK_EQ_STR(escaped("/</script>", 10, out, sizeof(out)), "\"/</script>\"");
	CHECK_EQ_STR(escaped("", 0, out, sizeof(out)), "\"\"");
}

#define FFFD "\xEF\xBF\xBD"

static void test_utf8(void)
{
	char out[256];

	/* valid: 2, 3 and 4 byte sequences pass through */
	CHECK_EQ_STR(escaped("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 12, out, sizeof(out)),
	             "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
	/* a lone continuation byte, an invalid lead byte */
	CHECK_EQ_STR(escaped("a\x80z", 3, out, sizeof(out)), "\"a" FFFD "z\"");
	CHECK_EQ_STR(escaped("\xFF", 1, out, sizeof(out)), "\"" FFFD "\"");
	/* overlong '/': both bytes are invalid */
	CHECK_EQ_STR(escaped("\xC0\xAF", 2, out, sizeof(out)), "\"" FFFD FFFD "\"");
	CHECK_EQ_STR(escaped("\xE0\x80\xAF", 3, out, sizeof(out)), "\"" FFFD FFFD FFFD "\"");
	/* a UTF-16 surrogate encoded in UTF-8 */
	CHECK_EQ_STR(escaped("\xED\xA0\x80", 3, out, sizeof(out)), "\"" FFFD FFFD FFFD "\"");
	/* above U+10FFFF */
	CHECK_EQ_STR(escaped("\xF4\x90\x80\x80", 4, out, sizeof(out)),
	             "\"" FFFD FFFD FFFD FFFD "\"");
	/* a sequence cut short counts once, then the next character */
	CHECK_EQ_STR(escaped("\xE2\x82x", 3, out, sizeof(out)), "\"" FFFD "x\"");
	CHECK_EQ_STR(escaped("\xF0\x9F\x98", 3, out, sizeof(out)), "\"" FFFD "\"");
	CHECK_EQ_STR(escaped("\xE2\x82\xAC", 2, out, sizeof(out)), "\"" FFFD "\"");
}

/* A strict check that s[0..n) is one JSON string: quotes, escapes, valid UTF-8. */
static int valid_json_string(const unsigned char *s, size_t n)
{
	size_t i = 1;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return 0;
	while (i < n - 1) {
		unsigned char c = s[i];

		if (c < 0x20 || c == '"')
			return 0;
		if (c == '\\') {
			if (i + 1 >= n - 1 || !strchr("\"\\/bfnrtu", s[i + 1]))
				return 0;
			i += s[i + 1] == 'u' ? 6 : 2;
			continue;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
		if (!len || c > 0xF4 || i + len > n - 1)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
		    (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
			return 0;
		i += len;
	}
	return i == n - 1;
}

static void test_random_bytes_give_valid_strings(void)
{
	unsigned char in[64];
	struct json_writer w;
	uint32_t seed = 12345;
	int bad = 0;

	json_init(&w, NULL, 0, 4096);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(round % 64);

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* bias towards the interesting bytes */
			in[i] = (unsigned char)(seed >> 16);
			if (round & 1)
				in[i] |= 0x80;
		}
		json_reset(&w);
		json_strn(&w, (const char *)in, n);
		bad += !json_ok(&w) ||
		       !valid_json_string((const unsigned char *)json_text(&w), json_len(&w));
	}
	CHECK_EQ_INT(bad, 0);
	json_release(&w);
}

static void test_fixed_buffer_overflow(void)
{
	char buf[16];
	struct json_writer w;

	memset(buf, 'Z', sizeof(buf));
	json_init(&w, buf, 8, 8); /* only the first 8 bytes are ours */
	json_str(&w, "abcd");
	CHECK(json_ok(&w));
	CHECK_EQ_STR(json_text(&w), "\"abcd\"");
	json_str(&w, "efgh"); /* does not fit */
	CHECK(!json_ok(&w));
	CHECK(strlen(buf) < 8);
	CHECK(buf[8] == 'Z'); /* nothing written past the buffer */
	json_int(&w, 1);      /* ignored once overflowed */
	CHECK(strlen(buf) < 8);
	json_release(&w);
	/* a zero-sized writer fails cleanly */
	json_init(&w, NULL, 0, 0);
	json_str(&w, "x");
	CHECK(!json_ok(&w));
	CHECK_EQ_STR(json_text(&w), "");
	json_release(&w);
}

static void test_growth(void)
{
	char stack[8];
	char big[5000];
	struct json_writer w;

	memset(big, 'q', sizeof(big));
	json_init(&w, stack, sizeof(stack), 1 << 20);
	json_array_begin(&w);
	json_strn(&w, big, sizeof(big));
	json_int(&w, 7);
	json_array_end(&w);
	CHECK(json_ok(&w));
	CHECK(w.heap);
	CHECK_EQ_INT(json_len(&w), 1 + 1 + 5000 + 1 + 1 + 1 + 1);
	CHECK(memcmp(json_text(&w), "[\"qqq", 5) == 0);
	CHECK_EQ_STR(json_text(&w) + json_len(&w) - 5, "q\",7]");
	json_release(&w);
	/* the limit holds while growing */
	json_init(&w, stack, sizeof(stack), 1000);
	json_strn(&w, big, sizeof(big));
	CHECK(!json_ok(&w));
	CHECK(json_len(&w) < 1000);
	json_release(&w);
}

static void test_numbers(void)
{
	char buf[128];
	struct json_writer w;

	json_init(&w, buf, sizeof(buf), sizeof(buf));
	json_array_begin(&w);
	json_double(&w, 1.23456, 3);
	json_double(&w, 2.0, 0);
	json_double(&w, NAN, 3);
	json_double(&w, -INFINITY, 3);
	json_number(&w, 0.1);
	json_number(&w, 1.0 / 3.0);
	json_number(&w, 1e300);
	json_array_end(&w);
	CHECK_EQ_STR(json_text(&w), "[1.235,2,null,null,0.1,0.33333333333333331,1e+300]");
	json_release(&w);
}

/* ---- logger ---- */

static void test_log_line(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	struct logger *lg = logger__new(f, LOG_INFO);
	const char *rest;

	CHECK(lg != NULL);
	log_msg(lg, LOG_INFO, "ready", "probes", LOG_INT(12), "pid", LOG_INT(123), "name",
	        LOG_STR("a\"b"), "ok", LOG_BOOL(1), "big", LOG_UINT(UINT64_MAX), "null",
	        LOG_STR(NULL), "ratio", LOG_DOUBLE(0.5), NULL);
	log_msg(lg, LOG_DEBUG, "hidden", NULL);
	log_msg(lg, LOG_ERROR, "bad\nthing", NULL);
	log_msg(NULL, LOG_ERROR, "nowhere", NULL); /* no logger: no crash */
	fflush(f);
	/* {"ts":"2026-11-25T04:30:00.123Z",... */
	CHECK(strncmp(text, "{\"ts\":\"", 7) == 0);
	CHECK(strlen(text) > 32 && text[11] == '-' && text[14] == '-' && text[17] == 'T' &&
	      text[26] == '.' && text[30] == 'Z' && text[31] == '"');
	rest = strchr(text, ',');
	CHECK(rest != NULL);
	if (rest) {
		const char *want =
		    ",\"level\":\"info\",\"msg\":\"ready\",\"probes\":12,\"pid\":123,"
		    "\"name\":\"a\\\"b\",\"ok\":true,\"big\":18446744073709551615,"
		    "\"null\":null,\"ratio\":0.5}\n";
		CHECK(strncmp(rest, want, strlen(want)) == 0);
		rest = strstr(rest, "}\n{\"ts\":");
		CHECK(rest != NULL);
	}
	CHECK(strstr(text, "hidden") == NULL);
	CHECK(strstr(text, ",\"level\":\"error\",\"msg\":\"bad\\nthing\"}\n") != NULL);
	logger__free(lg);
	logger__free(NULL);
	fclose(f);
	free(text);
}

static void test_log_long_message(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	struct logger *lg = logger__new(f, LOG_DEBUG);
	char *huge = malloc(200000);

	memset(huge, 'h', 199999);
	huge[199999] = '\0';
	/* long but within the line limit: whole */
	log_msg(lg, LOG_WARN, "long", "detail", LOG_STR(huge + 199999 - 5000), NULL);
	/* beyond it: a short line saying so */
	log_msg(lg, LOG_WARN, "huge", "detail", LOG_STR(huge), NULL);
	fflush(f);
	CHECK(strstr(text, "\"msg\":\"long\",\"detail\":\"hhhh") != NULL);
	CHECK(strstr(text, "\"level\":\"warn\",\"msg\":\"huge\",\"truncated\":true}\n") != NULL);
	CHECK(size < 10000);
	logger__free(lg);
	fclose(f);
	free(text);
	free(huge);
}

static void test_log_levels(void)
{
	CHECK_EQ_INT(log_level_parse("debug"), LOG_DEBUG);
	CHECK_EQ_INT(log_level_parse("INFO"), LOG_INFO);
	CHECK_EQ_INT(log_level_parse("warn"), LOG_WARN);
	CHECK_EQ_INT(log_level_parse("warning"), LOG_WARN);
	CHECK_EQ_INT(log_level_parse("error"), LOG_ERROR);
	CHECK_EQ_INT(log_level_parse("bogus"), LOG_INFO);
	CHECK_EQ_INT(log_level_parse(NULL), LOG_INFO);
	CHECK_EQ_STR(log_level_name(LOG_DEBUG), "debug");
	CHECK_EQ_STR(log_level_name(LOG_WARN), "warn");
	/* syslog numbers from other modules: 3 err, 4 warning, 6 info */
	CHECK_EQ_STR(log_level_name((enum log_level)3), "error");
	CHECK_EQ_STR(log_level_name((enum log_level)4), "warn");
	CHECK_EQ_STR(log_level_name((enum log_level)6), "info");

	struct logger *lg = logger__new(stderr, LOG_WARN);
	CHECK(log_enabled(lg, LOG_ERROR));
	CHECK(log_enabled(lg, LOG_WARN));
	CHECK(!log_enabled(lg, LOG_INFO));
	CHECK(!log_enabled(lg, LOG_DEBUG));
	CHECK(!log_enabled(NULL, LOG_ERROR));
	CHECK(logger__new(NULL, LOG_INFO) == NULL);
	logger__free(lg);
}

#define LOG_THREADS 4
#define LOG_LINES   2000

static void *log_worker(void *arg)
{
	struct logger *lg = arg;

	for (int i = 0; i < LOG_LINES; i++)
		log_msg(lg, LOG_INFO, "from a thread", "i", LOG_INT(i), "pad",
		        LOG_STR("................................................................"),
		        NULL);
	return NULL;
}

static void test_log_threads_whole_lines(void)
{
	FILE *f = tmpfile();
	struct logger *lg = logger__new(f, LOG_INFO);
	pthread_t threads[LOG_THREADS];
	char line[1024];
	int lines = 0, good = 0;

	for (int t = 0; t < LOG_THREADS; t++)
		pthread_create(&threads[t], NULL, log_worker, lg);
	for (int t = 0; t < LOG_THREADS; t++)
		pthread_join(threads[t], NULL);
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		lines++;
		good += !strncmp(line, "{\"ts\":\"", 7) && n > 2 && line[n - 2] == '}' &&
		        strstr(line, "\"msg\":\"from a thread\",\"i\":") != NULL;
	}
	CHECK_EQ_INT(lines, LOG_THREADS * LOG_LINES);
	CHECK_EQ_INT(good, LOG_THREADS * LOG_LINES);
	logger__free(lg);
	fclose(f);
}

int main(void)
{
	RUN(test_structure);
	RUN(test_escaping);
	RUN(test_utf8);
	RUN(test_random_bytes_give_valid_strings);
	RUN(test_fixed_buffer_overflow);
	RUN(test_growth);
	RUN(test_numbers);
	RUN(test_log_line);
	RUN(test_log_long_message);
	RUN(test_log_levels);
	RUN(test_log_threads_whole_lines);
	return unit_summary("test_json");
}

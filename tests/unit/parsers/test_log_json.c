/* test_log_json.c — JSON log lines (zap, pino, structlog, OTel keys) and
 * severities of text lines. */
#include <string.h>

#include "parsers/log_json.h"
#include "unit.h"

static const struct log_json_field *find(const struct log_json_field *f, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (f[i].key_len == strlen(key) && !memcmp(f[i].key, key, f[i].key_len))
			return &f[i];
	return NULL;
}

static void test_zap(void)
{
	const char *s =
	    "{\"level\":\"warn\",\"ts\":1700000000.5,\"caller\":\"main.go:12\","
	    "\"msg\":\"slow \\\"db\\\"\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
	    "\"span_id\":\"00f067aa0ba902b7\",\"n\":3,\"ok\":true,\"x\":null,"
	    "\"nested\":{\"a\":[1,2,{\"b\":\"c\"}]}}";
	struct log_json_field f[LOG_JSON_MAX_FIELDS];
	int n = log_json_parse(s, strlen(s), f, LOG_JSON_MAX_FIELDS);
	char buf[64];

	CHECK_EQ_INT(n, 10);
	CHECK_EQ_INT(find(f, n, "level")->role, LOG_JSON_LEVEL);
	CHECK_EQ_INT(find(f, n, "msg")->role, LOG_JSON_MESSAGE);
	CHECK_EQ_INT(find(f, n, "ts")->role, LOG_JSON_TIME);
	CHECK_EQ_INT(find(f, n, "trace_id")->role, LOG_JSON_TRACE_ID);
	CHECK_EQ_INT(find(f, n, "span_id")->role, LOG_JSON_SPAN_ID);
	CHECK_EQ_INT(find(f, n, "n")->type, LOG_JSON_NUMBER);
	CHECK_EQ_INT(find(f, n, "ok")->type, LOG_JSON_BOOL);
	CHECK_EQ_INT(find(f, n, "x")->type, LOG_JSON_NULL);
	CHECK_EQ_INT(find(f, n, "nested")->type, LOG_JSON_NESTED);
	CHECK_EQ_INT(find(f, n, "nested")->val_len, strlen("{\"a\":[1,2,{\"b\":\"c\"}]}"));
	log_json_unescape(find(f, n, "msg")->val, find(f, n, "msg")->val_len, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "slow \"db\"");
	CHECK(log_hex_id(find(f, n, "trace_id")->val, find(f, n, "trace_id")->val_len, 32));
	CHECK(log_hex_id(find(f, n, "span_id")->val, find(f, n, "span_id")->val_len, 16));
	CHECK_EQ_INT(log_severity_from_level("warn", 4, LOG_JSON_STRING), LOG_SEV_WARN);
}

static void test_pino_structlog_otel(void)
{
	const char *pino = "{\"level\":50,\"time\":1,\"pid\":7,\"msg\":\"failed\"}";
	const char *structlog = "{\"event\": \"user logged in\", \"level\": \"info\", \"user\": 3}";
	const char *otel = "{\"severity_text\":\"ERROR\",\"body\":\"x\",\"traceId\":\"ab\"}";
	struct log_json_field f[LOG_JSON_MAX_FIELDS];
	int n;

	n = log_json_parse(pino, strlen(pino), f, LOG_JSON_MAX_FIELDS);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(log_severity_from_level(f[0].val, f[0].val_len, f[0].type), LOG_SEV_ERROR);
	n = log_json_parse(structlog, strlen(structlog), f, LOG_JSON_MAX_FIELDS);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(f[0].role, LOG_JSON_MESSAGE);
	n = log_json_parse(otel, strlen(otel), f, LOG_JSON_MAX_FIELDS);
	CHECK_EQ_INT(f[0].role, LOG_JSON_LEVEL);
	CHECK_EQ_INT(f[2].role, LOG_JSON_TRACE_ID);
	CHECK(!log_hex_id(f[2].val, f[2].val_len, 32));
	CHECK(!log_hex_id("00000000000000000000000000000000", 32, 32));
}

static void test_not_json(void)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "}",
	    "[1,2]",
	    "{\"a\":}",
	    "{\"a\" 1}",
	    "{\"a\":1,}",
	    "{a:1}",
	    "{\"a\":1} trailing",
	    "{\"a\":\"unterminated}",
	    "{\"a\":01x}",
	    "{\"a\":tru}",
	    "{\"a\":\"\\x\"}",
	    "{\"a\":[1,}",
	    "{\"a\":\"\\u12\"}",
	    "plain text line",
	    "{\"a\":1}{\"b\":2}",
	};
	struct log_json_field f[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (log_json_parse(bad[i], strlen(bad[i]), f, 4) >= 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(log_json_parse(bad[i], strlen(bad[i]), f, 4) < 0);
	}
	CHECK_EQ_INT(log_json_parse(" {} ", 4, f, 4), 0);
	/* deep nesting is refused, not a stack overflow */
	char deep[400];
	size_t k = 0;
	deep[k++] = '{';
	memcpy(deep + k, "\"a\":", 4);
	k += 4;
	for (int i = 0; i < 150; i++)
		deep[k++] = '[';
	for (int i = 0; i < 150; i++)
		deep[k++] = ']';
	deep[k++] = '}';
	CHECK(log_json_parse(deep, k, f, 4) < 0);
	/* more fields than room: counted, the first kept */
	const char *many = "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6}";
	CHECK_EQ_INT(log_json_parse(many, strlen(many), f, 4), 6);
	CHECK_EQ_INT(f[3].key[0], 'd');
}

static void test_unescape(void)
{
	char out[32];

	const char *esc = "a\\nb\\u00e9\\ud83d\\ude00\\ud800x";

	log_json_unescape(esc, strlen(esc), out, sizeof(out));
	CHECK_EQ_STR(out, "a\nb\xc3\xa9\xf0\x9f\x98\x80?x");
	CHECK_EQ_INT(log_json_unescape("abcdef", 6, out, 4), 3);
	CHECK_EQ_STR(out, "abc");
}

static void test_text_severity(void)
{
	size_t at = 0, len = 0;

	CHECK_EQ_INT(log_severity_from_text("ERROR:root:boom", 15, &at, &len), LOG_SEV_ERROR);
	CHECK_EQ_INT(len, 5);
	CHECK_EQ_INT(log_severity_from_text("2024-01-01 12:00:00 [WARN] slow", 31, NULL, NULL),
	             LOG_SEV_WARN);
	CHECK_EQ_INT(log_severity_from_text("ts=1 level=debug msg=x", 22, NULL, NULL),
	             LOG_SEV_DEBUG);
	CHECK_EQ_INT(log_severity_from_text("I0102 15:04:05.000 1 x.go:1] hi", 31, NULL, NULL),
	             LOG_SEV_INFO);
	CHECK_EQ_INT(log_severity_from_text("CRITICAL disk full", 18, NULL, NULL), LOG_SEV_FATAL);
	CHECK_EQ_INT(log_severity_from_text("INFO:     127.0.0.1 - GET /", 27, NULL, NULL),
	             LOG_SEV_INFO);
	/* lower-case words in prose are not levels */
	CHECK_EQ_INT(log_severity_from_text("no error here, just info", 24, NULL, NULL),
	             LOG_SEV_UNSPECIFIED);
	CHECK_EQ_INT(log_severity_from_text("GET /x 200", 10, NULL, NULL), LOG_SEV_UNSPECIFIED);
	CHECK_EQ_STR(log_severity_name(LOG_SEV_WARN), "WARN");
}

int main(void)
{
	RUN(test_zap);
	RUN(test_pino_structlog_otel);
	RUN(test_not_json);
	RUN(test_unescape);
	RUN(test_text_severity);
	return unit_summary("test_log_json");
}

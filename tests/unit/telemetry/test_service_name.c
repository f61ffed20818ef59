/* test_service_name.c — service names from systemd units (as container_id
 * gives them) and interpreter command lines (NUL-separated, as
 * /proc/PID/cmdline). */
#include <string.h>

#include "telemetry/service_name.h"
#include "unit.h"

static void test_units(void)
{
	static const struct {
		const char *unit, *want; /* want "" : no name */
	} cases[] = {
	    {"orders", "orders"},
	    {"app@2", "app"},
	    {"worker@eu\\x2dwest", "worker"},
	    {"my\\x2dapi", "my-api"},
	    {"nginx", "nginx"},
	    {"user@1000", ""},
	    {"cron", ""},
	    {"ssh", ""},
	    {"getty@tty1", ""},
	    {"serial-getty@ttyS0", ""},
	    {"run-u42", ""},
	    {"run-r0123abcd", ""},
	    {"runner", "runner"},
	    {"@x", ""},
	    {"", ""},
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = service_name_from_unit(cases[i].unit, out, sizeof(out));
		CHECK(ok == (cases[i].want[0] != '\0'));
		CHECK_EQ_STR(out, cases[i].want);
	}
	CHECK(!service_name_from_unit(NULL, out, sizeof(out)));
	CHECK_EQ_STR(out, "");
	/* truncated to the caller's buffer */
	char small[4];
	CHECK(service_name_from_unit("orders", small, sizeof(small)));
	CHECK_EQ_STR(small, "ord");
}

/* "a b c" → "a\0b\0c\0": arguments separated by '|' here, spaces kept. */
static size_t cmdline(const char *args, char *buf, size_t cap)
{
	size_t n = strlen(args);

	if (n + 1 > cap)
		n = cap - 1;
	memcpy(buf, args, n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '|')
			buf[i] = '\0';
	buf[n] = '\0';
	return n + 1;
}

static void test_cmdlines(void)
{
	static const struct {
		const char *exe, *args, *cwd, *want;
	} cases[] = {
	    /* Python scripts and modules */
	    {"python3.11", "python3|app.py", NULL, "app"},
	    {"python3.11", "/usr/bin/python3|-u|app.py|--port|80", NULL, "app"},
	    {"python3.11", "python3|-OO|-W|ignore|-X|dev|/srv/orders/api.py", NULL, "api"},
	    {"python3.11", "python3|-Wignore|-Xdev|--check-hash-based-pycs|never|a.pyc", NULL, "a"},
	    {"python3.11", "python3|-m|mypkg.server", NULL, "mypkg.server"},
	    {"python3.11", "python3|-mhttp.server|8000", NULL, "http.server"},
	    {"python3.11", "python3|-c|import app", NULL, ""},
	    {"python3.11", "python3|-Bc|import app", NULL, ""},
	    {"python3.11", "python3", NULL, ""},
	    {"python3.11", "python3|-", NULL, ""},
	    {"python3.11", "python3|-i", NULL, ""},
	    {"python3.11", "python3|--|x.py", NULL, "x"},
	    {"pypy3", "pypy3|bench.py", NULL, "bench"},
	    {"python3.11", "python3|/srv/shop/__main__.py", NULL, "shop"},
	    {"python3.11", "python3|__main__.py", "/srv/shop", "shop"},
	    {"python3.11", "python3|src/__main__.py", "/srv/shop", "shop"},
	    {"python3.11", "python3|__main__.py", NULL, "__main__"},
	    /* launchers: the application's top-level package */
	    {"python3.11", "/usr/bin/python3|/usr/bin/uvicorn|main:app|--host|::", NULL, "main"},
	    {"python3.11", "python3|/usr/bin/uvicorn|--reload|app.main:app", NULL, "app"},
	    {"python3.11", "python3|/usr/local/bin/gunicorn|shop.wsgi", NULL, "shop"},
	    {"python3.11",
	     "python3|/usr/bin/gunicorn|-w|4|-k|uvicorn.workers.UvicornWorker|-b|:8000|shop.asgi",
	     NULL, "shop"},
	    {"python3.11", "python3|/usr/bin/gunicorn|-b|0.0.0.0:80|shop.wsgi:application", NULL,
	     "shop"},
	    {"python3.11", "python3|/usr/bin/gunicorn|--bind=:80|--reload|shop.wsgi", NULL, "shop"},
	    {"python3.11", "python3|-m|uvicorn|main:app", NULL, "main"},
	    {"python3.11", "python3|-m|gunicorn", NULL, "gunicorn"},
	    {"python3.11", "python3|/usr/bin/gunicorn", NULL, "gunicorn"},
	    {"python3.11", "python3|/usr/bin/hypercorn|orders:app", NULL, "orders"},
	    {"python3.11", "python3|/usr/bin/flask|--app|hello|run", NULL, "hello"},
	    {"python3.11", "python3|/usr/bin/flask|run", NULL, "flask"},
	    {"python3.11", "python3|/usr/bin/celery|-A|proj|worker", NULL, "proj"},
	    {"python3.11", "python3|-m|celery|--app=proj.celery|worker", NULL, "proj"},
	    /* Node.js */
	    {"node", "node|server.js", NULL, "server"},
	    {"node", "node|--inspect|server.js", NULL, "server"},
	    {"node", "node|--inspect=0.0.0.0:9229|-r|dotenv/config|api.mjs", NULL, "api"},
	    {"node", "node|/srv/app/index.js", NULL, "app"},
	    {"node", "node|/srv/shop/dist/index.js", NULL, "shop"},
	    {"node", "node|index.js", "/srv/front", "front"},
	    {"node", "node|./src/index.js", "/srv/front", "front"},
	    {"node", "node|../index.js", "/srv/front", "index"},
	    {"node", "node|index.js", NULL, "index"},
	    {"node", "node|/usr/lib/node_modules/npm/bin/npm-cli.js|start", NULL, "npm"},
	    {"node", "node|/usr/share/yarn/node_modules/yarn/lib/cli.js", NULL, "yarn"},
	    {"node", "node|/app/node_modules/.bin/next|start", NULL, "next"},
	    {"node", "node|/app/node_modules/@nestjs/cli/bin/nest.js", NULL, "cli"},
	    {"node", "node|-e|require('x')", NULL, ""},
	    {"node", "node|--eval=1", NULL, ""},
	    {"node", "node", NULL, ""},
	    {"nodejs", "nodejs|app.cjs", NULL, "app"},
	    /* Java */
	    {"java", "java|-jar|orders.jar", NULL, "orders"},
	    {"java",
	     "java|-Xmx512m|-Dspring.profiles.active=prod|-jar|/opt/orders-1.0.2-SNAPSHOT.jar",
	     NULL, "orders"},
	    {"java", "java|-cp|x.jar:lib/*|com.foo.Main", NULL, "Main"},
	    {"java", "java|-classpath|/a|com.shop.OrdersApplication|--port|8080", NULL,
	     "OrdersApplication"},
	    {"java", "java|-m|com.shop/com.shop.Api", NULL, "Api"},
	    {"java", "java|--module|com.shop", NULL, "com.shop"},
	    {"java", "java|-version", NULL, ""},
	    {"java", "java|-jar", NULL, ""},
	    /* not an interpreter: nothing */
	    {"nginx", "nginx: worker process", NULL, ""},
	    {"curl", "curl|http://x/app.py", NULL, ""},
	};
	char buf[512], out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cmdline(cases[i].args, buf, sizeof(buf));
		bool ok = service_name_from_cmdline(cases[i].exe, buf, len, cases[i].cwd, out,
		                                    sizeof(out));
		if (strcmp(out, cases[i].want))
			fprintf(stderr, "case %zu: %s\n", i, cases[i].args);
		CHECK_EQ_STR(out, cases[i].want);
		CHECK(ok == (cases[i].want[0] != '\0'));
	}
}

static void test_bounds(void)
{
	static char big[SERVICE_NAME_CMDLINE_MAX * 2];
	char out[16];
	size_t n = 0;

	/* many options before the script: past the bound, nothing is named */
	memcpy(big, "python3", 8);
	n = 8;
	while (n + 3 < sizeof(big) - 16) {
		memcpy(big + n, "-u", 3);
		n += 3;
	}
	memcpy(big + n, "app.py", 7);
	n += 7;
	CHECK(!service_name_from_cmdline("python3", big, n, NULL, out, sizeof(out)));
	/* a last argument without its NUL (a cmdline cut short) is not used */
	CHECK(!service_name_from_cmdline("python3", "python3\0app.py", 14, NULL, out, sizeof(out)));
	CHECK(service_name_from_cmdline("python3", "python3\0app.py", 15, NULL, out, sizeof(out)));
	CHECK_EQ_STR(out, "app");
	/* a long name is cut to the buffer */
	CHECK(service_name_from_cmdline("node", "node\0a-very-long-service-name.js", 33, NULL, out,
	                                sizeof(out)));
	CHECK_EQ_STR(out, "a-very-long-ser");
	CHECK(!service_name_from_cmdline(NULL, "x", 2, NULL, out, sizeof(out)));
	CHECK(!service_name_from_cmdline("node", NULL, 0, NULL, out, sizeof(out)));
	CHECK(!service_name_from_cmdline("node", "node\0x.js", 10, NULL, out, 0));
}

int main(void)
{
	RUN(test_units);
	RUN(test_cmdlines);
	RUN(test_bounds);
	return unit_summary("test_service_name");
}

/* service_name.c — service names from systemd units and interpreter command
 * lines (see service_name.h). No allocation, no state. */
#include <stdio.h>
#include <string.h>

#include "telemetry/service_name.h"

/* A piece of a string (not NUL-terminated). */
struct piece {
	const char *s;
	size_t n;
};

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool piece_is(struct piece p, const char *word)
{
	return p.n == strlen(word) && !memcmp(p.s, word, p.n);
}

static bool put(struct piece p, char *out, size_t cap)
{
	if (!p.n || !cap) {
		if (cap)
			out[0] = '\0';
		return false;
	}
	snprintf(out, cap, "%.*s", (int)p.n, p.s);
	return true;
}

static struct piece whole(const char *s)
{
	return (struct piece){s, strlen(s)};
}

/* The last path component of p (after the last '/'). */
static struct piece base_of(struct piece p)
{
	for (size_t i = p.n; i > 0; i--)
		if (p.s[i - 1] == '/')
			return (struct piece){p.s + i, p.n - i};
	return p;
}

/* p without a trailing extension among exts (NULL-terminated list). */
static struct piece strip_ext(struct piece p, const char *const *exts)
{
	for (; *exts; exts++) {
		size_t e = strlen(*exts);
		if (p.n > e && !memcmp(p.s + p.n - e, *exts, e))
			return (struct piece){p.s, p.n - e};
	}
	return p;
}

/* ---- systemd units ---- */

bool service_name_from_unit(const char *unit, char *out, size_t cap)
{
	/* units whose processes are other programs they start */
	static const char *const starters[] = {"user",
	                                       "cron",
	                                       "crond",
	                                       "anacron",
	                                       "atd",
	                                       "ssh",
	                                       "sshd",
	                                       "getty",
	                                       "serial-getty",
	                                       "console-getty",
	                                       "container-getty",
	                                       "systemd-run",
	                                       "init",
	                                       "user-runtime-dir",
	                                       NULL};
	char name[256];
	size_t n = 0;

	if (cap)
		out[0] = '\0';
	if (!unit || !unit[0])
		return false;
	/* unescape \xNN (systemd-escape), stop at a template's instance '@' */
	for (const char *p = unit; *p && *p != '@' && n + 1 < sizeof(name); p++) {
		unsigned v;
		if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &v) == 1 && v >= 0x20 &&
		    v < 0x7f) {
			name[n++] = (char)v;
			p += 3;
		} else {
			name[n++] = *p;
		}
	}
	name[n] = '\0';
	if (!n)
		return false;
	for (const char *const *s = starters; *s; s++)
		if (!strcmp(name, *s))
			return false;
	/* transient units (systemd-run without --unit): run-u123, run-r<hex> */
	if ((starts(name, "run-u") || starts(name, "run-r") || starts(name, "run-p")) && n > 5)
		return false;
	return put(whole(name), out, cap);
}

/* ---- command lines ---- */

struct args {
	const char *v[SERVICE_NAME_ARGS_MAX];
	size_t n;
};

static void split_args(const char *cmdline, size_t len, struct args *a)
{
	size_t i = 0;

	a->n = 0;
	if (len > SERVICE_NAME_CMDLINE_MAX)
		len = SERVICE_NAME_CMDLINE_MAX;
	while (i < len && a->n < SERVICE_NAME_ARGS_MAX) {
		const char *nul = memchr(cmdline + i, '\0', len - i);
		if (!nul)
			break; /* cut short: the last argument is incomplete */
		a->v[a->n++] = cmdline + i;
		i = (size_t)(nul - cmdline) + 1;
	}
}

/* An index file's name: its directory's, skipping build-layout directories
 * (dir: the script's directory as given, completed with cwd when relative). */
static bool name_from_dir(struct piece dir, const char *cwd, char *out, size_t cap)
{
	static const char *const skip[] = {"src", "dist", "build", "lib", "out", "bin", ".", ""};
	char path[1024];
	size_t n;

	if (dir.n && dir.s[0] == '/')
		n = (size_t)snprintf(path, sizeof(path), "%.*s", (int)dir.n, dir.s);
	else if (cwd && cwd[0] == '/')
		n = (size_t)snprintf(path, sizeof(path), "%s/%.*s", cwd, (int)dir.n, dir.s);
	else
		return false;
	if (n >= sizeof(path))
		return false;
	while (n > 0) {
		while (n > 0 && path[n - 1] == '/')
			n--;
		struct piece comp = base_of((struct piece){path, n});
		bool skipped = false;
		if (piece_is(comp, ".."))
			return false;
		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			skipped |= piece_is(comp, skip[i]);
		if (!skipped)
			return put(comp, out, cap);
		n -= comp.n;
	}
	return false;
}

/* A script's name: its basename without exts; an index file (generic) is
 * named by its directory. */
static bool name_from_script(const char *script, const char *const *exts, const char *generic,
                             const char *cwd, char *out, size_t cap)
{
	struct piece path = whole(script), base = base_of(path);
	struct piece name = strip_ext(base, exts);

	if (piece_is(name, generic) &&
	    name_from_dir((struct piece){path.s, path.n - base.n}, cwd, out, cap))
		return true;
	return put(name, out, cap);
}

/* "a.b.c" or "a.b:obj": a Python module path (and object). */
static bool python_app_spec(const char *s, struct piece *top)
{
	size_t i = 0, first = 0;
	bool start = true;

	for (; s[i] && s[i] != ':'; i++) {
		char ch = s[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (ch == '.') {
			if (start)
				return false;
			if (!first)
				first = i;
			start = true;
		} else if (alpha || (digit && !start)) {
			start = false;
		} else {
			return false;
		}
	}
	if (start)
		return false;
	*top = (struct piece){s, first ? first : i};
	return true;
}

/* The application a Python launcher (uvicorn, gunicorn, ...) serves, from
 * its arguments a->v[from..]: its top-level package. */
static bool python_launcher_app(const char *launcher, const struct args *a, size_t from, char *out,
                                size_t cap)
{
	static const char *const positional[] = {
	    "uvicorn", "gunicorn", "hypercorn", "daphne", "waitress-serve", "granian", NULL};
	static const char *const app_option[] = {"flask", "celery", NULL};
	bool is_pos = false, is_opt = false;
	struct piece top, colon = {0}, last = {0}, last_free = {0};

	for (const char *const *l = positional; *l; l++)
		is_pos |= !strcmp(launcher, *l);
	for (const char *const *l = app_option; *l; l++)
		is_opt |= !strcmp(launcher, *l);
	if (!is_pos && !is_opt)
		return false;
	for (size_t i = from; i < a->n; i++) {
		const char *s = a->v[i];
		const char *value = NULL;
		if (!strcmp(s, "--app") || !strcmp(s, "-A"))
			value = i + 1 < a->n ? a->v[i + 1] : NULL;
		else if (starts(s, "--app="))
			value = s + 6;
		if (value && python_app_spec(value, &top))
			return put(top, out, cap);
		if (!is_pos || s[0] == '-' || !python_app_spec(s, &top))
			continue;
		if (strchr(s, ':') && !colon.n)
			colon = top;
		last = top;
		/* not the value of the option before it (--bind x, -w 4, -k cls) */
		if (i == from || a->v[i - 1][0] != '-' || strchr(a->v[i - 1], '='))
			last_free = top;
	}
	if (colon.n)
		return put(colon, out, cap);
	if (last_free.n)
		return put(last_free, out, cap);
	return put(last, out, cap);
}

static bool from_python(const struct args *a, const char *cwd, char *out, size_t cap)
{
	static const char *const exts[] = {".py", ".pyc", ".pyz", NULL};
	static const char *const value_opts[] = {"--check-hash-based-pycs", NULL};
	const char *module = NULL;
	size_t i = 1;

	while (i < a->n && !module) {
		const char *s = a->v[i];
		bool takes_next = false;
		if (!strcmp(s, "--")) {
			i++;
			break;
		}
		if (s[0] != '-' || !s[1])
			break; /* the script (or "-": stdin) */
		if (s[1] == '-') {
			for (const char *const *o = value_opts; *o; o++)
				takes_next |= !strcmp(s, *o);
			i += takes_next ? 2 : 1;
			continue;
		}
		for (const char *f = s + 1; *f; f++) { /* "-u", "-OO", "-Bc code", "-mpkg" */
			if (*f == 'c')
				return false; /* inline code */
			if (*f == 'm' || *f == 'W' || *f == 'X' || *f == 'Q') {
				const char *value =
				    f[1] ? f + 1 : (i + 1 < a->n ? a->v[i + 1] : NULL);
				takes_next = !f[1];
				if (*f == 'm')
					module = value;
				break;
			}
		}
		i += takes_next ? 2 : 1;
	}
	if (module) {
		struct piece top;
		if (!module[0])
			return false;
		if (python_launcher_app(module, a, i, out, cap))
			return true;
		/* python -m uvicorn without an app, or any module: as typed */
		if (!python_app_spec(module, &top))
			return false;
		return put(whole(module), out, cap);
	}
	if (i >= a->n || !strcmp(a->v[i], "-") || !a->v[i][0])
		return false;
	char script[256];
	if (!name_from_script(a->v[i], exts, "__main__", cwd, script, sizeof(script)))
		return false;
	if (python_launcher_app(script, a, i + 1, out, cap))
		return true;
	return put(whole(script), out, cap); /* a launcher without its app: itself */
}

static bool from_node(const struct args *a, const char *cwd, char *out, size_t cap)
{
	static const char *const exts[] = {".js", ".mjs", ".cjs", ".ts", ".mts", NULL};
	static const char *const value_opts[] = {
	    "-r",       "--require",    "--loader",       "--experimental-loader",
	    "--import", "--input-type", "--conditions",   "-C",
	    "--title",  "--env-file",   "--inspect-port", NULL};
	size_t i = 1;

	while (i < a->n) {
		const char *s = a->v[i];
		bool takes_next = false;
		if (!strcmp(s, "--")) {
			i++;
			break;
		}
		if (s[0] != '-' || !s[1])
			break;
		if (!strcmp(s, "-e") || !strcmp(s, "-p") || !strcmp(s, "-pe") ||
		    starts(s, "--eval") || starts(s, "--print"))
			return false; /* inline code */
		for (const char *const *o = value_opts; *o; o++)
			takes_next |= !strcmp(s, *o);
		i += takes_next ? 2 : 1;
	}
	if (i >= a->n || !strcmp(a->v[i], "-") || !a->v[i][0])
		return false;
	/* a package's tool: .../node_modules/<pkg>/..., .../node_modules/.bin/<tool> */
	const char *nm = NULL, *p = a->v[i];
	while ((p = strstr(p, "node_modules/"))) {
		nm = p + strlen("node_modules/");
		p = nm;
	}
	if (nm) {
		if (starts(nm, ".bin/"))
			return name_from_script(nm + 5, exts, "", NULL, out, cap);
		if (nm[0] == '@' && strchr(nm, '/'))
			nm = strchr(nm, '/') + 1;
		const char *slash = strchr(nm, '/');
		return put((struct piece){nm, slash ? (size_t)(slash - nm) : strlen(nm)}, out, cap);
	}
	return name_from_script(a->v[i], exts, "index", cwd, out, cap);
}

/* "orders-1.0.2-SNAPSHOT" → "orders": the name before a version. */
static struct piece drop_version(struct piece p)
{
	for (size_t i = 1; i + 1 < p.n; i++)
		if (p.s[i] == '-' && p.s[i + 1] >= '0' && p.s[i + 1] <= '9')
			return (struct piece){p.s, i};
	return p;
}

static bool from_java(const struct args *a, char *out, size_t cap)
{
	static const char *const exts[] = {".jar", ".war", NULL};
	static const char *const value_opts[] = {"-cp",
	                                         "-classpath",
	                                         "--class-path",
	                                         "-p",
	                                         "--module-path",
	                                         "--add-modules",
	                                         "--add-opens",
	                                         "--add-exports",
	                                         "--add-reads",
	                                         "--patch-module",
	                                         "--limit-modules",
	                                         "--upgrade-module-path",
	                                         NULL};
	size_t i = 1;

	while (i < a->n) {
		const char *s = a->v[i];
		bool takes_next = false;
		if (!strcmp(s, "-jar")) {
			if (i + 1 >= a->n)
				return false;
			struct piece jar = strip_ext(base_of(whole(a->v[i + 1])), exts);
			return put(drop_version(jar), out, cap);
		}
		if (!strcmp(s, "-m") || !strcmp(s, "--module")) {
			if (i + 1 >= a->n)
				return false;
			s = a->v[i + 1];
			const char *cls = strchr(s, '/'); /* module/mainclass */
			if (!cls)
				return put(whole(s), out, cap);
			s = cls + 1;
			const char *dot = strrchr(s, '.');
			return put(whole(dot ? dot + 1 : s), out, cap);
		}
		if (s[0] != '-')
			break;
		for (const char *const *o = value_opts; *o; o++)
			takes_next |= !strcmp(s, *o);
		i += takes_next ? 2 : 1;
	}
	if (i >= a->n)
		return false;
	/* the main class: its simple name */
	const char *dot = strrchr(a->v[i], '.');
	return put(whole(dot ? dot + 1 : a->v[i]), out, cap);
}

bool service_name_from_cmdline(const char *exe, const char *cmdline, size_t len, const char *cwd,
                               char *out, size_t cap)
{
	struct args a;
	bool ok = false;

	if (cap)
		out[0] = '\0';
	if (!exe || !cmdline || !cap)
		return false;
	split_args(cmdline, len, &a);
	if (a.n < 2)
		return false;
	if (starts(exe, "python") || starts(exe, "pypy"))
		ok = from_python(&a, cwd, out, cap);
	else if (!strcmp(exe, "node") || !strcmp(exe, "nodejs"))
		ok = from_node(&a, cwd, out, cap);
	else if (!strcmp(exe, "java"))
		ok = from_java(&a, out, cap);
	if (!ok)
		out[0] = '\0';
	return ok;
}

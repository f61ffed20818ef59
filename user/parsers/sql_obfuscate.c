/* sql_obfuscate.c — SQL literal obfuscation and operation/table naming for
 * the database parsers (see sql_obfuscate.h for the rules). Both work in one
 * pass over the text with a small hand-written lexer; no allocation. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "parsers/sql_obfuscate.h"

struct out_buf {
	char *p;
	size_t cap; /* bytes usable for text: out_len - 1 */
	size_t len;
	bool space; /* white space seen since the last token */
};

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_word_start(unsigned char c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' || c >= 0x80;
}

static bool is_word_byte(unsigned char c)
{
	return is_word_start(c) || is_digit(c) || c == '$';
}

static void out_put(struct out_buf *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len++] = c;
}

/* Starts a token: one space first when white space separated it from the
 * previous one. */
static void out_token(struct out_buf *o)
{
	if (o->space && o->len)
		out_put(o, ' ');
	o->space = false;
}

static void out_bytes(struct out_buf *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_put(o, s[i]);
}

/* Index just past a quoted run that starts at in[i] == q; a doubled quote and
 * (when backslash) a backslash escape stay inside. Unterminated: len. */
static size_t skip_quoted(const char *in, size_t len, size_t i, char q, bool backslash)
{
	for (i++; i < len; i++) {
		if (backslash && in[i] == '\\') {
			i++;
			continue;
		}
		if (in[i] == q) {
			if (i + 1 < len && in[i + 1] == q) {
				i++;
				continue;
			}
			return i + 1;
		}
	}
	return len;
}

/* in[i] == '$': the length of a dollar-quote tag "$tag$" or "$$" there, or 0. */
static size_t dollar_tag_len(const char *in, size_t len, size_t i)
{
	size_t j = i + 1;

	if (j < len && in[j] == '$')
		return 2;
	if (j >= len || !is_word_start((unsigned char)in[j]) || (unsigned char)in[j] >= 0x80)
		return 0;
	while (j < len && (is_word_start((unsigned char)in[j]) || is_digit((unsigned char)in[j])))
		j++;
	if (j < len && in[j] == '$')
		return j + 1 - i;
	return 0;
}

static size_t skip_dollar_quoted(const char *in, size_t len, size_t i, size_t tag)
{
	for (size_t j = i + tag; j + tag <= len; j++) {
		if (in[j] == '$' && memcmp(in + j, in + i, tag) == 0)
			return j + tag;
	}
	return len;
}

static size_t skip_number(const char *in, size_t len, size_t i)
{
	if (in[i] == '0' && i + 1 < len && (in[i + 1] | 0x20) == 'x') {
		i += 2;
		while (i < len && is_hex((unsigned char)in[i]))
			i++;
		return i;
	}
	if (in[i] == '0' && i + 1 < len && (in[i + 1] | 0x20) == 'b' && i + 2 < len &&
	    (in[i + 2] == '0' || in[i + 2] == '1')) {
		i += 2;
		while (i < len && (in[i] == '0' || in[i] == '1'))
			i++;
		return i;
	}
	while (i < len && is_digit((unsigned char)in[i]))
		i++;
	if (i < len && in[i] == '.') {
		i++;
		while (i < len && is_digit((unsigned char)in[i]))
			i++;
	}
	if (i < len && (in[i] | 0x20) == 'e') {
		size_t j = i + 1;
		if (j < len && (in[j] == '+' || in[j] == '-'))
			j++;
		if (j < len && is_digit((unsigned char)in[j])) {
			i = j;
			while (i < len && is_digit((unsigned char)in[i]))
				i++;
		}
	}
	return i;
}

static bool ident_byte_at(const char *s, size_t n, size_t i)
{
	return i < n && is_word_byte((unsigned char)s[i]);
}

/* Whether a '-' or '+' about to be written is a sign (unary), judged by what
 * was written before it: nothing, an operator or '(' / ',', or a keyword
 * after which a value starts ("SELECT -1", "WHERE a = -1", "THEN -1"). */
static bool sign_is_unary(const struct out_buf *o)
{
	static const char *const keywords[] = {"SELECT", "WHERE",  "AND",     "OR",     "NOT",
	                                       "THEN",   "ELSE",   "WHEN",    "RETURN", "BY",
	                                       "LIMIT",  "OFFSET", "VALUES",  "SET",    "IN",
	                                       "IS",     "LIKE",   "BETWEEN", "CASE",   "INTERVAL"};
	size_t end = o->len, start;
	unsigned char last;

	if (!end)
		return true;
	last = (unsigned char)o->p[end - 1];
	if (strchr("(,=<>+-*/%|&^~!", last))
		return true;
	if (!is_word_byte(last))
		return false;
	start = end;
	while (start && is_word_byte((unsigned char)o->p[start - 1]))
		start--;
	for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++)
		if (strlen(keywords[k]) == end - start &&
		    !strncasecmp(keywords[k], o->p + start, end - start))
			return true;
	return false;
}

/* Rewrites "IN (?, ?, ...)" as "IN (?)" in place; returns the new length. */
static size_t collapse_in_lists(char *s, size_t n)
{
	size_t i = 0;

	while (i + 2 < n) {
		if ((s[i] | 0x20) != 'i' || (s[i + 1] | 0x20) != 'n' ||
		    (i > 0 && is_word_byte((unsigned char)s[i - 1])) ||
		    ident_byte_at(s, n, i + 2)) {
			i++;
			continue;
		}
		size_t j = i + 2, open, count = 0;
		if (j < n && s[j] == ' ')
			j++;
		if (j >= n || s[j] != '(') {
			i += 2;
			continue;
		}
		open = j++;
		for (;;) {
			if (j < n && s[j] == ' ')
				j++;
			if (j >= n || s[j] != '?')
				break;
			count++;
			j++;
			if (j < n && s[j] == ' ')
				j++;
			if (j < n && s[j] == ',') {
				j++;
				continue;
			}
			break;
		}
		if (count >= 2 && j < n && s[j] == ')') {
			/* keep "(?" and move ")" and the rest up */
			memmove(s + open + 2, s + j, n - j);
			n -= j - (open + 2);
		}
		i = open + 1;
	}
	return n;
}

size_t sql_obfuscate_dialect(const char *in, size_t len, char *out, size_t out_len,
                             enum sql_dialect dialect)
{
	struct out_buf o = {.p = out, .cap = out_len ? out_len - 1 : 0};
	bool mysql = dialect == SQL_DIALECT_MYSQL;
	size_t i = 0;

	if (!out_len)
		return 0;
	len = in ? strnlen(in, len) : 0; /* a NUL byte ends the text */
	while (i < len && o.len < o.cap) {
		unsigned char c = (unsigned char)in[i];
		if (is_space(c)) {
			o.space = true;
			i++;
		} else if (c == '-' && i + 1 < len && in[i + 1] == '-') {
			while (i < len && in[i] != '\n' && in[i] != '\0')
				i++;
			o.space = true;
		} else if (c == '#' && mysql) {
			while (i < len && in[i] != '\n' && in[i] != '\0')
				i++;
			o.space = true;
		} else if (c == '/' && i + 1 < len && in[i + 1] == '*') {
			const char *end = NULL;
			for (size_t j = i + 2; j + 1 < len; j++) {
				if (in[j] == '*' && in[j + 1] == '/') {
					end = in + j + 2;
					break;
				}
			}
			i = end ? (size_t)(end - in) : len;
			o.space = true;
		} else if (c == '\'') {
			i = skip_quoted(in, len, i, '\'', true);
			out_token(&o);
			out_put(&o, '?');
		} else if (c == '"') {
			size_t end = skip_quoted(in, len, i, '"', mysql);
			out_token(&o);
			if (mysql)
				out_put(&o, '?');
			else
				out_bytes(&o, in + i, end - i);
			i = end;
		} else if (c == '`') {
			size_t end = skip_quoted(in, len, i, '`', false);
			out_token(&o);
			out_bytes(&o, in + i, end - i);
			i = end;
		} else if (c == '$') {
			size_t tag = dollar_tag_len(in, len, i);
			out_token(&o);
			if (tag) {
				i = skip_dollar_quoted(in, len, i, tag);
				out_put(&o, '?');
			} else {
				out_put(&o, '$');
				i++;
				while (i < len && is_digit((unsigned char)in[i]))
					out_put(&o, in[i++]);
			}
		} else if (is_word_start(c)) {
			size_t j = i + 1;
			while (j < len && is_word_byte((unsigned char)in[j]))
				j++;
			out_token(&o);
			/* E'..', N'..', X'..', B'..', _utf8'..': a prefixed literal */
			if (j < len && in[j] == '\'' && (j - i == 1 || c == '_')) {
				i = skip_quoted(in, len, j, '\'', true);
				out_put(&o, '?');
			} else {
				out_bytes(&o, in + i, j - i);
				i = j;
			}
		} else if (is_digit(c) ||
		           (c == '.' && i + 1 < len && is_digit((unsigned char)in[i + 1])) ||
		           ((c == '-' || c == '+') && i + 1 < len &&
		            (is_digit((unsigned char)in[i + 1]) ||
		             (in[i + 1] == '.' && i + 2 < len &&
		              is_digit((unsigned char)in[i + 2]))) &&
		            sign_is_unary(&o))) {
			if (c == '-' || c == '+')
				i++; /* a signed literal: the sign is part of the value */
			i = skip_number(in, len, i);
			out_token(&o);
			out_put(&o, '?');
		} else {
			out_token(&o);
			out_put(&o, (char)c);
			i++;
		}
	}
	o.len = collapse_in_lists(o.p, o.len);
	o.p[o.len] = '\0';
	return o.len;
}

size_t sql_obfuscate(const char *in, size_t len, char *out, size_t out_len)
{
	return sql_obfuscate_dialect(in, len, out, out_len, SQL_DIALECT_STANDARD);
}

/* --- operation and collection ------------------------------------------- */

enum tok_type {
	TOK_END = 0,
	TOK_WORD,   /* keyword or bare identifier */
	TOK_QUOTED, /* "identifier" or `identifier` */
	TOK_PUNCT,  /* one byte */
	TOK_OTHER,  /* string, number, ... */
};

struct token {
	enum tok_type type;
	const char *s;
	size_t n;
};

struct lexer {
	const char *s; /* NUL-terminated */
	size_t pos;
};

static void lex_skip_space(struct lexer *lx)
{
	const char *s = lx->s;
	for (;;) {
		while (s[lx->pos] && is_space((unsigned char)s[lx->pos]))
			lx->pos++;
		if (s[lx->pos] == '-' && s[lx->pos + 1] == '-') {
			while (s[lx->pos] && s[lx->pos] != '\n')
				lx->pos++;
		} else if (s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
			const char *end = strstr(s + lx->pos + 2, "*/");
			lx->pos = end ? (size_t)(end - s) + 2 : strlen(s);
		} else {
			return;
		}
	}
}

static struct token lex_next(struct lexer *lx)
{
	struct token t = {TOK_END, NULL, 0};
	const char *s = lx->s;
	size_t i, len;

	lex_skip_space(lx);
	i = lx->pos;
	t.s = s + i;
	if (!s[i])
		return t;
	unsigned char c = (unsigned char)s[i];
	len = strlen(s + i) + i;
	if (is_word_start(c)) {
		size_t j = i + 1;
		while (is_word_byte((unsigned char)s[j]))
			j++;
		t.type = TOK_WORD;
		lx->pos = j;
	} else if (c == '"' || c == '`') {
		t.type = TOK_QUOTED;
		lx->pos = skip_quoted(s, len, i, (char)c, false);
	} else if (c == '\'') {
		t.type = TOK_OTHER;
		lx->pos = skip_quoted(s, len, i, '\'', true);
	} else if (is_digit(c)) {
		t.type = TOK_OTHER;
		lx->pos = skip_number(s, len, i);
	} else {
		t.type = TOK_PUNCT;
		lx->pos = i + 1;
	}
	t.n = lx->pos - i;
	return t;
}

static bool tok_is(const struct token *t, const char *word)
{
	return t->type == TOK_WORD && t->n == strlen(word) && strncasecmp(t->s, word, t->n) == 0;
}

static bool tok_punct(const struct token *t, char c)
{
	return t->type == TOK_PUNCT && t->s[0] == c;
}

static void copy_upper(char *dst, size_t cap, const char *s, size_t n)
{
	if (!cap)
		return;
	if (n > cap - 1)
		n = cap - 1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		dst[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
	}
	dst[n] = '\0';
}

/* Appends a name part (quotes removed) to dst. */
static void append_part(char *dst, size_t cap, size_t *used, const struct token *t)
{
	const char *s = t->s;
	size_t n = t->n;

	if (t->type == TOK_QUOTED) {
		s++;
		n = n >= 2 && s[n - 2] == t->s[0] ? n - 2 : n - 1;
	}
	for (size_t i = 0; i < n && *used + 1 < cap; i++)
		dst[(*used)++] = s[i];
	dst[*used] = '\0';
}

/* Reads [schema.]table at the lexer into coll. Returns the token after it. */
static struct token read_name(struct lexer *lx, struct token t, char *coll, size_t cap)
{
	size_t used = 0;

	if (t.type != TOK_WORD && t.type != TOK_QUOTED)
		return t;
	append_part(coll, cap, &used, &t);
	for (;;) {
		t = lex_next(lx);
		if (!tok_punct(&t, '.'))
			return t;
		struct token part = lex_next(lx);
		if (part.type != TOK_WORD && part.type != TOK_QUOTED) {
			coll[0] = '\0';
			return part;
		}
		if (used + 1 < cap)
			coll[used++] = '.';
		append_part(coll, cap, &used, &part);
	}
}

/* Skips any of the words (NULL-terminated list). */
static struct token skip_words(struct lexer *lx, struct token t, const char *const *words)
{
	for (;;) {
		bool hit = false;
		for (const char *const *w = words; *w; w++)
			hit = hit || tok_is(&t, *w);
		if (!hit)
			return t;
		t = lex_next(lx);
	}
}

/* The name after a plain [schema.]table that must not be followed by a comma
 * (a list of tables is not one collection). */
static void single_name(struct lexer *lx, struct token t, char *coll, size_t cap)
{
	t = read_name(lx, t, coll, cap);
	if (tok_punct(&t, ','))
		coll[0] = '\0';
}

static void select_collection(struct lexer *lx, char *coll, size_t cap)
{
	int depth = 0;

	for (struct token t = lex_next(lx); t.type != TOK_END; t = lex_next(lx)) {
		if (tok_punct(&t, '('))
			depth++;
		else if (tok_punct(&t, ')'))
			depth--;
		else if (depth == 0 && tok_is(&t, "FROM")) {
			single_name(lx, lex_next(lx), coll, cap);
			return;
		} else if (depth == 0 && tok_punct(&t, ';'))
			return;
	}
}

int sql_operation_and_collection(const char *sql, char *op, size_t op_len, char *coll,
                                 size_t coll_len)
{
	static const char *const insert_skip[] = {"INTO",    "IGNORE",        "LOW_PRIORITY",
	                                          "DELAYED", "HIGH_PRIORITY", NULL};
	static const char *const update_skip[] = {"LOW_PRIORITY", "IGNORE", "ONLY", NULL};
	static const char *const delete_skip[] = {"LOW_PRIORITY", "QUICK", "IGNORE", NULL};
	static const char *const table_skip[] = {"TABLE", "TABLES", "ONLY", NULL};
	static const char *const create_skip[] = {"TEMPORARY", "TEMP", "UNLOGGED", "GLOBAL",
	                                          "LOCAL",     "OR",   "REPLACE",  NULL};
	static const char *const exists_skip[] = {"IF", "NOT", "EXISTS", "ONLY", NULL};
	struct lexer lx = {.s = sql ? sql : ""};
	struct token t;
	char verb[16];

	if (op && op_len)
		op[0] = '\0';
	if (coll && coll_len)
		coll[0] = '\0';
	if (!op || !coll || !op_len || !coll_len)
		return -EINVAL;
	do
		t = lex_next(&lx);
	while (tok_punct(&t, '('));
	if (t.type != TOK_WORD)
		return -EINVAL;
	if (tok_is(&t, "WITH")) {
		int depth = 0;
		struct token w;
		for (w = lex_next(&lx); w.type != TOK_END; w = lex_next(&lx)) {
			if (tok_punct(&w, '('))
				depth++;
			else if (tok_punct(&w, ')'))
				depth--;
			else if (depth == 0 && (tok_is(&w, "SELECT") || tok_is(&w, "INSERT") ||
			                        tok_is(&w, "UPDATE") || tok_is(&w, "DELETE") ||
			                        tok_is(&w, "MERGE")))
				break;
		}
		if (w.type == TOK_END) {
			copy_upper(op, op_len, t.s, t.n);
			return 0;
		}
		t = w;
	}
	copy_upper(op, op_len, t.s, t.n);
	copy_upper(verb, sizeof(verb), t.s, t.n);

	if (!strcmp(verb, "SELECT")) {
		select_collection(&lx, coll, coll_len);
	} else if (!strcmp(verb, "INSERT") || !strcmp(verb, "REPLACE")) {
		t = lex_next(&lx);
		if (tok_is(&t, "OR")) { /* INSERT OR REPLACE INTO */
			lex_next(&lx);
			t = lex_next(&lx);
		}
		read_name(&lx, skip_words(&lx, t, insert_skip), coll, coll_len);
	} else if (!strcmp(verb, "UPDATE")) {
		single_name(&lx, skip_words(&lx, lex_next(&lx), update_skip), coll, coll_len);
	} else if (!strcmp(verb, "DELETE")) {
		t = skip_words(&lx, lex_next(&lx), delete_skip);
		if (tok_is(&t, "FROM"))
			single_name(&lx, skip_words(&lx, lex_next(&lx), update_skip), coll,
			            coll_len);
	} else if (!strcmp(verb, "TRUNCATE") || !strcmp(verb, "LOCK")) {
		single_name(&lx, skip_words(&lx, lex_next(&lx), table_skip), coll, coll_len);
	} else if (!strcmp(verb, "COPY")) {
		read_name(&lx, lex_next(&lx), coll, coll_len);
	} else if (!strcmp(verb, "CREATE") || !strcmp(verb, "DROP") || !strcmp(verb, "ALTER")) {
		t = skip_words(&lx, lex_next(&lx), create_skip);
		if (tok_is(&t, "TABLE"))
			single_name(&lx, skip_words(&lx, lex_next(&lx), exists_skip), coll,
			            coll_len);
	}
	return 0;
}

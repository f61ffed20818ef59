/* test_sql_obfuscate.c — table-driven tests of SQL literal obfuscation and of
 * operation/table naming, with pgbench's statements and MySQL-isms. */
#include <errno.h>
#include <string.h>

#include "parsers/sql_obfuscate.h"
#include "unit.h"

struct sql_case {
	enum sql_dialect dialect;
	const char *in;
	const char *obfuscated;
	const char *op;
	const char *coll;
};

static const struct sql_case cases[] = {
    /* pgbench (TPC-B like, -M simple) */
    {0, "UPDATE pgbench_accounts SET abalance = abalance + 1234 WHERE aid = 5678;",
     "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;", "UPDATE",
     "pgbench_accounts"},
    {0, "SELECT abalance FROM pgbench_accounts WHERE aid = 5678;",
     "SELECT abalance FROM pgbench_accounts WHERE aid = ?;", "SELECT", "pgbench_accounts"},
    {0, "UPDATE pgbench_tellers SET tbalance = tbalance + -4321 WHERE tid = 7;",
     "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?;", "UPDATE",
     "pgbench_tellers"},
    /* a sign belongs to its literal, so one statement has one text whatever the value */
    {0, "INSERT INTO t VALUES (1, -2, +3, -.5)", "INSERT INTO t VALUES (?, ?, ?, ?)", "INSERT",
     "t"},
    {0, "SELECT -1, a-1, a - 2 FROM t WHERE b = -3 AND c < -4",
     "SELECT ?, a-?, a - ? FROM t WHERE b = ? AND c < ?", "SELECT", "t"},
    {0, "UPDATE pgbench_branches SET bbalance = bbalance + 12 WHERE bid = 1;",
     "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?;", "UPDATE",
     "pgbench_branches"},
    {0,
     "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, 42, "
     "CURRENT_TIMESTAMP);",
     "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, "
     "CURRENT_TIMESTAMP);",
     "INSERT", "pgbench_history"},
    /* pgbench -M prepared / extended */
    {0, "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
     "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", "UPDATE",
     "pgbench_accounts"},
    {0, "BEGIN;", "BEGIN;", "BEGIN", ""},
    {0, "END;", "END;", "END", ""},
    {0, "vacuum analyze pgbench_branches", "vacuum analyze pgbench_branches", "VACUUM", ""},
    {0, "truncate table pgbench_history", "truncate table pgbench_history", "TRUNCATE",
     "pgbench_history"},
    {0, "copy pgbench_accounts from stdin with (freeze on)",
     "copy pgbench_accounts from stdin with (freeze on)", "COPY", "pgbench_accounts"},
    /* strings */
    {0, "SELECT * FROM users WHERE name = 'O''Brien' AND x = 'a'",
     "SELECT * FROM users WHERE name = ? AND x = ?", "SELECT", "users"},
    {0, "SELECT E'line\\nnext\\'' || 'x'", "SELECT ? || ?", "SELECT", ""},
    {0, "SELECT $$it's a $ body$$, $fn$ select 1 $fn$", "SELECT ?, ?", "SELECT", ""},
    {0, "SELECT X'DEADBEEF', x'00', B'1010', N'unicode'", "SELECT ?, ?, ?, ?", "SELECT", ""},
    {0, "SELECT 0xFF, 0b101, 1.5e-3, .25, 42., 7", "SELECT ?, ?, ?, ?, ?, ?", "SELECT", ""},
    {0, "SELECT t1.c2 FROM t1 WHERE c3 = 3", "SELECT t1.c2 FROM t1 WHERE c3 = ?", "SELECT", "t1"},
    {0, "SELECT a FROM t WHERE b IS NULL AND c = TRUE OR d = false",
     "SELECT a FROM t WHERE b IS NULL AND c = TRUE OR d = false", "SELECT", "t"},
    {0, "SELECT '2024-01-01'::date, 5::int", "SELECT ?::date, ?::int", "SELECT", ""},
    {0, "SELECT \"Weird Col\" FROM \"My Table\" WHERE \"id\" = 9",
     "SELECT \"Weird Col\" FROM \"My Table\" WHERE \"id\" = ?", "SELECT", "My Table"},
    {0, "SELECT * FROM public.orders o JOIN items i ON i.oid = o.id WHERE o.id = 1",
     "SELECT * FROM public.orders o JOIN items i ON i.oid = o.id WHERE o.id = ?", "SELECT",
     "public.orders"},
    {0, "select * from a, b where a.id = b.id", "select * from a, b where a.id = b.id", "SELECT",
     ""},
    {0, "SELECT * FROM (SELECT 1) AS sub", "SELECT * FROM (SELECT ?) AS sub", "SELECT", ""},
    {0, "SELECT (SELECT max(x) FROM inner_t) FROM outer_t",
     "SELECT (SELECT max(x) FROM inner_t) FROM outer_t", "SELECT", "outer_t"},
    /* IN lists */
    {0, "SELECT * FROM t WHERE id IN (1, 2, 3, 4)", "SELECT * FROM t WHERE id IN (?)", "SELECT",
     "t"},
    {0, "SELECT * FROM t WHERE id in ('a','b') AND k NOT IN (5,6)",
     "SELECT * FROM t WHERE id in (?) AND k NOT IN (?)", "SELECT", "t"},
    {0, "SELECT * FROM t WHERE id IN ($1, $2)", "SELECT * FROM t WHERE id IN ($1, $2)", "SELECT",
     "t"},
    {0, "SELECT * FROM t WHERE id IN (1, x)", "SELECT * FROM t WHERE id IN (?, x)", "SELECT", "t"},
    /* comments and white space */
    {0, "  SELECT /* secret 123 */ a -- trailing 'x'\n FROM\tt  ", "SELECT a FROM t", "SELECT",
     "t"},
    {0, "/* leading */ DELETE FROM sessions WHERE expires < 1700000000",
     "DELETE FROM sessions WHERE expires < ?", "DELETE", "sessions"},
    /* CTEs, DDL */
    {0, "WITH x AS (SELECT 1 FROM a) SELECT * FROM x",
     "WITH x AS (SELECT ? FROM a) SELECT * FROM x", "SELECT", "x"},
    {0, "WITH d AS (DELETE FROM q RETURNING *) INSERT INTO archive SELECT * FROM d",
     "WITH d AS (DELETE FROM q RETURNING *) INSERT INTO archive SELECT * FROM d", "INSERT",
     "archive"},
    {0, "CREATE TABLE IF NOT EXISTS s.widgets (id int primary key, n text default 'x')",
     "CREATE TABLE IF NOT EXISTS s.widgets (id int primary key, n text default ?)", "CREATE",
     "s.widgets"},
    {0, "CREATE UNLOGGED TABLE tmp1 (a int)", "CREATE UNLOGGED TABLE tmp1 (a int)", "CREATE",
     "tmp1"},
    {0, "DROP TABLE IF EXISTS old_stuff", "DROP TABLE IF EXISTS old_stuff", "DROP", "old_stuff"},
    {0, "ALTER TABLE ONLY t2 ADD COLUMN c int", "ALTER TABLE ONLY t2 ADD COLUMN c int", "ALTER",
     "t2"},
    {0, "CREATE INDEX i1 ON t (a)", "CREATE INDEX i1 ON t (a)", "CREATE", ""},
    {0, "SET search_path = 'abc'", "SET search_path = ?", "SET", ""},
    {0, "show server_version", "show server_version", "SHOW", ""},
    {0, "(SELECT 1 FROM t1) UNION (SELECT 2 FROM t2)",
     "(SELECT ? FROM t1) UNION (SELECT ? FROM t2)", "SELECT", "t1"},
    {0, "DELETE FROM ONLY logs", "DELETE FROM ONLY logs", "DELETE", "logs"},
    {0, "UPDATE \"Acc\" SET v = 1", "UPDATE \"Acc\" SET v = ?", "UPDATE", "Acc"},
    /* MySQL-isms */
    {1, "SELECT * FROM `db`.`users` WHERE `name` = \"bob\" # who\n LIMIT 10",
     "SELECT * FROM `db`.`users` WHERE `name` = ? LIMIT ?", "SELECT", "db.users"},
    {1, "INSERT IGNORE INTO t (a) VALUES ('it\\'s'), (0x1F)",
     "INSERT IGNORE INTO t (a) VALUES (?), (?)", "INSERT", "t"},
    {1, "INSERT t SET a = 1", "INSERT t SET a = ?", "INSERT", "t"},
    {1, "REPLACE INTO kv VALUES (1, 'v')", "REPLACE INTO kv VALUES (?, ?)", "REPLACE", "kv"},
    {1, "UPDATE LOW_PRIORITY IGNORE t SET a = a + 1 LIMIT 5",
     "UPDATE LOW_PRIORITY IGNORE t SET a = a + ? LIMIT ?", "UPDATE", "t"},
    {1, "DELETE QUICK FROM t WHERE id = 1", "DELETE QUICK FROM t WHERE id = ?", "DELETE", "t"},
    {1, "DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a", "DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a",
     "DELETE", ""},
    {1, "UPDATE t1, t2 SET t1.a = t2.a", "UPDATE t1, t2 SET t1.a = t2.a", "UPDATE", ""},
    {1, "SELECT _utf8mb4'abc' COLLATE utf8mb4_bin", "SELECT ? COLLATE utf8mb4_bin", "SELECT", ""},
    {1, "SELECT @@version_comment LIMIT 1", "SELECT @@version_comment LIMIT ?", "SELECT", ""},
    {1, "SELECT a FROM t WHERE b = ? AND c IN (?, ?)", "SELECT a FROM t WHERE b = ? AND c IN (?)",
     "SELECT", "t"},
    {1, "use `shop`", "use `shop`", "USE", ""},
    {1, "LOCK TABLES orders WRITE", "LOCK TABLES orders WRITE", "LOCK", "orders"},
    {1, "SELECT \"a\"\"b\", 'c\\\\' FROM t", "SELECT ?, ? FROM t", "SELECT", "t"},
    {0, "SELECT 'unterminated", "SELECT ?", "SELECT", ""},
    {0, "", "", "", ""},
};

static void test_table(void)
{
	char out[512], op[32], coll[128];

	CHECK(sizeof(cases) / sizeof(cases[0]) >= 40);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sql_case *c = &cases[i];
		size_t n =
		    sql_obfuscate_dialect(c->in, strlen(c->in), out, sizeof(out), c->dialect);
		CHECK_EQ_STR(out, c->obfuscated);
		CHECK_EQ_INT(n, strlen(c->obfuscated));
		int rc = sql_operation_and_collection(c->in, op, sizeof(op), coll, sizeof(coll));
		CHECK_EQ_STR(op, c->op);
		CHECK_EQ_STR(coll, c->coll);
		CHECK_EQ_INT(rc, c->op[0] ? 0 : -EINVAL);
	}
}

static void test_standard_double_quotes_differ_from_mysql(void)
{
	char out[64];

	sql_obfuscate("SELECT \"secret\"", 15, out, sizeof(out));
	CHECK_EQ_STR(out, "SELECT \"secret\"");
	sql_obfuscate_dialect("SELECT \"secret\"", 15, out, sizeof(out), SQL_DIALECT_MYSQL);
	CHECK_EQ_STR(out, "SELECT ?");
	/* # is an operator outside MySQL */
	sql_obfuscate("SELECT 5 # 3", 12, out, sizeof(out));
	CHECK_EQ_STR(out, "SELECT ? # ?");
}

static void test_truncation_and_bounds(void)
{
	char out[8];
	const char *sql = "SELECT 123 FROM tbl";

	CHECK_EQ_INT(sql_obfuscate(sql, strlen(sql), out, sizeof(out)), 7);
	CHECK_EQ_STR(out, "SELECT ");
	CHECK_EQ_INT(sql_obfuscate(sql, strlen(sql), out, 1), 0);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(sql_obfuscate(sql, strlen(sql), out, 0), 0);
	/* len limits the input: no NUL needed */
	char big[32];
	sql_obfuscate("SELECT 1xyz", 8, big, sizeof(big));
	CHECK_EQ_STR(big, "SELECT ?");
	/* an embedded NUL ends the text */
	sql_obfuscate("SEL\0ECT", 7, big, sizeof(big));
	CHECK_EQ_STR(big, "SEL");
	/* fuzzer find: a NUL inside a quoted identifier */
	CHECK_EQ_INT(sql_obfuscate("`\0#", 3, big, sizeof(big)), 1);
	CHECK_EQ_STR(big, "`");

	char op[4], coll[4];
	sql_operation_and_collection("DELETE FROM abcdef", op, sizeof(op), coll, sizeof(coll));
	CHECK_EQ_STR(op, "DEL");
	CHECK_EQ_STR(coll, "abc");
	CHECK_EQ_INT(sql_operation_and_collection(NULL, op, sizeof(op), coll, sizeof(coll)),
	             -EINVAL);
	CHECK_EQ_INT(sql_operation_and_collection("12 + 3", op, sizeof(op), coll, sizeof(coll)),
	             -EINVAL);
	CHECK_EQ_STR(op, "");
}

static void test_literals_never_leak(void)
{
	/* secrets in every literal form must not reach the output */
	static const char *const stmts[] = {
	    "SELECT 'secret'",  "SELECT E'sec\\'ret'",   "SELECT $q$secret$q$",
	    "SELECT x'5ec2e7'", "SELECT 'a' 'secret'",   "SELECT 'x''secret'",
	    "SELECT $$secret",  "SELECT /* secret */ 1", "SELECT 1 -- secret",
	};
	char out[128];

	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		sql_obfuscate(stmts[i], strlen(stmts[i]), out, sizeof(out));
		CHECK(strstr(out, "secret") == NULL);
		CHECK(strstr(out, "5ec2e7") == NULL);
	}
}

int main(void)
{
	RUN(test_table);
	RUN(test_standard_double_quotes_differ_from_mysql);
	RUN(test_truncation_and_bounds);
	RUN(test_literals_never_leak);
	return unit_summary("test_sql_obfuscate");
}

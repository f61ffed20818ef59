/* test_http2_span.c — gRPC calls from HTTP/2 streams: names from :path,
 * status from trailers, Trailers-Only, RST_STREAM, deadlines and :status,
 * and the ERROR rule of each side. */
#include <string.h>

#include "telemetry/http2_span.h"
#include "unit.h"

static struct http2_exchange grpc_ex(const char *path)
{
	struct http2_exchange ex;

	memset(&ex, 0, sizeof(ex));
	snprintf(ex.path, sizeof(ex.path), "%s", path);
	snprintf(ex.content_type, sizeof(ex.content_type), "application/grpc+proto");
	ex.grpc_status = -1;
	ex.req_start_ns = 1000;
	ex.resp_end_ns = 2000;
	return ex;
}

static void test_names_and_status(void)
{
	struct http2_exchange ex = grpc_ex("/pkg.v1.Greeter/SayHello");
	struct grpc_call call;

	CHECK(http2_is_grpc(&ex));
	ex.status = 200;
	ex.grpc_status = 0;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_STR(call.service, "pkg.v1.Greeter");
	CHECK_EQ_STR(call.method, "SayHello");
	CHECK_EQ_INT(call.status, 0);
	CHECK(!call.error);

	ex.grpc_status = 5; /* NOT_FOUND: an error for the client only */
	grpc_call_of(&ex, true, &call);
	CHECK(!call.error);
	grpc_call_of(&ex, false, &call);
	CHECK(call.error);
	ex.grpc_status = 13; /* INTERNAL: both */
	grpc_call_of(&ex, true, &call);
	CHECK(call.error);

	/* no grpc-status: the HTTP status mapped */
	ex.grpc_status = -1;
	ex.status = 404;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_INT(call.status, 12);
	ex.status = 503;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_INT(call.status, 14);
	/* undecodable headers: unknown, not guessed */
	ex.status = 200;
	ex.unknown_headers = true;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_INT(call.status, -1);
	CHECK(!call.error);

	/* RST_STREAM CANCEL: cancelled, or the deadline when it came at grpc-timeout */
	ex = grpc_ex("/a.B/C");
	ex.end = HTTP2_END_RST;
	ex.error_code = 8;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_INT(call.status, 1);
	CHECK(!call.error);
	ex.grpc_timeout_ns = 1000;
	grpc_call_of(&ex, true, &call);
	CHECK_EQ_INT(call.status, 4);
	CHECK(call.error);
	ex.end = HTTP2_END_GOAWAY;
	ex.grpc_timeout_ns = 0;
	grpc_call_of(&ex, false, &call);
	CHECK_EQ_INT(call.status, 14);

	/* a late-joined stream without content-type but with grpc-status is gRPC */
	ex = grpc_ex("");
	ex.content_type[0] = '\0';
	CHECK(!http2_is_grpc(&ex));
	ex.grpc_status = 0;
	CHECK(http2_is_grpc(&ex));
	grpc_call_of(&ex, false, &call);
	CHECK_EQ_STR(call.service, "");
	/* or, with an unreadable content-type (unknown dynamic entry), when the
	 * request body has gRPC message framing and the path could be a method */
	ex = grpc_ex("/demo.Echo/Unary");
	ex.content_type[0] = '\0';
	ex.unknown_headers = true;
	CHECK(!http2_is_grpc(&ex));
	ex.grpc_framed = 1;
	CHECK(http2_is_grpc(&ex));
	ex.path[0] = '\0'; /* the :path unknown too */
	CHECK(http2_is_grpc(&ex));
	snprintf(ex.path, sizeof(ex.path), "/static/js/app.js"); /* not /service/method */
	CHECK(!http2_is_grpc(&ex));
	snprintf(ex.path, sizeof(ex.path), "/health");
	CHECK(!http2_is_grpc(&ex));
	snprintf(ex.path, sizeof(ex.path), "/demo.Echo/Unary");
	ex.unknown_headers = false; /* every header read: no content-type, not gRPC */
	CHECK(!http2_is_grpc(&ex));
	snprintf(ex.content_type, sizeof(ex.content_type), "application/octet-stream");
	ex.unknown_headers = true;
	CHECK(!http2_is_grpc(&ex));
	/* garbage paths give no names */
	ex = grpc_ex("/nope");
	grpc_call_of(&ex, false, &call);
	CHECK_EQ_STR(call.service, "");
}

int main(void)
{
	RUN(test_names_and_status);
	return unit_summary("test_http2_span");
}

// How each refusal reads to each protocol: one table, so an HTTP client and
// a SOCKS client are told the same thing for the same cause, and the error
// counters and logs use the same classes.
#pragma once

#include <string>

#include "worker/pipeline_types.h"
#include "worker/upstream_connector.h"

namespace worker {

// The refusal for `cause`, with its HTTP status, SOCKS reply, Proxy-Status
// error type and error class from the table.
Refusal make_refusal(RefusalCause cause, std::string detail);
// The same with the HTTP status the protocol chose for it (a 400-class
// parse error: 414, 431, 501, 505...).
Refusal make_refusal(RefusalCause cause, int http_status, std::string detail);

// The cause of a failed connection attempt.
RefusalCause cause_of(ConnectError error);

// A short stable name ("port_denied"), for the exchange record.
const char* cause_name(RefusalCause cause);

}  // namespace worker

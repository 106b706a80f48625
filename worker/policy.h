// Policy: every decision about whether a client may have what it asked for,
// in one place, as pure functions. They run at three depths, because each
// check is only effective at its own:
//
//   check_client()            the pipeline's first stage, before credentials
//                             are looked at: allow_clients. Not at accept:
//                             a refused client is told so in its protocol
//                             (403, SOCKS5 REP 02, SOCKS4 5B) and logged,
//                             as squid does, instead of a silent close
//   authorize()               once the protocol has its Intent, before
//                             anything is resolved: connect_ports, Via loops
//   check_dialled_address()   on every address the dialler is about to
//                             connect to (after DNS): our own listeners and,
//                             with deny_private_destinations, private
//                             ranges. Checking the dialled address, not the
//                             name, is what defeats odd spellings and DNS
//                             rebinding.
#pragma once

#include <optional>

#include "common/address.h"
#include "common/config.h"
#include "worker/pipeline_types.h"
#include "worker/upstream_connector.h"

namespace worker {

bool client_allowed(const common::AclConfig& acl, const common::SocketAddress& client);
// nullopt when `client` is in allow_clients; else the refusal (403).
std::optional<Refusal> check_client(const common::AclConfig& acl,
                                    const common::SocketAddress& client);

// nullopt when the intent may go on to routing; else why not.
std::optional<Refusal> authorize(const common::AclConfig& acl, const Intent& intent);

enum class DialVerdict { kAllowed, kOwnListener, kPrivate };
DialVerdict check_dialled_address(const ConnectPolicy& policy,
                                  const common::SocketAddress& address);

// What `address` means when dialled from this host: an IPv4-mapped IPv6
// address is its IPv4 address, and the unspecified address reaches the
// loopback interface.
common::SocketAddress as_dialled(const common::SocketAddress& address);

}  // namespace worker

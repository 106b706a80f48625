// TLS for listeners: clients that speak TLS to the proxy (an "HTTPS proxy"),
// and towards https parent proxies.
// Server contexts are made while the configuration is loaded, that is in the
// master, at start and on every reload, so a bad certificate refuses the
// configuration with the reason, and workers inherit a ready context.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace common::tls {

using SharedSslCtx = std::shared_ptr<SSL_CTX>;

// TLS 1.2 and 1.3 only, forward-secret AEAD cipher suites for 1.2, ALPN
// "http/1.1", no session tickets across generations. Returns nullptr and
// sets `error` (with OpenSSL's reason) when the files don't load or the key
// doesn't match the certificate.
SharedSslCtx create_server_context(const std::string& certificate_file, const std::string& key_file,
                                   std::string& error);

// TLS towards an https parent proxy: TLS 1.2 and 1.3, the peer's
// certificate verified against `ca_file` (PEM; empty: the system's default
// store). The host name is checked per connection (worker/parent_handshake).
// Returns nullptr and sets `error` when the CA file does not load.
SharedSslCtx create_client_context(const std::string& ca_file, std::string& error);

// OpenSSL's error queue as one line, emptied; "" when it is empty.
std::string take_openssl_errors();

}  // namespace common::tls

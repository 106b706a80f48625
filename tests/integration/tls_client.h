// A TLS client for integration tests: raw bytes over TLS to a proxyd TLS
// listener (HTTPS proxy, SOCKS over TLS) or a TLS origin, with half-close.
//
// Blocking in appearance, bounded in fact: the socket is non-blocking and
// every call polls until its own deadline, so no call can hang a test.
// curl cannot half-close a proxy connection or speak SOCKS over TLS; this
// can:
//
//   harness::TlsClient client;
//   ASSERT_TRUE(client.connect(proxy.listener_port("https"), {.ca_file = cert}))
//       << client.error();
//   client.send("CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
//   auto head = client.read_at_least(39);
//   client.shutdown_write();                 // close_notify, then FIN
//   std::string rest = client.read_until_close(5s);
//
// An end of stream without close_notify (a peer that only shut its socket
// down, as proxyd's tunnel does) is an EOF like a clean one, after which
// the client may still send: OpenSSL cannot tell them apart then.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tests/integration/harness.h"

namespace harness {

// How TlsClient::connect() sets up the connection.
struct TlsClientOptions {
    // Verify the server against this CA file (and the name 127.0.0.1)
    // when set; no verification otherwise.
    std::string ca_file;
    std::string sni;         // server name sent in the handshake; none when empty
    int max_version = 0;     // e.g. TLS1_2_VERSION; 0: the library's default
    std::string alpn;        // wire format, e.g. "\x02h2\x08http/1.1"
    std::string ciphers;     // TLS 1.2 cipher list when set
    int receive_buffer = 0;  // SO_RCVBUF before connecting, when > 0
    // Sent in clear once TCP is up, before the handshake: what a load
    // balancer puts in front (a PROXY protocol header).
    std::string preface;
};

class TlsClient {
  public:
    using Options = TlsClientOptions;

    TlsClient() = default;
    ~TlsClient();
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    // TCP connect to host:port and TLS handshake, within `timeout`. False,
    // with error() saying which step failed and why, on failure.
    bool connect(uint16_t port, const Options& options = Options(), Millis timeout = 5s,
                 const std::string& host = "127.0.0.1");
    bool connected() const { return ssl_ != nullptr; }
    const std::string& error() const { return error_; }
    int fd() const { return fd_; }
    // The client's own port ("127.0.0.1:<this>" in the proxy's logs); 0 if
    // not connected.
    uint16_t local_port() const;

    // The negotiated protocol version (TLS1_3_VERSION...), ALPN protocol and
    // the SHA-256 fingerprint of the server's certificate (hex bytes
    // separated by spaces); 0 / "" when not connected.
    int version() const;
    std::string alpn() const;
    std::string peer_fingerprint() const;

    // Writes all of `data`; false on error or when `timeout` passes first
    // (then sent_bytes() tells how much got out).
    bool send(std::string_view data, Millis timeout = 5s);
    uint64_t sent_bytes() const { return sent_; }
    // The data of one read within `timeout`; "" on timeout, EOF or error
    // (see eof()).
    std::string recv_some(Millis timeout = 5s);
    // Reads until `n` bytes, EOF, error or `timeout`; returns what it read.
    std::string read_at_least(size_t n, Millis timeout = 5s);
    // Reads until the peer ends the stream or `timeout` passes; everything
    // read. `closed` tells whether the end came in time.
    std::string read_until_close(Millis timeout, bool* closed = nullptr);
    // The peer ended its stream (close_notify, TCP EOF or reset) or the
    // connection failed.
    bool eof() const { return eof_; }

    // Half-close: sends close_notify (unless `notify` is false: a dirty
    // end, like a client that only shuts its socket down), then
    // shutdown(SHUT_WR). Reading goes on. False if close_notify could not be
    // written within `timeout`.
    bool shutdown_write(bool notify = true, Millis timeout = 5s);
    // Closes with a TCP reset (SO_LINGER 0), without close_notify.
    void reset();
    void close();

  private:
    bool fail(const std::string& what);
    // Waits until the socket is ready for what OpenSSL asked (`ssl_error`
    // is SSL_ERROR_WANT_READ or _WANT_WRITE) or the deadline passes.
    bool wait_ready(int ssl_error, Clock::time_point deadline);

    void* ctx_ = nullptr;  // SSL_CTX*, owned
    void* ssl_ = nullptr;  // SSL*, owned
    int fd_ = -1;
    bool eof_ = false;
    uint64_t sent_ = 0;
    std::string error_;
};

// The SHA-256 fingerprint of the first certificate in a PEM file, in the
// form of TlsClient::peer_fingerprint(); "" when there is none.
std::string certificate_fingerprint(const std::string& pem_path);

}  // namespace harness

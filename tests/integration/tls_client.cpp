#include "tests/integration/tls_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace harness {

namespace {

SSL* as_ssl(void* p) {
    return static_cast<SSL*>(p);
}

std::string openssl_errors() {
    std::string text;
    while (unsigned long code = ERR_get_error()) {
        char line[256];
        ERR_error_string_n(code, line, sizeof line);
        if (!text.empty()) text += "; ";
        text += line;
    }
    return text;
}

// OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a write to a peer
// that closed raises SIGPIPE, which would kill the test binary. The signal
// is blocked in the calling thread for the call, and one it raised is
// taken (it is directed at the thread that wrote) before unblocking.
class NoSigpipe {
  public:
    NoSigpipe() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~NoSigpipe() {
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            timespec now{0, 0};
            sigtimedwait(&pipe_, nullptr, &now);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;

  private:
    sigset_t pipe_;
    sigset_t old_;
};

// SHA-256 of a certificate as hex(); "" for none.
std::string fingerprint(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &length) != 1) return "";
    return hex(std::string_view(reinterpret_cast<const char*>(md), length));
}

int millis_until(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

// A non-blocking TCP connection to host:port within the deadline; -1 on
// failure (errno set).
int connect_socket(const std::string& host, uint16_t port, int receive_buffer,
                   Clock::time_point deadline) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Before connect, so the window offered in the handshake is small too.
    if (receive_buffer > 0) {
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || ::poll(&p, 1, millis_until(deadline)) != 1 ||
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            int saved = err != 0 ? err : (errno == EINPROGRESS ? ETIMEDOUT : errno);
            ::close(fd);
            errno = saved;
            return -1;
        }
    }
    return fd;
}

// Writes all of `data` on the non-blocking socket before the deadline.
bool send_preface(int fd, std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, millis_until(deadline)) != 1) return false;
    }
    return true;
}

}  // namespace

TlsClient::~TlsClient() {
    close();
}

bool TlsClient::connect(uint16_t port, const Options& options, Millis timeout,
                        const std::string& host) {
    close();
    error_.clear();
    ERR_clear_error();
    auto deadline = Clock::now() + timeout;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    ctx_ = ctx;
    if (ctx == nullptr) return fail("SSL_CTX_new");
    // A peer that ends its stream without close_notify (proxyd's tunnel
    // passes a half-close on as a TCP FIN) is an EOF, not a fatal error
    // that would forbid writing afterwards.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx, options.max_version);
    if (!options.ciphers.empty()) SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str());
    if (!options.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
            return fail("loading CA " + options.ca_file);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    fd_ = connect_socket(host, port, options.receive_buffer, deadline);
    if (fd_ < 0) return fail("connect to " + host + ":" + std::to_string(port));
    if (!options.preface.empty() && !send_preface(fd_, options.preface, deadline)) {
        return fail("sending the preface");
    }
    SSL* ssl = SSL_new(ctx);
    ssl_ = ssl;
    if (ssl == nullptr) return fail("SSL_new");
    SSL_set_fd(ssl, fd_);
    if (!options.ca_file.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    if (!options.sni.empty()) SSL_set_tlsext_host_name(ssl, options.sni.c_str());
    if (!options.alpn.empty()) {
        SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(options.alpn.data()),
                            static_cast<unsigned>(options.alpn.size()));
    }
    NoSigpipe no_sigpipe;
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1) return true;
        if (!wait_ready(SSL_get_error(ssl, r), deadline)) return fail("TLS handshake");
    }
}

uint16_t TlsClient::local_port() const {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) != 0) return 0;
    return ntohs(sin.sin_port);
}

int TlsClient::version() const {
    return ssl_ == nullptr ? 0 : SSL_version(as_ssl(ssl_));
}

std::string TlsClient::alpn() const {
    const unsigned char* data = nullptr;
    unsigned length = 0;
    if (ssl_ != nullptr) SSL_get0_alpn_selected(as_ssl(ssl_), &data, &length);
    return data == nullptr ? "" : std::string(reinterpret_cast<const char*>(data), length);
}

std::string TlsClient::peer_fingerprint() const {
    if (ssl_ == nullptr) return "";
    X509* cert = SSL_get1_peer_certificate(as_ssl(ssl_));
    std::string out = fingerprint(cert);
    X509_free(cert);
    return out;
}

std::string certificate_fingerprint(const std::string& pem_path) {
    BIO* bio = BIO_new_file(pem_path.c_str(), "r");
    if (bio == nullptr) return "";
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    std::string out = fingerprint(cert);
    X509_free(cert);
    return out;
}

bool TlsClient::send(std::string_view data, Millis timeout) {
    if (ssl_ == nullptr) return false;
    NoSigpipe no_sigpipe;
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        ERR_clear_error();
        int n = SSL_write(as_ssl(ssl_), data.data(), static_cast<int>(data.size()));
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
            sent_ += static_cast<uint64_t>(n);
            continue;
        }
        if (!wait_ready(SSL_get_error(as_ssl(ssl_), n), deadline)) return false;
    }
    return true;
}

std::string TlsClient::recv_some(Millis timeout) {
    if (ssl_ == nullptr || eof_) return "";
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    NoSigpipe no_sigpipe;  // a read may write too (a key update, a ticket)
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(as_ssl(ssl_), buf, sizeof buf);
        if (n > 0) return std::string(buf, static_cast<size_t>(n));
        int e = SSL_get_error(as_ssl(ssl_), n);
        if (e == SSL_ERROR_ZERO_RETURN) {
            eof_ = true;  // close_notify, or a bare FIN (SSL_OP_IGNORE_UNEXPECTED_EOF)
            return "";
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            eof_ = true;  // reset or a TLS error: the stream is over
            return "";
        }
        if (!wait_ready(e, deadline)) return "";
    }
}

std::string TlsClient::read_at_least(size_t n, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    std::string out;
    while (out.size() < n && !eof_) {
        std::string part = recv_some(Millis(millis_until(deadline)));
        if (part.empty()) break;
        out += part;
    }
    return out;
}

std::string TlsClient::read_until_close(Millis timeout, bool* closed) {
    std::string out = read_at_least(SIZE_MAX, timeout);
    if (closed != nullptr) *closed = eof_;
    return out;
}

bool TlsClient::shutdown_write(bool notify, Millis timeout) {
    if (ssl_ == nullptr) return false;
    bool ok = true;
    NoSigpipe no_sigpipe;
    if (notify) {
        auto deadline = Clock::now() + timeout;
        // 0: close_notify sent, the peer's not yet seen; 1: both. Either way
        // ours is out once it returns >= 0.
        for (;;) {
            ERR_clear_error();
            int r = SSL_shutdown(as_ssl(ssl_));
            if (r >= 0) break;
            if (!wait_ready(SSL_get_error(as_ssl(ssl_), r), deadline)) {
                ok = false;
                break;
            }
        }
    }
    ::shutdown(fd_, SHUT_WR);
    return ok;
}

void TlsClient::reset() {
    if (fd_ >= 0) {
        linger hard{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    close();
}

void TlsClient::close() {
    if (ssl_ != nullptr) SSL_free(as_ssl(ssl_));
    if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
    if (fd_ >= 0) ::close(fd_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    fd_ = -1;
    eof_ = false;
    sent_ = 0;
}

bool TlsClient::fail(const std::string& what) {
    int saved = errno;
    error_ = what + " failed: " + openssl_errors() + " (errno " + std::to_string(saved) + ": " +
             std::strerror(saved) + ")";
    return false;
}

bool TlsClient::wait_ready(int ssl_error, Clock::time_point deadline) {
    short events;
    if (ssl_error == SSL_ERROR_WANT_READ) {
        events = POLLIN;
    } else if (ssl_error == SSL_ERROR_WANT_WRITE) {
        events = POLLOUT;
    } else {
        return false;  // a real error, not a wait
    }
    pollfd p{fd_, events, 0};
    int r;
    do {
        r = ::poll(&p, 1, millis_until(deadline));
    } while (r < 0 && errno == EINTR);
    return r == 1;
}

}  // namespace harness

#include "common/tls.h"

#include <openssl/err.h>

#include <cstring>

namespace common::tls {

namespace {

// Modern TLS 1.2 suites (ECDHE + AEAD); TLS 1.3 suites are OpenSSL's
// defaults, which are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ALPN: proxyd speaks HTTP/1.1 only; a client offering only h2 gets no
// ALPN answer and may still go on with HTTP/1.1.
int on_alpn_select(SSL*, const unsigned char** out, unsigned char* out_length,
                   const unsigned char* in, unsigned int in_length, void*) noexcept {
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof(kHttp11), in, in_length) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string take_openssl_errors() {
    std::string text;
    while (unsigned long code = ERR_get_error()) {
        char line[256];
        ERR_error_string_n(code, line, sizeof(line));
        if (!text.empty()) text += "; ";
        text += line;
    }
    return text;
}

SharedSslCtx create_server_context(const std::string& certificate_file, const std::string& key_file,
                                   std::string& error) {
    ERR_clear_error();
    SharedSslCtx ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx) {
        error = "SSL_CTX_new() failed: " + take_openssl_errors();
        return nullptr;
    }
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    // IGNORE_UNEXPECTED_EOF: a client that closes without close_notify ends
    // its stream like a TCP EOF (OpenSSL 3 reports it as an error otherwise).
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);  // less memory per idle connection
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) {
        error = "no usable TLS 1.2 cipher suites: " + take_openssl_errors();
        return nullptr;
    }
    if (SSL_CTX_use_certificate_chain_file(c, certificate_file.c_str()) != 1) {
        error = "cannot load certificate \"" + certificate_file + "\": " + take_openssl_errors();
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        error = "cannot load private key \"" + key_file + "\": " + take_openssl_errors();
        return nullptr;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        error = "private key \"" + key_file + "\" does not match certificate \"" +
                certificate_file + "\"";
        ERR_clear_error();
        return nullptr;
    }
    SSL_CTX_set_alpn_select_cb(c, on_alpn_select, nullptr);
    return ctx;
}

SharedSslCtx create_client_context(const std::string& ca_file, std::string& error) {
    ERR_clear_error();
    SharedSslCtx ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) {
        error = "SSL_CTX_new() failed: " + take_openssl_errors();
        return nullptr;
    }
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(
        c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) {
        error = "no usable TLS 1.2 cipher suites: " + take_openssl_errors();
        return nullptr;
    }
    int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(c)
                                 : SSL_CTX_load_verify_locations(c, ca_file.c_str(), nullptr);
    if (loaded != 1) {
        error = ca_file.empty() ? "cannot load the system's CA certificates: "
                                : "cannot load CA file \"" + ca_file + "\": ";
        error += take_openssl_errors();
        return nullptr;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    return ctx;
}

}  // namespace common::tls

#pragma once

#include "core/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::remote {

/// An `http://` or `https://` URL split into what a request needs.
struct url {
    std::string text; ///< as given
    bool tls = false;
    std::string host;
    std::string port;   ///< "443" when the URL names none
    std::string target; ///< path and query, "/" when empty
    /// `https://host:port`: connections are pooled per origin.
    [[nodiscard]] std::string origin() const;
    /// The URL for messages and logs: its query, which may hold a signature, is left out.
    [[nodiscard]] std::string shown() const;
};

/// \throws config_error for a URL that is not `http(s)://host[:port][/path]`, naming it
[[nodiscard]] url parse_url(std::string_view text);

/// How the client connects and how long it waits (the `pmtiles` section's keys).
struct client_options {
    /// PEM file of the CAs to trust; unset: the system's (OpenSSL's defaults, which honour
    /// SSL_CERT_FILE and SSL_CERT_DIR).
    std::optional<std::string> ca_file;
    bool verify = true; ///< false: any certificate is accepted (`allow_invalid_certificates`)
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds timeout{30'000}; ///< for one request, from writing it to its last byte
    int attempts = 3; ///< tries of one request when the network or the server (5xx, 429) fails
    std::size_t max_idle_per_origin = 32;
    std::chrono::milliseconds idle_timeout{30'000}; ///< an idle connection older than this is closed
};

/// The answer to a range request.
struct range_reply {
    unsigned status = 0;
    std::string body;
    std::string etag;        ///< as the server sent it, quotes included; empty when none
    std::uint64_t total = 0; ///< the resource's size from Content-Range; 0 when not given
    bool whole = false;      ///< 200: the server sent the whole resource instead of the range
};

/// Counters for tests and metrics.
struct client_stats {
    std::uint64_t requests = 0;    ///< requests written
    std::uint64_t connections = 0; ///< connections opened
    std::uint64_t retries = 0;
};

/// The failure of a request after its retries: the message names the cause and the fix (the
/// caller names the URL).
class request_error : public error {
  public:
    using error::error;
};

/// A keep-alive HTTP/1.1 client for byte ranges, on Beast with OpenSSL. Connections are kept per
/// origin and reused; each runs its I/O on its own strand of `io` (a thread pool), so no event
/// loop of the server ever does it. TLS verifies the chain and the host name. Network failures,
/// 5xx and 429 are retried with backoff up to `attempts`; a reused connection the server had
/// closed is replaced without counting. Thread-safe.
class http_client {
  public:
    /// \throws config_error when `ca_file` cannot be loaded
    http_client(boost::asio::any_io_executor io, client_options options);
    ~http_client();
    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    /// GET `bytes=offset..offset+length-1` of `where`, with `If-Match: if_match` unless empty.
    /// Any status comes back; the caller decides what it means.
    /// \throws request_error when no answer could be had
    [[nodiscard]] boost::asio::awaitable<range_reply> get_range(url const& where, std::uint64_t offset,
                                                                std::uint64_t length, std::string if_match);

    [[nodiscard]] client_stats stats() const;

  private:
    struct impl;
    std::shared_ptr<impl> m_impl;
};

} // namespace kachel::remote

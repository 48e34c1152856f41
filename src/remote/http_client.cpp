#include "remote/http_client.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#ifndef KACHEL_VERSION
#define KACHEL_VERSION "0.0.0"
#endif

namespace kachel::remote {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

std::string url::origin() const {
    return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port);
}

std::string url::shown() const {
    auto const query = target.find('?');
    return fmt::format("{}{}{}", origin(), target.substr(0, query), query == std::string::npos ? "" : "?...");
}

url parse_url(std::string_view text) {
    url out;
    out.text = std::string{text};
    std::string_view rest;
    if (text.starts_with("https://")) {
        out.tls = true;
        rest = text.substr(8);
    } else if (text.starts_with("http://")) {
        rest = text.substr(7);
    } else {
        throw config_error{fmt_error("{} is not an http:// or https:// URL", text)};
    }
    auto const slash = rest.find_first_of("/?#");
    auto authority = rest.substr(0, slash);
    out.target = slash == std::string_view::npos ? "/" : std::string{rest.substr(slash)};
    if (auto const hash = out.target.find('#'); hash != std::string::npos) {
        out.target.erase(hash);
    }
    if (out.target.starts_with('?')) {
        out.target.insert(0, "/");
    }
    if (authority.find('@') != std::string_view::npos) {
        throw config_error{
            fmt_error("{}://...: the URL carries a user name or password; kachel does not send "
                      "credentials in URLs: give a URL without them",
                      out.tls ? "https" : "http")};
    }
    out.port = out.tls ? "443" : "80";
    if (authority.starts_with('[')) { // [IPv6]:port
        auto const close = authority.find(']');
        if (close == std::string_view::npos) {
            throw config_error{fmt_error("{}: the IPv6 address has no closing ']'", text)};
        }
        out.host = std::string{authority.substr(1, close - 1)};
        authority.remove_prefix(close + 1);
        if (authority.starts_with(':')) {
            out.port = std::string{authority.substr(1)};
        } else if (!authority.empty()) {
            throw config_error{fmt_error("{}: unexpected text after the IPv6 address", text)};
        }
    } else if (auto const colon = authority.rfind(':'); colon != std::string_view::npos) {
        out.host = std::string{authority.substr(0, colon)};
        out.port = std::string{authority.substr(colon + 1)};
    } else {
        out.host = std::string{authority};
    }
    if (out.host.empty()) {
        throw config_error{fmt_error("{} names no host", text)};
    }
    if (out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos) {
        throw config_error{fmt_error("{}: the port '{}' is not a number", text, out.port)};
    }
    return out;
}

namespace {

/// One keep-alive connection: its strand, its stream (plain or TLS) and its read buffer.
struct connection {
    explicit connection(asio::any_io_executor const& io) : strand(asio::make_strand(io)) {}

    asio::strand<asio::any_io_executor> strand;
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    clock::time_point idle_since;
    bool open = false;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

/// What one exchange on one connection gave.
struct exchange_result {
    range_reply reply;
    std::string failure; ///< empty on success
    bool retry = false;  ///< a failure that another attempt may not have
    bool stale = false;  ///< a reused connection the server had closed: try again at once
    bool keep = false;   ///< the connection may serve another request
};

std::string timeout_text(std::chrono::milliseconds t) {
    return fmt::format("{:.3g} s", std::chrono::duration<double>(t).count());
}

/// `bytes a-b/total` -> total; 0 when absent or unknown (`*`).
std::uint64_t total_of(std::string_view content_range) {
    auto const slash = content_range.rfind('/');
    std::uint64_t total = 0;
    if (slash != std::string_view::npos) {
        auto const digits = content_range.substr(slash + 1);
        std::from_chars(digits.data(), digits.data() + digits.size(), total);
    }
    return total;
}

bool is_closed_by_peer(beast::error_code const& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == ssl::error::stream_truncated;
}

} // namespace

struct http_client::impl {
    impl(asio::any_io_executor executor, client_options given)
        : io(std::move(executor)), options(std::move(given)), context(ssl::context::tls_client) {
        if (options.verify) {
            context.set_verify_mode(ssl::verify_peer);
            boost::system::error_code ec;
            if (options.ca_file) {
                context.load_verify_file(*options.ca_file, ec);
                if (ec) {
                    throw config_error{
                        fmt_error("cannot load the CA file {}: {}; give a PEM file of CA certificates",
                                  *options.ca_file, ec.message())};
                }
            } else {
                context.set_default_verify_paths(ec);
                if (ec) {
                    throw config_error{
                        fmt_error("cannot load the system's CA certificates: {}; install ca-certificates, or "
                                  "give a CA file",
                                  ec.message())};
                }
            }
        } else {
            context.set_verify_mode(ssl::verify_none);
        }
    }

    asio::any_io_executor io;
    client_options options;
    ssl::context context;
    std::mutex mutex;
    std::map<std::string, std::vector<std::unique_ptr<connection>>, std::less<>> idle;
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> retries{0};

    /// An idle connection to `origin` that is young enough, or null.
    std::unique_ptr<connection> take(std::string const& origin) {
        std::lock_guard const lock{mutex};
        auto const it = idle.find(origin);
        while (it != idle.end() && !it->second.empty()) {
            auto c = std::move(it->second.back());
            it->second.pop_back();
            if (clock::now() - c->idle_since < options.idle_timeout) {
                return c;
            }
        }
        return nullptr;
    }

    void give_back(std::string const& origin, std::unique_ptr<connection> c) {
        c->idle_since = clock::now();
        std::lock_guard const lock{mutex};
        auto& list = idle[origin];
        if (list.size() < options.max_idle_per_origin) {
            list.push_back(std::move(c));
        }
    }

    /// Opens `c` to `u`: resolve, connect, and for https the TLS handshake with the host checked.
    asio::awaitable<exchange_result> open(connection& c, url const& u) {
        exchange_result r;
        beast::error_code ec;
        tcp::resolver resolver{c.strand};
        auto const endpoints =
            co_await resolver.async_resolve(u.host, u.port, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            r.failure = fmt::format("cannot resolve {}: {}", u.host, ec.message());
            r.retry = ec != asio::error::host_not_found; // a name that does not exist stays so
            co_return r;
        }
        if (u.tls) {
            c.secure.emplace(c.strand, context);
        } else {
            c.plain.emplace(c.strand);
        }
        ++connections;
        c.lowest().expires_after(options.connect_timeout);
        co_await c.lowest().async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            r.failure = ec == beast::error::timeout
                            ? fmt::format("no connection to {}:{} within {}", u.host, u.port,
                                          timeout_text(options.connect_timeout))
                            : fmt::format("cannot connect to {}:{}: {}", u.host, u.port, ec.message());
            r.retry = true;
            co_return r;
        }
        if (u.tls) {
            auto* native = c.secure->native_handle();
            boost::system::error_code parse_ec;
            auto const ip = asio::ip::make_address(u.host, parse_ec);
            if (parse_ec) {
                SSL_set_tlsext_host_name(native, u.host.c_str()); // NOLINT: OpenSSL's macro
                SSL_set1_host(native, u.host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), ip.to_string().c_str());
            }
            co_await c.secure->async_handshake(ssl::stream_base::client,
                                               asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                auto const verified = SSL_get_verify_result(native);
                if (options.verify && verified != X509_V_OK) {
                    r.failure = fmt::format(
                        "the certificate of {} is not trusted: {}; give the CA that signed it with "
                        "pmtiles.ssl_root_cert (or SSL_CERT_FILE), or fix the server's certificate",
                        u.host, X509_verify_cert_error_string(verified));
                } else {
                    r.failure = fmt::format("the TLS handshake with {}:{} failed: {}", u.host, u.port,
                                            ec == beast::error::timeout ? "timed out" : ec.message());
                    r.retry = true;
                }
                co_return r;
            }
        }
        c.open = true;
        co_return r;
    }

    /// One request and its answer on `c`, which `reused` says had served before.
    asio::awaitable<exchange_result> exchange(connection& c, url const& u, std::uint64_t offset,
                                              std::uint64_t length, std::string const& if_match,
                                              bool reused) {
        if (!c.open) {
            auto opened = co_await open(c, u);
            if (!c.open) {
                co_return opened;
            }
        }
        http::request<http::empty_body> req{http::verb::get, u.target, 11};
        bool const default_port = u.port == (u.tls ? "443" : "80");
        req.set(http::field::host, default_port ? u.host : u.host + ":" + u.port);
        req.set(http::field::user_agent, "kachel/" KACHEL_VERSION);
        req.set(http::field::range, fmt::format("bytes={}-{}", offset, offset + length - 1));
        if (!if_match.empty()) {
            req.set(http::field::if_match, if_match);
        }
        req.keep_alive(true);

        exchange_result r;
        beast::error_code ec;
        http::response_parser<http::string_body> parser;
        parser.body_limit(length + 65'536);
        auto const run = [&](auto& stream) -> asio::awaitable<void> {
            c.lowest().expires_after(options.timeout);
            ++requests;
            co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                co_return;
            }
            co_await http::async_read_header(stream, c.buffer, parser,
                                             asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                co_return;
            }
            // A 200 to a range request is the whole file: read no further unless it is small.
            if (parser.get().result() == http::status::ok &&
                (offset != 0 || !parser.content_length() || *parser.content_length() > length)) {
                r.reply.whole = true;
                co_return;
            }
            co_await http::async_read(stream, c.buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
        };
        if (c.secure) {
            co_await run(*c.secure);
        } else {
            co_await run(*c.plain);
        }
        if (ec) {
            if (reused && is_closed_by_peer(ec) && !parser.is_header_done()) {
                r.stale = true;
            } else if (ec == beast::error::timeout) {
                r.failure = fmt::format("no answer within {}", timeout_text(options.timeout));
                r.retry = true;
            } else if (ec == http::error::body_limit) {
                r.failure =
                    "the answer is larger than the range asked for: the server does not serve byte ranges "
                    "correctly";
            } else {
                r.failure = fmt::format("the connection failed: {}", ec.message());
                r.retry = true;
            }
            co_return r;
        }
        auto& res = parser.get();
        r.reply.status = res.result_int();
        r.reply.etag = std::string{res[http::field::etag]};
        r.reply.total = total_of(res[http::field::content_range]);
        if (!r.reply.whole) {
            r.reply.body = std::move(res.body());
        }
        r.keep = !r.reply.whole && res.keep_alive();
        co_return r;
    }
};

http_client::http_client(asio::any_io_executor io, client_options options)
    : m_impl(std::make_shared<impl>(std::move(io), std::move(options))) {}

http_client::~http_client() = default;

client_stats http_client::stats() const {
    return {m_impl->requests.load(), m_impl->connections.load(), m_impl->retries.load()};
}

asio::awaitable<range_reply> http_client::get_range(url const& where, std::uint64_t offset,
                                                    std::uint64_t length, std::string if_match) {
    auto const self = m_impl;
    auto const origin = where.origin();
    auto backoff = std::chrono::milliseconds{100};
    int stale = 0;
    for (int attempt = 1;; ++attempt) {
        auto c = self->take(origin);
        bool const reused = c != nullptr;
        if (!c) {
            c = std::make_unique<connection>(self->io);
        }
        auto const& conn = *c;
        auto r = co_await asio::co_spawn(
            conn.strand, self->exchange(*c, where, offset, length, if_match, reused),
            // Not cancellable: Asio 1.81 may deliver a cancellation to a finished co_spawn.
            asio::bind_cancellation_slot(asio::cancellation_slot{}, asio::use_awaitable));
        if (r.stale && stale++ < 4) {
            --attempt; // the server closed an idle connection: not a failure of this request
            continue;
        }
        bool const server_busy = r.failure.empty() && (r.reply.status >= 500 || r.reply.status == 429);
        if (r.failure.empty() && !server_busy) {
            if (r.keep) {
                self->give_back(origin, std::move(c));
            }
            co_return std::move(r.reply);
        }
        if ((!r.retry && !server_busy) || attempt >= self->options.attempts) {
            if (server_busy) {
                co_return std::move(r.reply);
            }
            throw request_error{fmt_error("{}{}", r.failure,
                                          attempt > 1 ? fmt::format(" (after {} attempts)", attempt) : "")};
        }
        ++self->retries;
        spdlog::debug("{}: {}; trying again in {} ms", where.shown(),
                      server_busy ? fmt::format("the server answered {}", r.reply.status) : r.failure,
                      backoff.count());
        c.reset();
        asio::steady_timer timer{co_await asio::this_coro::executor, backoff};
        co_await timer.async_wait(asio::use_awaitable);
        backoff *= 4;
    }
}

} // namespace kachel::remote

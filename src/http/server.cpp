#include "http/server.hpp"

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "http/handler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <tuple>

namespace kachel::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds write_timeout{30};

/// Metrics and the access log for one answered request.
void record(request const& req, unsigned status, std::size_t bytes, std::chrono::steady_clock::duration took,
            request_context const& context, server_options const& options, tcp::endpoint const& remote) {
    auto const seconds = std::chrono::duration<double>(took).count();
    auto const method = std::string_view{req.method_string().data(), req.method_string().size()};
    if (context.endpoint != "/_/metrics") {
        global_metrics().count_request(context.endpoint, method, status, seconds);
    }
    if (options.http.access_log) {
        std::string_view const target{req.target().data(), req.target().size()};
        auto const q = target.find('?');
        auto const path = q == std::string_view::npos
                              ? std::string{target}
                              : std::string{target.substr(0, q + 1)} + redact_query(target.substr(q + 1));
        spdlog::info("{} \"{} {}\" {} {} {:.1f}ms cache={}", remote.address().to_string(), method, path,
                     status, bytes, seconds * 1000, context.cache_status);
    }
}

/// Writes a response: its header, formatted into the session's reusable `head` buffer, and its
/// body (a cached tile's shared bytes, or the response's own text) in one gathered write.
/// Beast's serializer produces the same bytes, but walks its buffer sequences for every
/// response; this costs less (measured with bench/run: 5 to 10 % more cached tiles per second).
asio::awaitable<beast::error_code> async_write_response(beast::tcp_stream& stream, response const& res,
                                                        std::string& head) {
    head.clear();
    head.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    std::array<char, 16> status{};
    auto const [status_end, status_ec] =
        std::to_chars(status.data(), status.data() + status.size(), res.result_int());
    std::ignore = status_ec; // 16 characters hold any unsigned
    head.append(status.data(), status_end);
    head.push_back(' ');
    head.append(res.reason());
    head.append("\r\n");
    for (auto const& field : res) {
        head.append(field.name_string());
        head.append(": ");
        head.append(field.value());
        head.append("\r\n");
    }
    head.append("\r\n");
    auto const body = res.body().view();
    std::array const buffers{asio::const_buffer{head.data(), head.size()},
                             asio::const_buffer{body.data(), body.size()}};
    // Everything left at each step, not asio's default of 64 KiB: a large tile in few writes.
    auto const total = head.size() + body.size();
    auto const rest = [total](beast::error_code const& error, std::size_t done) -> std::size_t {
        return error || done >= total ? 0 : total - done;
    };
    auto [ec, written] = co_await asio::async_write(stream, buffers, rest, use_tuple);
    std::ignore = written;
    co_return ec;
}

/// Answers a request that cannot be served and closes the connection; logs why.
asio::awaitable<void> reject(beast::tcp_stream& stream, bhttp::status status, std::string_view message,
                             std::string_view reason) {
    bhttp::response<bhttp::string_body> res{status, 11};
    res.set(bhttp::field::server, "kachel");
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(false);
    res.body() = std::string{message};
    res.prepare_payload();
    stream.expires_after(write_timeout);
    std::ignore = co_await bhttp::async_write(stream, res, use_tuple);
    spdlog::debug("closing HTTP connection: {}", reason);
    // Lingering close: the client may still be sending what was refused. Closing with unread
    // bytes makes the kernel send a reset, which can destroy the answer before the client reads
    // it; so stop sending, then read and drop for a moment (at most 64 KiB, 1 s) before closing.
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds{1});
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < 65536;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) {
            break;
        }
        drained += n;
    }
}

/// True once `buffer` holds the end of the request line.
bool has_request_line(beast::flat_buffer const& buffer) {
    std::string_view const data{static_cast<char const*>(buffer.data().data()), buffer.size()};
    return data.find("\r\n") != std::string_view::npos;
}

/// Takes one off a shared count when it goes out of scope: open connections (counted up when
/// accepted, for the connection cap) and requests in flight (for shutdown).
struct count_release {
    explicit count_release(std::shared_ptr<std::atomic<std::size_t>> counter)
        : m_counter(std::move(counter)) {}
    count_release(count_release const&) = delete;
    count_release& operator=(count_release const&) = delete;
    ~count_release() { --*m_counter; }
    std::shared_ptr<std::atomic<std::size_t>> m_counter;
};

asio::awaitable<void> run_session(beast::tcp_stream stream, std::shared_ptr<tiles::catalog const> catalog,
                                  server_options options, std::shared_ptr<std::atomic<std::size_t>> active) {
    count_release const count{active};
    if (active->load() > options.max_connections) {
        co_await reject(stream, bhttp::status::service_unavailable, "Too many connections, retry later\n",
                        "connection limit reached");
        co_return;
    }
    beast::flat_buffer buffer;
    std::string head; // response headers, reused by every response on this connection
    beast::error_code endpoint_ec;
    auto const remote = stream.socket().remote_endpoint(endpoint_ec);
    for (;;) {
        // Idle between requests for up to keep_alive; once a request starts, its header must
        // arrive within header_timeout.
        if (buffer.size() == 0) {
            stream.expires_after(options.keep_alive);
            auto [idle_ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
            if (idle_ec) {
                if (idle_ec == beast::error::timeout) {
                    spdlog::debug("closing HTTP connection: idle timeout");
                }
                break;
            }
            buffer.commit(n);
        }
        stream.expires_after(options.header_timeout);
        // The request line first, so an overlong target is told apart from overlong headers.
        bool line_failed = false;
        while (!has_request_line(buffer) && buffer.size() <= options.target_limit + 64) {
            auto [line_ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
            if (line_ec) {
                spdlog::debug("closing HTTP connection: {}", line_ec == beast::error::timeout
                                                                 ? "request header too slow"
                                                                 : line_ec.message());
                line_failed = true;
                break;
            }
            buffer.commit(n);
        }
        if (line_failed) {
            break;
        }
        if (!has_request_line(buffer)) {
            co_await reject(stream, bhttp::status::uri_too_long, "URI Too Long\n", "request line too long");
            break;
        }
        bhttp::request_parser<bhttp::empty_body, field_allocator<char>> parser;
        parser.header_limit(options.header_limit);
        auto [read_ec, read_bytes] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
        if (read_ec == bhttp::error::header_limit) {
            co_await reject(stream, bhttp::status::request_header_fields_too_large,
                            "Request Header Fields Too Large\n", "request header too large");
            break;
        }
        if (read_ec == bhttp::error::unexpected_body) {
            co_await reject(stream, bhttp::status::bad_request,
                            "GET and HEAD requests must not have a body\n", "request with a body");
            break;
        }
        if (read_ec) {
            if (read_ec == beast::error::timeout) {
                spdlog::debug("closing HTTP connection: request header too slow");
            } else if (read_ec != bhttp::error::end_of_stream && read_ec != asio::error::operation_aborted) {
                co_await reject(stream, bhttp::status::bad_request, "Bad Request\n", read_ec.message());
            }
            break;
        }
        auto const req = parser.release();
        if (req.target().size() > options.target_limit) {
            co_await reject(stream, bhttp::status::uri_too_long, "URI Too Long\n", "request target too long");
            break;
        }
        auto const started = std::chrono::steady_clock::now();
        ++*options.in_flight;
        count_release const counting{options.in_flight};
        request_context context{remote.address(), &options.http, options.ready};
        context.client = &stream.socket();
        context.cache = options.cache;
        auto res = co_await async_handle_request(req, *catalog, context);
        if (context.client_gone) {
            // 499 "client closed request", as nginx logs it.
            record(req, 499, 0, std::chrono::steady_clock::now() - started, context, options, remote);
            break;
        }
        if (req.method() == bhttp::verb::head) {
            // Same headers as GET, no body.
            auto const length = res.body().size();
            res.body().clear();
            if (res.result() != bhttp::status::no_content) {
                res.content_length(length);
            }
        }
        if (options.stopping->load()) {
            res.keep_alive(false);
        }
        bool const keep_alive = res.keep_alive();
        stream.expires_after(write_timeout);
        // Recorded before the write, so a scrape right after this response already counts it.
        record(req, res.result_int(), res.body().size(), std::chrono::steady_clock::now() - started, context,
               options, remote);
        auto const write_ec = co_await async_write_response(stream, res, head);
        if (write_ec) {
            spdlog::debug("closing HTTP connection: client went away ({})", write_ec.message());
            break;
        }
        if (!keep_alive) {
            break;
        }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> run_acceptor(std::shared_ptr<tcp::acceptor> acceptor,
                                   std::shared_ptr<tiles::catalog const> catalog, server_options options,
                                   std::shared_ptr<std::atomic<std::size_t>> active) {
    auto& ioc = static_cast<asio::io_context&>(acceptor->get_executor().context());
    for (;;) {
        tcp::socket socket{asio::make_strand(ioc)};
        auto [ec] = co_await acceptor->async_accept(socket, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor->is_open()) {
                co_return;
            }
            spdlog::warn("accepting a connection failed: {}", ec.message());
            continue;
        }
        socket.set_option(tcp::no_delay{true}, ec);
        auto executor = socket.get_executor();
        ++*active;
        asio::co_spawn(executor, run_session(beast::tcp_stream{std::move(socket)}, catalog, options, active),
                       asio::detached);
    }
}

} // namespace

std::pair<std::string, std::uint16_t> split_listen_address(std::string_view address) {
    auto const colon = address.rfind(':');
    if (colon == std::string_view::npos) {
        throw config_error{
            fmt_error("Listen address '{}' has no port: use HOST:PORT, e.g. 0.0.0.0:3000", address)};
    }
    std::string_view host = address.substr(0, colon);
    auto const port_text = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned port = 0;
    auto const [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
        port > 65535) {
        throw config_error{
            fmt_error("Listen address '{}' has an invalid port: use HOST:PORT with a port 0-65535", address)};
    }
    return {std::string{host.empty() ? "0.0.0.0" : host}, static_cast<std::uint16_t>(port)};
}

server::server(asio::io_context& ioc, std::shared_ptr<tiles::catalog const> catalog, server_options options)
    : m_ioc(ioc), m_catalog(std::move(catalog)), m_options(std::move(options)) {
    m_options.in_flight = std::make_shared<std::atomic<std::size_t>>(0);
    m_options.stopping = std::make_shared<std::atomic<bool>>(false);
}

std::vector<tcp::endpoint> server::listen(std::string_view address) {
    auto const [host, port] = split_listen_address(address);
    tcp::resolver resolver{m_ioc};
    beast::error_code ec;
    auto const results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec) {
        throw config_error{fmt_error("Unable to bind to {}: {}", address, ec.message())};
    }
    std::vector<tcp::endpoint> bound;
    std::vector<std::string> failures;
    for (auto const& entry : results) {
        auto acceptor = std::make_shared<tcp::acceptor>(m_ioc);
        auto endpoint = entry.endpoint();
        if (!bound.empty() && port == 0) {
            endpoint.port(bound.front().port()); // same ephemeral port on every address
        }
        acceptor->open(endpoint.protocol(), ec);
        if (!ec && endpoint.address().is_v6()) {
            acceptor->set_option(asio::ip::v6_only{true}, ec);
        }
        if (!ec) {
            acceptor->set_option(tcp::acceptor::reuse_address{true}, ec);
        }
        if (!ec) {
            acceptor->bind(endpoint, ec);
        }
        if (!ec) {
            acceptor->listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            failures.push_back(fmt::format("{}: {}", endpoint.address().to_string(), ec.message()));
            ec.clear();
            continue;
        }
        bound.push_back(acceptor->local_endpoint());
        m_acceptors.push_back(acceptor);
        asio::co_spawn(m_ioc, run_acceptor(acceptor, m_catalog, m_options, m_active), asio::detached);
    }
    if (bound.empty()) {
        throw config_error{fmt_error("Unable to bind to {}: {}", address, fmt::join(failures, "; "))};
    }
    for (auto const& failure : failures) {
        // e.g. "localhost" on a machine without IPv6: serve on the addresses that work.
        spdlog::warn("Not listening on {} ({})", failure, address);
    }
    return bound;
}

void server::stop() {
    m_options.stopping->store(true);
    for (auto const& acceptor : m_acceptors) {
        asio::post(acceptor->get_executor(), [acceptor] {
            beast::error_code ignored;
            acceptor->close(ignored);
        });
    }
}

} // namespace kachel::http

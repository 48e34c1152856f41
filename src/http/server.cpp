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
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

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
        spdlog::info("{} \"{} {}\" {} {} {:.1f}ms cache=-", remote.address().to_string(), method, path,
                     status, bytes, seconds * 1000);
    }
}

asio::awaitable<void> run_session(beast::tcp_stream stream, std::shared_ptr<tiles::catalog const> catalog,
                                  server_options options) {
    beast::flat_buffer buffer;
    beast::error_code endpoint_ec;
    auto const remote = stream.socket().remote_endpoint(endpoint_ec);
    for (;;) {
        bhttp::request_parser<bhttp::empty_body> parser;
        parser.header_limit(options.header_limit);
        stream.expires_after(options.keep_alive);
        auto [read_ec, read_bytes] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
        if (read_ec) {
            if (read_ec != bhttp::error::end_of_stream && read_ec != beast::error::timeout &&
                read_ec != asio::error::operation_aborted) {
                spdlog::debug("closing HTTP connection: {}", read_ec.message());
            }
            break;
        }
        auto const req = parser.release();
        auto const started = std::chrono::steady_clock::now();
        request_context context{remote.address(), &options.http, options.ready};
        auto res = co_await async_handle_request(req, *catalog, context);
        if (req.method() == bhttp::verb::head) {
            // Same headers as GET, no body.
            auto const length = res.body().size();
            res.body().clear();
            if (res.result() != bhttp::status::no_content) {
                res.content_length(length);
            }
        }
        bool const keep_alive = res.keep_alive();
        stream.expires_after(write_timeout);
        // Recorded before the write, so a scrape right after this response already counts it.
        record(req, res.result_int(), res.body().size(), std::chrono::steady_clock::now() - started, context,
               options, remote);
        auto [write_ec, written] = co_await bhttp::async_write(stream, res, use_tuple);
        std::ignore = written;
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
                                   std::shared_ptr<tiles::catalog const> catalog, server_options options) {
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
        asio::co_spawn(executor, run_session(beast::tcp_stream{std::move(socket)}, catalog, options),
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
    : m_ioc(ioc), m_catalog(std::move(catalog)), m_options(options) {}

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
        asio::co_spawn(m_ioc, run_acceptor(acceptor, m_catalog, m_options), asio::detached);
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
    for (auto const& acceptor : m_acceptors) {
        asio::post(acceptor->get_executor(), [acceptor] {
            beast::error_code ignored;
            acceptor->close(ignored);
        });
    }
}

} // namespace kachel::http

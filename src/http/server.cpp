#include "http/server.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/secrets.hpp"
#include "http/disconnect_watch.hpp"
#include "http/handler.hpp"
#include "http/response.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <cmath>
#include <iterator>
#include <optional>
#include <tuple>
#include <vector>

namespace kachel::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds write_timeout{30};

/// Requests carry no body (GET, HEAD); header fields come from the per-thread pools.
using request_parser = bhttp::request_parser<bhttp::empty_body, field_allocator<char>>;

/// Metrics and the access log for one answered request.
/// `request_id`: the id an error answer already named (its X-Request-Id), so the access line and
/// the error carry the same one; otherwise a new id is taken.
void record(request const& req, unsigned status, std::size_t bytes, std::chrono::steady_clock::duration took,
            request_report const& report, server_options const& options, tcp::endpoint const& remote,
            std::string_view request_id = {}) {
    auto const seconds = std::chrono::duration<double>(took).count();
    auto const method = std::string_view{req.method_string().data(), req.method_string().size()};
    if (report.endpoint != "/_/metrics") {
        global_metrics().count_request(report.endpoint, method, status, seconds);
    }
    if (options.http.access_log) {
        std::string_view const target{req.target().data(), req.target().size()};
        auto const q = target.find('?');
        auto const path = q == std::string_view::npos ? std::string{target}
                                                      : std::string{target.substr(0, q + 1)} +
                                                            kachel::redact_query(target.substr(q + 1));
        auto const address = remote.address().to_string();
        if (current_log_format() == log_format::json) {
            auto const id = request_id.empty() ? next_request_id() : std::string{request_id};
            std::array<log_field, 8> const fields{{{"request_id", id},
                                                   {"remote", address},
                                                   {"method", method},
                                                   {"path", path},
                                                   {"status", {}, status},
                                                   {"bytes", {}, static_cast<double>(bytes)},
                                                   {"duration_ms", {}, std::round(seconds * 1e4) / 10},
                                                   {"cache", report.cache_status}}};
            log_with_fields(spdlog::level::info, "request", fields);
        } else {
            spdlog::info("{} \"{} {}\" {} {} {:.1f}ms cache={}", address, method, path, status, bytes,
                         seconds * 1000, report.cache_status);
        }
    }
}

/// Closes a connection's socket once a deadline passes (its pending operation fails). Setting a deadline
/// costs a clock read: the timer is only re-armed when a deadline comes earlier than the one it
/// is armed for, and when it fires early it re-arms for the deadline then in force. So a busy
/// connection costs one timer wait per timeout period, not two timer operations per read or write
/// (as beast::tcp_stream does). Its handler runs on the connection's loop, like the session.
class socket_deadline : public std::enable_shared_from_this<socket_deadline> {
  public:
    using clock = std::chrono::steady_clock;

    explicit socket_deadline(tcp::socket& socket) : m_socket(socket), m_timer(socket.get_executor()) {}

    /// The next socket operation must complete within `timeout`.
    void expires_after(clock::duration timeout) {
        m_deadline = clock::now() + timeout;
        m_expired = false;
        if (m_deadline < m_armed_for) {
            arm();
        }
    }

    /// No deadline until the next expires_after (while a request is being handled).
    void disarm() noexcept { m_deadline = clock::time_point::max(); }

    /// True when the deadline passed and the socket was closed.
    [[nodiscard]] bool expired() const noexcept { return m_expired; }

  private:
    void arm() {
        m_armed_for = m_deadline;
        m_timer.expires_at(m_deadline); // cancels the wait for a later time
        m_timer.async_wait([weak = weak_from_this()](beast::error_code const& ec) {
            if (auto self = weak.lock(); self && !ec) {
                self->fired();
            }
        });
    }

    void fired() {
        m_armed_for = clock::time_point::max();
        if (m_deadline == clock::time_point::max()) {
            return;
        }
        if (clock::now() >= m_deadline) {
            // Closed, not just cancelled: an operation started after this still fails at once.
            m_expired = true;
            beast::error_code ignored;
            m_socket.close(ignored);
            return;
        }
        arm();
    }

    tcp::socket& m_socket;
    asio::steady_timer m_timer;
    clock::time_point m_deadline = clock::time_point::max();
    clock::time_point m_armed_for = clock::time_point::max();
    bool m_expired = false;
};

/// Writes `all` (`total` bytes), tried at once (the socket is non-blocking): what fits the
/// socket's send buffer, as most tiles do, is sent without an asynchronous operation.
template <class Buffers>
asio::awaitable<beast::error_code> async_write_gathered(tcp::socket& socket, Buffers const& all,
                                                        std::size_t total) {
    beast::buffers_suffix buffers{all};
    beast::error_code ec;
    auto const sent = socket.write_some(buffers, ec);
    if (ec == asio::error::would_block) {
        ec = {};
    } else if (ec || sent == total) {
        co_return ec;
    }
    buffers.consume(sent);
    // Everything left at each step, not asio's default of 64 KiB: a large tile in few writes.
    auto const rest = [left = total - sent](beast::error_code const& error, std::size_t done) -> std::size_t {
        return error || done >= left ? 0 : left - done;
    };
    auto [write_ec, written] = co_await asio::async_write(socket, buffers, rest, use_tuple);
    std::ignore = written;
    co_return write_ec;
}

/// Writes a response: its header, formatted into the session's reusable `head` buffer, and its
/// body (a cached tile's shared bytes, a source's lent bytes in their pieces, or the response's
/// own text) in one gathered write.
/// Beast's serializer produces the same bytes, but walks its buffer sequences for every
/// response; this costs less (measured with bench/run: 5 to 10 % more cached tiles per second).
asio::awaitable<beast::error_code> async_write_response(tcp::socket& socket, response const& res,
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
    auto const* const pieces = res.body().lent_pieces();
    if (pieces != nullptr && pieces->size() > 1) {
        std::vector<asio::const_buffer> all;
        all.reserve(1 + pieces->size());
        all.emplace_back(head.data(), head.size());
        for (auto const piece : *pieces) {
            all.emplace_back(piece.data(), piece.size());
        }
        co_return co_await async_write_gathered(socket, all, head.size() + res.body().size());
    }
    auto const body = pieces == nullptr ? res.body().own()
                      : pieces->empty() ? std::string_view{}
                                        : pieces->front();
    co_return co_await async_write_gathered(socket,
                                            std::array{asio::const_buffer{head.data(), head.size()},
                                                       asio::const_buffer{body.data(), body.size()}},
                                            head.size() + body.size());
}

/// How long an event stream may stay silent before it sends a comment, which shows clients and
/// proxies that it is alive (and finds a client that is gone).
constexpr std::chrono::seconds stream_keepalive{15};

/// Appends `data` to `out` as one chunk of a chunked body, or as it is.
void append_chunk(std::string& out, std::string_view data, bool chunked) {
    if (chunked) {
        fmt::format_to(std::back_inserter(out), "{:x}\r\n", data.size());
    }
    out += data;
    if (chunked) {
        out += "\r\n";
    }
}

/// Streams `/_/changes`: writes `res` (the head) then the feed's events as they come, a comment
/// when idle, until the client goes or the feed closes (the server stops). The body is chunked
/// for HTTP/1.1 and ends with the connection for HTTP/1.0. \returns the body's bytes written.
asio::awaitable<std::size_t> stream_changes(tcp::socket& socket, socket_deadline& deadline, response& res,
                                            std::string& head, change_feed& feed) {
    bool const chunked = res.version() >= 11;
    res.erase(bhttp::field::content_length);
    if (chunked) {
        res.set(bhttp::field::transfer_encoding, "chunked");
    }
    res.keep_alive(false);
    auto const events = feed.subscribe(socket.get_executor()); // before the head: nothing is missed
    deadline.expires_after(write_timeout);
    if (co_await async_write_response(socket, res, head)) {
        co_return 0;
    }
    std::string out;
    append_chunk(out, "retry: 2000\n: kachel change events\n\n", chunked);
    std::size_t sent = 0;
    for (;;) {
        deadline.expires_after(write_timeout);
        if (co_await async_write_gathered(socket, std::array{asio::const_buffer{out.data(), out.size()}},
                                          out.size())) {
            co_return sent;
        }
        sent += out.size();
        deadline.disarm();
        auto next = co_await (events->async_next(stream_keepalive) || async_wait_disconnect(socket));
        if (next.index() == 1) {
            co_return sent; // the client went away
        }
        auto const text = std::get<0>(std::move(next));
        out.clear();
        if (!text) {
            break; // the server stops
        }
        append_chunk(out, text->empty() ? std::string_view{": keepalive\n\n"} : std::string_view{*text},
                     chunked);
    }
    if (chunked) {
        deadline.expires_after(write_timeout);
        std::ignore =
            co_await async_write_gathered(socket, std::array{asio::const_buffer{"0\r\n\r\n", 5}}, 5);
    }
    co_return sent;
}

/// Reads the rest of a request into `parser`, parsing what `buffer` already holds first (a whole
/// request, usually: then no asynchronous operation is needed). As Beast's http::async_read:
/// end_of_stream when the peer closed before sending anything, parser errors as they come.
asio::awaitable<beast::error_code> async_read_request(tcp::socket& socket, beast::flat_buffer& buffer,
                                                      request_parser& parser) {
    for (;;) {
        if (buffer.size() > 0) {
            beast::error_code ec;
            auto const used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if (!ec && parser.is_done()) {
                co_return ec;
            }
            if (ec && ec != bhttp::error::need_more) {
                co_return ec;
            }
            if (!ec && used > 0) {
                continue; // the header is done; now the body, if any
            }
        }
        auto [read_ec, n] = co_await socket.async_read_some(buffer.prepare(4096), use_tuple);
        if (read_ec == asio::error::eof) {
            if (!parser.got_some()) {
                co_return bhttp::error::end_of_stream;
            }
            beast::error_code eof_ec;
            parser.put_eof(eof_ec); // partial_message for a request cut short
            co_return eof_ec;
        }
        if (read_ec) {
            co_return read_ec;
        }
        buffer.commit(n);
    }
}

/// Answers a request that cannot be served and closes the connection; logs why.
asio::awaitable<void> reject(tcp::socket& socket, socket_deadline& deadline, bhttp::status status,
                             std::string_view message, std::string_view reason) {
    bhttp::response<bhttp::string_body> res{status, 11};
    res.set(bhttp::field::server, "kachel");
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(false);
    res.body() = std::string{message};
    res.prepare_payload();
    deadline.expires_after(write_timeout);
    std::ignore = co_await bhttp::async_write(socket, res, use_tuple);
    spdlog::debug("closing HTTP connection: {}", reason);
    // Lingering close: the client may still be sending what was refused. Closing with unread
    // bytes makes the kernel send a reset, which can destroy the answer before the client reads
    // it; so stop sending, then read and drop for a moment (at most 64 KiB, 1 s) before closing.
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    deadline.expires_after(std::chrono::seconds{1});
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < 65536;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), use_tuple);
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

asio::awaitable<void> run_session(tcp::socket socket, std::shared_ptr<tiles::live_catalog const> catalogs,
                                  server_options options, std::shared_ptr<std::atomic<std::size_t>> active) {
    count_release const count{active};
    auto const deadline = std::make_shared<socket_deadline>(socket);
    if (active->load() > options.max_connections) {
        co_await reject(socket, *deadline, bhttp::status::service_unavailable,
                        "Too many connections, retry later\n", "connection limit reached");
        co_return;
    }
    beast::error_code setup_ec;
    socket.non_blocking(true, setup_ec); // for async_write_response's first try
    auto const remote = socket.remote_endpoint(setup_ec);
    beast::flat_buffer buffer;
    std::string head; // response headers, reused by every response on this connection
    for (;;) {
        // Idle between requests for up to keep_alive; once a request starts, its header must
        // arrive within header_timeout.
        if (buffer.size() == 0) {
            deadline->expires_after(options.keep_alive);
            auto [idle_ec, n] = co_await socket.async_read_some(buffer.prepare(4096), use_tuple);
            if (idle_ec) {
                if (deadline->expired()) {
                    spdlog::debug("closing HTTP connection: idle timeout");
                }
                break;
            }
            buffer.commit(n);
        }
        deadline->expires_after(options.header_timeout);
        // The request line first, so an overlong target is told apart from overlong headers.
        bool line_failed = false;
        while (!has_request_line(buffer) && buffer.size() <= options.target_limit + 64) {
            auto [line_ec, n] = co_await socket.async_read_some(buffer.prepare(4096), use_tuple);
            if (line_ec) {
                spdlog::debug("closing HTTP connection: {}",
                              deadline->expired() ? "request header too slow" : line_ec.message());
                line_failed = true;
                break;
            }
            buffer.commit(n);
        }
        if (line_failed) {
            break;
        }
        if (!has_request_line(buffer)) {
            co_await reject(socket, *deadline, bhttp::status::uri_too_long, "URI Too Long\n",
                            "request line too long");
            break;
        }
        request_parser parser;
        parser.header_limit(options.header_limit);
        auto const read_ec = co_await async_read_request(socket, buffer, parser);
        if (read_ec == bhttp::error::header_limit) {
            co_await reject(socket, *deadline, bhttp::status::request_header_fields_too_large,
                            "Request Header Fields Too Large\n", "request header too large");
            break;
        }
        if (read_ec == bhttp::error::unexpected_body) {
            co_await reject(socket, *deadline, bhttp::status::bad_request,
                            "GET and HEAD requests must not have a body\n", "request with a body");
            break;
        }
        if (read_ec) {
            if (deadline->expired()) {
                spdlog::debug("closing HTTP connection: request header too slow");
            } else if (read_ec != bhttp::error::end_of_stream && read_ec != asio::error::operation_aborted) {
                co_await reject(socket, *deadline, bhttp::status::bad_request, "Bad Request\n",
                                read_ec.message());
            }
            break;
        }
        deadline->disarm(); // handling may take as long as the tile takes
        auto const req = parser.release();
        if (req.target().size() > options.target_limit) {
            co_await reject(socket, *deadline, bhttp::status::uri_too_long, "URI Too Long\n",
                            "request target too long");
            break;
        }
        auto const started = std::chrono::steady_clock::now();
        ++*options.in_flight;
        std::optional<count_release> counting{std::in_place, options.in_flight};
        request_context const context{remote.address(), &options.http,   options.ready,   &socket,
                                      options.cache,    options.changes, options.blocking};
        // The catalog of now, held until the answer is written: a request finishes on the
        // sources it started with, whatever reloads meanwhile.
        auto const catalog = catalogs->current();
        // Most answers (cache hits among them) need no waiting, and so no coroutine frame.
        auto step = handle_request(req, *catalog, context);
        auto report = step.report;
        if (auto* work = std::get_if<deferred_answer_ptr>(&step.answer)) {
            auto finished = co_await async_finish_request(req, context, std::move(*work), report);
            step.answer = std::move(finished.res);
            report = finished.report;
        }
        auto& res = std::get<response>(step.answer);
        if (report.client_gone) {
            // 499 "client closed request", as nginx logs it.
            record(req, 499, 0, std::chrono::steady_clock::now() - started, report, options, remote);
            break;
        }
        if (report.event_stream && req.method() == bhttp::verb::get && options.changes != nullptr) {
            counting.reset(); // a stream is not a request in flight: shutdown ends it, not waits
            auto const bytes = co_await stream_changes(socket, *deadline, res, head, *options.changes);
            record(req, res.result_int(), bytes, std::chrono::steady_clock::now() - started, report, options,
                   remote);
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
        deadline->expires_after(write_timeout);
        // Recorded before the write, so a scrape right after this response already counts it.
        auto const id_field = res.find(request_id_header);
        record(req, res.result_int(), res.body().size(), std::chrono::steady_clock::now() - started, report,
               options, remote,
               id_field == res.end() ? std::string_view{}
                                     : std::string_view{id_field->value().data(), id_field->value().size()});
        auto const write_ec = co_await async_write_response(socket, res, head);
        if (write_ec) {
            spdlog::debug("closing HTTP connection: client went away ({})", write_ec.message());
            break;
        }
        if (!keep_alive) {
            break;
        }
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> run_acceptor(std::shared_ptr<tcp::acceptor> acceptor,
                                   std::shared_ptr<tiles::live_catalog const> catalog, server_options options,
                                   std::shared_ptr<std::atomic<std::size_t>> active,
                                   std::shared_ptr<server::loop_choice> loops) {
    for (;;) {
        // The connection lives on one event loop, run by one thread: its handlers never run
        // concurrently, so it needs no strand.
        tcp::socket socket{loops->next()};
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
        asio::co_spawn(executor, run_session(std::move(socket), catalog, options, active),
                       log_failure("An HTTP connection"));
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

asio::io_context& server::loop_choice::next() noexcept {
    return *loops[counter.fetch_add(1, std::memory_order_relaxed) % loops.size()];
}

server::server(asio::io_context& ioc, std::shared_ptr<tiles::live_catalog const> catalog,
               server_options options, std::vector<asio::io_context*> const& more_loops)
    : m_ioc(ioc), m_catalog(std::move(catalog)), m_options(std::move(options)) {
    m_loops->loops.push_back(&ioc);
    m_loops->loops.insert(m_loops->loops.end(), more_loops.begin(), more_loops.end());
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
        asio::co_spawn(m_ioc, run_acceptor(acceptor, m_catalog, m_options, m_active, m_loops),
                       log_failure("Accepting HTTP connections"));
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

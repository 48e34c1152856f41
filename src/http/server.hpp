#pragma once

#include "http/change_feed.hpp"
#include "http/http_options.hpp"
#include "tiles/catalog.hpp"
#include "tiles/readiness_check.hpp"
#include "tiles/tile_cache.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::http {

/// Listener settings.
struct server_options {
    /// Idle time allowed between requests on a kept-alive connection.
    static constexpr std::chrono::seconds default_keep_alive{75};
    static constexpr std::size_t default_max_connections = 8192;

    std::chrono::seconds keep_alive = default_keep_alive;
    /// Longest request header accepted (431 beyond it).
    std::uint32_t header_limit = 16 * 1024;
    /// Longest request target accepted (414 beyond it).
    std::size_t target_limit = std::size_t{8} * 1024;
    /// Once a request has started, its whole header must arrive within this time (slow clients
    /// that trickle bytes are disconnected).
    std::chrono::seconds header_timeout{10};
    /// Connections served at once; further ones get 503 and are closed (`--max-connections`).
    std::size_t max_connections = default_max_connections;
    /// CORS, Cache-Control, encodings, web UI, access log.
    http_options http;
    /// Databases checked by `/_/ready` (may be null: always ready). Must outlive the server.
    tiles::readiness_check const* ready = nullptr;
    /// The tile cache (null: none). Must outlive the server.
    tiles::tile_cache* cache = nullptr;
    /// The change events behind `/_/changes` (null: the route is 404). Must outlive the server;
    /// closing it ends the streams.
    change_feed* changes = nullptr;
    /// Where big tiles are compressed (request_context::blocking). Must outlive the server.
    boost::asio::any_io_executor blocking;
    /// Requests being answered right now, and whether the server is shutting down (then every
    /// response closes its connection). Set by the server.
    std::shared_ptr<std::atomic<std::size_t>> in_flight;
    std::shared_ptr<std::atomic<bool>> stopping;
};

/// Splits `host:port` (`[v6]:port` for IPv6) into its parts.
/// \throws config_error when there is no port or it is not a number 0..65535.
[[nodiscard]] std::pair<std::string, std::uint16_t> split_listen_address(std::string_view address);

/// The HTTP server: accepts on one or more endpoints, one coroutine per connection, answering
/// from a shared read-only catalog. Connections are spread round robin over the event loops,
/// each of which must be run by exactly one thread.
class server {
  public:
    /// \param ioc the loop that accepts (and serves its share of connections)
    /// \param more_loops further loops that serve connections (must outlive the server's
    ///        connections, like `ioc`)
    server(boost::asio::io_context& ioc, std::shared_ptr<tiles::live_catalog const> catalog,
           server_options options, std::vector<boost::asio::io_context*> const& more_loops = {});

    /// Binds every address `host:port` resolves to and starts accepting.
    /// \throws config_error naming the address when binding fails.
    /// \returns the bound endpoints (useful with port 0).
    std::vector<boost::asio::ip::tcp::endpoint> listen(std::string_view address);

    /// Stops accepting new connections; sessions finish their current request, then close.
    void stop();

    /// Requests being answered right now.
    [[nodiscard]] std::size_t in_flight() const noexcept { return m_options.in_flight->load(); }

    /// The loops connections go to, taken in turn.
    struct loop_choice {
        std::vector<boost::asio::io_context*> loops;
        std::atomic<std::size_t> counter{0};
        boost::asio::io_context& next() noexcept;
    };

  private:
    boost::asio::io_context& m_ioc;
    std::shared_ptr<tiles::live_catalog const> m_catalog;
    server_options m_options;
    std::vector<std::shared_ptr<boost::asio::ip::tcp::acceptor>> m_acceptors;
    std::shared_ptr<std::atomic<std::size_t>> m_active = std::make_shared<std::atomic<std::size_t>>(0);
    std::shared_ptr<loop_choice> m_loops = std::make_shared<loop_choice>();
};

} // namespace kachel::http

#pragma once

#include "config/settings.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace kachel::app {

/// The assembled server: event loops, tile cache, database pools, HTTP server, metrics gauges,
/// signal handling and graceful shutdown. main() runs one; a test can run one in-process.
class application {
  public:
    explicit application(config::settings settings);
    application(application const&) = delete;
    application& operator=(application const&) = delete;
    ~application();

    /// Publishes the databases, serves until stopped (SIGINT/SIGTERM when `handle_signals`, or
    /// request_stop()), then shuts down gracefully (`shutdown_timeout`). With `check_connection`
    /// set, reports on each connection instead. Runs on the calling thread and the workers.
    /// \returns the process exit status: 0, or 1 after a failure (logged).
    int run(bool handle_signals = true);

    /// Starts the graceful shutdown, from any thread; before startup has finished, stops at once.
    void request_stop();

    /// The first endpoint the server listens on, once it serves; nullopt when startup failed or
    /// `timeout` passed first. Callable from any thread while run() runs.
    [[nodiscard]] std::optional<boost::asio::ip::tcp::endpoint>
    wait_until_serving(std::chrono::seconds timeout);

  private:
    struct state;
    std::unique_ptr<state> m_state;
};

} // namespace kachel::app

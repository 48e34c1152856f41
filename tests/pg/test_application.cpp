// The assembled server (app::application) run in-process: startup, serving, graceful stop.

#include "app/application.hpp"
#include "config/settings.hpp"
#include "support/http_client.hpp"
#include "support/tempdb.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace kachel;
using namespace std::chrono_literals;

namespace {

config::settings settings_for(std::vector<std::string> args) {
    std::vector<char const*> argv{"kachel"};
    for (auto const& a : args) {
        argv.push_back(a.c_str());
    }
    auto cli = config::parse_command_line(static_cast<int>(argv.size()), argv.data());
    return std::move(cli.values);
}

/// Runs an application on a thread of its own; stops and joins it when it goes away.
class running_app {
  public:
    explicit running_app(config::settings s)
        : m_app(std::move(s)), m_thread([this] { m_status = m_app.run(false); }) {}
    running_app(running_app const&) = delete;
    running_app& operator=(running_app const&) = delete;
    ~running_app() { stop(); }

    app::application& app() { return m_app; }

    /// Asks for a graceful stop and returns the exit status.
    int stop() {
        if (m_thread.joinable()) {
            m_app.request_stop();
            m_thread.join();
        }
        return m_status;
    }

  private:
    app::application m_app;
    int m_status = -1;
    std::thread m_thread;
};

} // namespace

TEST(application, serves_tiles_in_process_and_stops_with_status_zero) {
    test::tempdb const db;
    running_app running{settings_for({"-l", "127.0.0.1:0", "-W", "2", test::tls_conninfo(db.name())})};
    auto const endpoint = running.app().wait_until_serving(60s);
    ASSERT_TRUE(endpoint) << "the application did not start";
    auto const catalog = test::http_get(endpoint->port(), "/catalog");
    EXPECT_EQ(catalog.status, 200U);
    EXPECT_NE(catalog.body.find("\"points\""), std::string::npos) << catalog.body;
    auto const tile = test::http_get(endpoint->port(), "/points/0/0/0");
    EXPECT_EQ(tile.status, 200U);
    EXPECT_FALSE(tile.body.empty());
    EXPECT_EQ(test::http_get(endpoint->port(), "/_/ready").status, 200U);
    EXPECT_EQ(running.stop(), 0);
}

TEST(application, a_failed_startup_returns_one_and_never_serves) {
    running_app running{settings_for({"-l", "127.0.0.1:0", test::tls_conninfo("no_such_database_here")})};
    EXPECT_FALSE(running.app().wait_until_serving(60s));
    EXPECT_EQ(running.stop(), 1);
}

// kachel behind Debian's PgBouncer in transaction pooling mode, TLS on both sides (kachel ->
// PgBouncer with sslmode=verify-full, PgBouncer -> PostgreSQL with verify-full): with
// --no-prepared-statements every tile is served while more kachel connections than server
// connections take turns.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/threads.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;

namespace {

/// A PgBouncer in front of the suite's cluster, in transaction mode, started with the cluster's
/// certificates. Skips (empty port) when pgbouncer is not installed.
class pgbouncer {
  public:
    explicit pgbouncer(std::string const& pool_mode) {
        m_dir = (std::filesystem::temp_directory_path() / ("kachel-pgbouncer-" + std::to_string(::getpid())))
                    .string();
        auto const pg_dir = test::cluster_env("KACHEL_PG_DIR");
        auto const port = free_port();
        std::filesystem::create_directories(m_dir);
        std::ofstream{m_dir + "/userlist.txt"} << "\"kachel\" \"" << test::cluster_env("KACHEL_PG_PASSWORD")
                                               << "\"\n";
        std::ofstream{m_dir + "/pgbouncer.ini"}
            << "[databases]\n* = host=localhost port=" << test::cluster_env("KACHEL_PG_PORT") << "\n"
            << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port << "\nunix_socket_dir =\n"
            << "auth_type = plain\nauth_file = " << m_dir << "/userlist.txt\n"
            << "pool_mode = " << pool_mode << "\ndefault_pool_size = 2\nmax_client_conn = 200\n"
            << "client_tls_sslmode = require\nclient_tls_cert_file = " << m_dir << "/server.crt\n"
            << "client_tls_key_file = " << m_dir << "/server.key\n"
            << "server_tls_sslmode = verify-full\nserver_tls_ca_file = " << pg_dir << "/ssl/ca.crt\n"
            << "logfile = " << m_dir << "/pgbouncer.log\npidfile = " << m_dir << "/pgbouncer.pid\n";
        // PgBouncer refuses to run as root: as root, it runs as the cluster's user (postgres).
        std::string const script = "set -e; cd '" + m_dir + "'; cp '" + pg_dir + "/ssl/server.crt' '" +
                                   pg_dir +
                                   "/ssl/server.key' .; chmod 600 server.key; "
                                   "pgb=$(command -v pgbouncer || echo /usr/sbin/pgbouncer); "
                                   "if [ \"$(id -u)\" -eq 0 ]; then chown -R postgres:postgres .; "
                                   "runuser -u postgres -- $pgb -d -q pgbouncer.ini; "
                                   "else $pgb -d -q pgbouncer.ini; fi";
        std::ofstream{m_dir + "/start.sh"} << script << "\n";
        if (std::system(("bash '" + m_dir + "/start.sh'").c_str()) == 0) {
            m_port = port;
            std::this_thread::sleep_for(300ms);
        }
    }
    pgbouncer(pgbouncer const&) = delete;
    pgbouncer& operator=(pgbouncer const&) = delete;
    ~pgbouncer() {
        std::ifstream pidfile{m_dir + "/pgbouncer.pid"};
        if (pid_t pid = 0; pidfile >> pid) {
            ::kill(pid, SIGTERM);
            std::this_thread::sleep_for(200ms);
        }
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }

    [[nodiscard]] unsigned short port() const noexcept { return m_port; }
    [[nodiscard]] std::string log() const {
        std::ifstream in{m_dir + "/pgbouncer.log"};
        return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    }

  private:
    static unsigned short free_port() {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
        return a.local_endpoint().port();
    }

    std::string m_dir;
    unsigned short m_port = 0;
};

/// Requests `tiles` distinct tiles of `source` from 8 threads; counts the answers that are not 200/204.
std::size_t failures(unsigned short port, std::string const& source, unsigned tiles) {
    std::atomic<std::size_t> bad{0};
    std::atomic<unsigned> next{0};
    {
        std::vector<std::jthread> clients;
        for (int t = 0; t < 8; ++t) {
            clients.push_back(test::test_thread([&] {
                for (unsigned i = next++; i < tiles; i = next++) {
                    auto const r = test::http_get(port, "/" + source + "/8/" + std::to_string(i % 256) + "/" +
                                                            std::to_string(i / 256));
                    bad += r.status == 200 || r.status == 204 ? 0 : 1;
                }
            }));
        }
    }
    return bad;
}

} // namespace

TEST(pgbouncer, transaction_mode_works_without_prepared_statements) {
    pgbouncer const bouncer{"transaction"};
    ASSERT_NE(bouncer.port(), 0) << "pgbouncer did not start (is it installed?)";
    test::tempdb const db;
    auto const url = "postgresql://kachel:" + test::cluster_env("KACHEL_PG_PASSWORD") +
                     "@localhost:" + std::to_string(bouncer.port()) + "/" + db.name() +
                     "?sslmode=verify-full";
    std::map<std::string, std::optional<std::string>> const env{
        {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}};

    // -p 8: eight kachel connections share PgBouncer's two server connections.
    test::child_process k{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-p", "8", "-C", "0", "--no-prepared-statements", url}, env};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output() << bouncer.log();
    EXPECT_EQ(failures(port, "points", 400), 0U) << k.output();
    EXPECT_EQ(failures(port, "fn_zxy", 200), 0U) << k.output();
    EXPECT_EQ(failures(port, "fn_query_echo", 200), 0U) << k.output();
    EXPECT_NE(bouncer.log().find("tls=TLSv1.3"), std::string::npos)
        << "kachel did not reach PgBouncer over TLS:\n"
        << bouncer.log();

    // What the setting prevents: named prepared statements through PgBouncer 1.18 in transaction
    // mode run on server connections that never saw them prepared. How many tiles fail depends on
    // which server connection each transaction gets; every failure must be that one, though, and
    // the log must say so.
    test::child_process prepared{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-p", "8", "-C", "0", url}, env};
    auto const pport = test::ready_port(prepared);
    ASSERT_NE(pport, 0) << prepared.output();
    auto const failed = failures(pport, "points", 400);
    std::cout << "with prepared statements through PgBouncer (transaction mode): " << failed
              << " of 400 tiles failed\n";
    auto const log = prepared.output();
    std::size_t logged = 0;
    std::size_t explained = 0;
    for (std::size_t at = log.find(" failed: "); at != std::string::npos;
         at = log.find(" failed: ", at + 1)) {
        auto const line = log.substr(at, log.find('\n', at) - at);
        ++logged;
        explained += line.find("prepared statement") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(logged, failed) << log;
    EXPECT_EQ(explained, logged) << "a failure other than a missing prepared statement:\n" << log;
}

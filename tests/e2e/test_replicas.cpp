// Read replicas: a primary and a streaming standby of its own (scripts/pg-cluster.sh standby:
// pg_basebackup -R, replication over hostssl with verify-full), and kachel given both hosts in
// one libpq connection string. Tile reads go to the standby; a change the standby has not
// replayed is read from the primary and never cached stale; the primary stops under load and no
// tile request fails; an instance started then serves from the standby; the standby is promoted
// and the change notifications of both instances follow it. A config file's `hosts:` list with
// roles the servers contradict is followed by what the servers say, and each role is named.
//
// The cases run in order and share the pair; the last one stops the primary.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/threads.hpp"
#include "tiles/tile_ranges.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr char const* db_name = "replica_test";

std::string read_file(fs::path const& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Runs a shell command; its output goes to `log`. \returns the exit status.
int shell(std::string const& command, fs::path const& log) {
    return std::system(fmt::format("( {} ) >> '{}' 2>&1", command, log.string()).c_str());
}

/// One cluster of the pair, as pg-cluster.sh made it in `dir`.
struct cluster {
    fs::path dir;
    [[nodiscard]] std::string port() const {
        auto text = read_file(dir / "port");
        return text.substr(0, text.find('\n'));
    }
    /// Runs `sql` as the superuser over the unix socket. \returns psql's unaligned output.
    [[nodiscard]] std::string psql(std::string const& sql, std::string const& db = db_name) const {
        auto const command = fmt::format(
            "psql -X -q -A -t -v ON_ERROR_STOP=1 -h '{}' -p {} -U postgres -d '{}' -c \"{}\" 2>&1",
            (dir / "run").string(), port(), db, sql);
        std::string out;
        if (FILE* pipe = ::popen(command.c_str(), "r"); pipe != nullptr) {
            std::array<char, 4096> buf{};
            while (auto const n = std::fread(buf.data(), 1, buf.size(), pipe)) {
                out.append(buf.data(), n);
            }
            ::pclose(pipe);
        }
        while (!out.empty() && out.back() == '\n') {
            out.pop_back();
        }
        return out;
    }
};

/// The z/x/y path of the tile holding (lon, lat) at zoom z.
std::string tile_path(unsigned z, double lon, double lat) {
    auto const r = tiles::rect_of(tiles::lonlat_box{lon, lat, lon, lat}, z);
    return fmt::format("/pts/{}/{}/{}", z, r.min_x, r.min_y);
}

class replicas : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_dir = fs::temp_directory_path() / fmt::format("kachel-replicas-{}", ::getpid());
        fs::create_directories(s_dir);
        ::chmod(s_dir.c_str(), 0755);
        auto const log = s_dir / "setup.log";
        auto const script = std::string{KACHEL_SCRIPTS_DIR} + "/pg-cluster.sh";
        s_primary.dir = s_dir / "primary";
        s_standby.dir = s_dir / "standby";
        s_setup =
            shell(fmt::format("'{}' start '{}' && '{}' standby '{}' '{}'", script, s_primary.dir.string(),
                              script, s_primary.dir.string(), s_standby.dir.string()),
                  log);
        if (s_setup != 0) {
            return;
        }
        (void)s_primary.psql(fmt::format("CREATE DATABASE {} OWNER kachel", db_name), "postgres");
        (void)s_primary.psql(
            "CREATE EXTENSION postgis; "
            "CREATE TABLE pts (id integer PRIMARY KEY, name text, geom geometry(Point, 4326)); "
            "CREATE INDEX ON pts USING gist (geom); "
            "INSERT INTO pts SELECT i, 'p' || i, ST_SetSRID(ST_MakePoint(-170 + (i % 35) * 10, "
            "-80 + (i / 35) * 10), 4326) FROM generate_series(2, 559) i; "
            "INSERT INTO pts VALUES (1, 'paris-v0', ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)); "
            "ALTER TABLE pts OWNER TO kachel");
        s_url = fmt::format("postgresql://kachel:{}@localhost:{},localhost:{}/{}?sslmode=verify-full",
                            read_file(s_primary.dir / "password").substr(0, 24), s_primary.port(),
                            s_standby.port(), db_name);
        // The change triggers as a DBA gets them, run on the primary.
        auto const sql = s_dir / "triggers.sql";
        s_setup = shell(
            fmt::format("PGSSLROOTCERT='{}' RUST_LOG=warn '{}' --notify-changes --print-change-triggers "
                        "'{}' > '{}'",
                        (s_primary.dir / "ssl/ca.crt").string(), KACHEL_BINARY, s_url, sql.string()),
            log);
        if (s_setup == 0) {
            s_setup =
                shell(fmt::format("psql -X -q -v ON_ERROR_STOP=1 -h '{}' -p {} -U postgres -d {} -f '{}'",
                                  (s_primary.dir / "run").string(), s_primary.port(), db_name, sql.string()),
                      log);
        }
        if (s_setup != 0) {
            return;
        }
        s_kachel = start_kachel({"-W", "2", "-p", "8", "--notify-changes", s_url}, "debug");
        s_port = test::ready_port(*s_kachel);
    }

    static void TearDownTestSuite() {
        s_kachel.reset();
        auto const script = std::string{KACHEL_SCRIPTS_DIR} + "/pg-cluster.sh";
        for (auto const* c : {&s_standby, &s_primary}) {
            std::ignore =
                shell(fmt::format("KACHEL_PG_STOP_MODE=immediate '{}' stop '{}'", script, c->dir.string()),
                      s_dir / "teardown.log");
        }
        if (std::getenv("KACHEL_KEEP_TEST_LOGS") == nullptr) {
            std::error_code ec;
            fs::remove_all(s_dir, ec);
        }
    }

    /// A kachel on a free port with `args`, trusting the pair's CA.
    static std::unique_ptr<test::child_process> start_kachel(std::vector<std::string> args,
                                                             std::string const& log_level) {
        args.insert(args.begin(), {KACHEL_BINARY, "-l", "127.0.0.1:0"});
        return std::make_unique<test::child_process>(
            std::move(args), std::map<std::string, std::optional<std::string>>{
                                 {"PGSSLROOTCERT", (s_primary.dir / "ssl/ca.crt").string()},
                                 {"DATABASE_URL", std::nullopt},
                                 {"RUST_LOG", log_level}});
    }

    void SetUp() override {
        ASSERT_EQ(s_setup, 0) << read_file(s_dir / "setup.log");
        ASSERT_NE(s_port, 0) << s_kachel->output();
    }

    /// The sum of a metric's series whose labels hold `labels`.
    static double metric(std::string const& name, std::string const& labels = {}) {
        return test::metric_sum(s_port, name, labels);
    }

    static std::string host_label(cluster const& c) {
        return fmt::format("localhost:{}/{}", c.port(), db_name);
    }
    static double reads_on(cluster const& c) {
        return metric("kachel_postgres_reads_total", "host=\"" + host_label(c) + "\"");
    }
    static double reads_on_primary_pool() {
        return metric("kachel_postgres_reads_total", "host=\"primary\"");
    }

    /// Waits until `/_/ready` of the kachel on `port` holds `text`; the last body.
    static std::string wait_ready_with(std::string const& text, unsigned short port = s_port,
                                       std::chrono::seconds timeout = 15s) {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        std::string body;
        while (std::chrono::steady_clock::now() < deadline) {
            body = test::http_get(port, "/_/ready").body;
            if (body.find(text) != std::string::npos) {
                break;
            }
            std::this_thread::sleep_for(50ms);
        }
        return body;
    }

    /// Runs `sql` on the primary and waits until kachel has applied one more change notification.
    static void change_on(cluster const& c, std::string const& sql) {
        auto const before = metric("kachel_change_notifications_total", "outcome=\"applied\"");
        ASSERT_EQ(c.psql(sql), "") << "the change failed";
        auto const deadline = std::chrono::steady_clock::now() + 10s;
        while (metric("kachel_change_notifications_total", "outcome=\"applied\"") <= before) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << s_kachel->output();
            std::this_thread::sleep_for(5ms);
        }
    }

    static inline fs::path s_dir;
    static inline cluster s_primary;
    static inline cluster s_standby;
    static inline int s_setup = -1;
    static inline std::string s_url;
    static inline std::unique_ptr<test::child_process> s_kachel;
    static inline unsigned short s_port = 0;
};

TEST_F(replicas, replication_runs_over_tls_with_the_replication_role) {
    EXPECT_EQ(s_primary.psql("SELECT r.usename || ' ' || r.state || ' ' || s.ssl FROM pg_stat_replication r "
                             "JOIN pg_stat_ssl s USING (pid)"),
              "replicator streaming true");
    EXPECT_EQ(s_standby.psql("SELECT pg_is_in_recovery()"), "t");
    auto const conninfo = s_standby.psql("SHOW primary_conninfo");
    EXPECT_NE(conninfo.find("sslmode='verify-full'"), std::string::npos) << conninfo;
}

TEST_F(replicas, tile_reads_go_to_the_standby_and_each_host_is_reported) {
    auto const ready = wait_ready_with("standby, up, serves reads");
    EXPECT_EQ(ready.substr(0, 2), "OK") << ready;
    EXPECT_NE(ready.find("host " + host_label(s_primary) + ": primary, up"), std::string::npos) << ready;
    EXPECT_NE(ready.find("host " + host_label(s_standby) + ": standby, up, serves reads"), std::string::npos)
        << ready;

    auto const standby_before = reads_on(s_standby);
    for (unsigned x = 0; x < 16; ++x) {
        auto const r = test::http_get(s_port, fmt::format("/pts/4/{}/7", x));
        ASSERT_TRUE(r.status == 200 || r.status == 204) << r.status << " " << r.body;
    }
    EXPECT_GE(reads_on(s_standby) - standby_before, 16) << s_kachel->output();
    EXPECT_EQ(reads_on_primary_pool(), 0);
    // The standby's tile connections are kachel's, over TLS.
    EXPECT_NE(
        s_standby.psql(fmt::format("SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                                   "WHERE a.application_name LIKE 'kachel@localhost:{}/C%' AND s.ssl",
                                   s_standby.port())),
        "0");
    EXPECT_EQ(metric("kachel_postgres_host_up", "role=\"standby\""), 1);
    EXPECT_EQ(metric("kachel_postgres_host_up", "role=\"primary\""), 1);
    EXPECT_EQ(metric("kachel_postgres_host_serves_reads", "role=\"standby\""), 1);
    // Each host's TLS is logged as the first connection's.
    auto const log = s_kachel->output();
    EXPECT_NE(log.find(fmt::format("kachel@localhost:{}: TLS TLSv1.3", s_standby.port())), std::string::npos)
        << log;
    EXPECT_NE(log.find(fmt::format("kachel@localhost:{}: TLS TLSv1.3", s_primary.port())), std::string::npos)
        << log;
}

TEST_F(replicas, a_change_the_standby_has_not_replayed_is_read_from_the_primary_and_never_cached_stale) {
    auto const paris = tile_path(6, 2.35, 48.85);
    auto const first = test::http_get(s_port, paris);
    ASSERT_EQ(first.status, 200);
    ASSERT_NE(first.body.find("paris-v0"), std::string::npos);

    ASSERT_EQ(s_standby.psql("SELECT pg_wal_replay_pause()", "postgres"), "");
    change_on(s_primary, "UPDATE pts SET name = 'paris-v1' WHERE id = 1");
    // What a read on the standby would see: the old row, so the test can tell.
    ASSERT_EQ(s_standby.psql("SELECT name FROM pts WHERE id = 1"), "paris-v0");

    auto const primary_before = reads_on_primary_pool();
    auto const standby_before = reads_on(s_standby);
    auto const during = test::http_get(s_port, paris);
    ASSERT_EQ(during.status, 200);
    EXPECT_NE(during.body.find("paris-v1"), std::string::npos) << "a stale tile while replay is paused";
    EXPECT_EQ(reads_on_primary_pool() - primary_before, 1) << s_kachel->output();
    // A tile the change did not touch is still read on the standby.
    ASSERT_EQ(test::http_get(s_port, tile_path(6, -120, -40)).status, 200);
    EXPECT_EQ(reads_on(s_standby) - standby_before, 1);
    EXPECT_NE(test::http_get(s_port, paris).body.find("paris-v1"), std::string::npos);
    EXPECT_EQ(test::access_logged(s_kachel->output(), paris, "hit"), 1U);

    ASSERT_EQ(s_standby.psql("SELECT pg_wal_replay_resume()", "postgres"), "");
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    while (s_standby.psql("SELECT name FROM pts WHERE id = 1") != "paris-v1") {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline);
        std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(1500ms); // a check of every host (1 s) retires the change
    // Replayed: a tile of the change not cached yet is read on the standby again, and is new.
    auto const standby_after = reads_on(s_standby);
    auto const later = test::http_get(s_port, tile_path(7, 2.35, 48.85));
    ASSERT_EQ(later.status, 200);
    EXPECT_NE(later.body.find("paris-v1"), std::string::npos);
    EXPECT_EQ(reads_on(s_standby) - standby_after, 1);
    EXPECT_NE(test::http_get(s_port, paris).body.find("paris-v1"), std::string::npos);
}

TEST_F(replicas, two_instances_behind_a_round_robin_balancer_follow_one_change) {
    ASSERT_STRNE(KACHEL_NGINX, "") << "nginx is not installed: run scripts/install-deps.sh --with-test-tools";
    auto const second = start_kachel({"-W", "2", "-p", "4", "--notify-changes", s_url}, "debug");
    auto const second_port = test::ready_port(*second);
    ASSERT_NE(second_port, 0) << second->output();
    // Both instances listen before the change: the second one logs it once its LISTEN is on.
    ASSERT_TRUE(second->wait_for_output("Following the changes", 10s)) << second->output();

    auto const d = (s_dir / "nginx").string();
    fs::create_directories(s_dir / "nginx" / "temp");
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor probe{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    auto const port = probe.local_endpoint().port();
    probe.close();
    std::ofstream{d + "/nginx.conf"}
        << "daemon off; master_process off; worker_processes 1; pid " << d << "/nginx.pid;\n"
        << "error_log " << d << "/error.log;\nevents { worker_connections 256; }\nhttp {\n"
        << "  log_format up '$request_uri $status $upstream_addr';\n  access_log " << d << "/access.log up;\n"
        << "  client_body_temp_path " << d << "/temp/body; proxy_temp_path " << d << "/temp/proxy;\n"
        << "  fastcgi_temp_path " << d << "/temp/fcgi; uwsgi_temp_path " << d
        << "/temp/uwsgi; scgi_temp_path " << d << "/temp/scgi;\n"
        << "  upstream kachel { server 127.0.0.1:" << s_port << "; server 127.0.0.1:" << second_port
        << "; keepalive 8; }\n"
        << "  server { listen 127.0.0.1:" << port << ";\n"
        << "    location / { proxy_pass http://kachel; proxy_http_version 1.1; proxy_set_header Connection "
           "\"\"; }\n"
        << "  }\n}\n";
    test::child_process nginx{{KACHEL_NGINX, "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"}, {}};
    auto const deadline = std::chrono::steady_clock::now() + 5s;
    auto const healthy = [port] {
        try {
            return test::http_get(port, "/health").status == 200;
        } catch (std::exception const&) {
            return false; // not listening yet
        }
    };
    while (!healthy()) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_file(d + "/error.log");
        std::this_thread::sleep_for(50ms);
    }

    // Round robin: four requests reach each instance twice; each caches the tile.
    auto const tile = tile_path(8, 2.35, 48.85);
    for (int i = 0; i < 4; ++i) {
        auto const r = test::http_get(port, tile);
        ASSERT_EQ(r.status, 200);
        ASSERT_NE(r.body.find("paris-v1"), std::string::npos);
    }
    EXPECT_EQ(test::access_logged(s_kachel->output(), tile, "hit"), 1U);
    EXPECT_EQ(test::access_logged(second->output(), tile, "hit"), 1U);

    // One change through psql: every answer through the balancer has it, from both instances.
    change_on(s_primary, "UPDATE pts SET name = 'paris-v1b' WHERE id = 1");
    ASSERT_TRUE(second->wait_for_output("dropped 1 cached tile(s) of pts", 10s)) << second->output();
    for (int i = 0; i < 4; ++i) {
        auto const r = test::http_get(port, tile);
        ASSERT_EQ(r.status, 200);
        EXPECT_NE(r.body.find("paris-v1b"), std::string::npos) << "a stale tile through the balancer";
    }
    EXPECT_EQ(test::access_logged(s_kachel->output(), tile, "miss"), 2U);
    EXPECT_EQ(test::access_logged(second->output(), tile, "miss"), 2U);
    auto const access = read_file(d + "/access.log");
    EXPECT_NE(access.find(fmt::format("127.0.0.1:{}", s_port)), std::string::npos) << access;
    EXPECT_NE(access.find(fmt::format("127.0.0.1:{}", second_port)), std::string::npos) << access;
}

TEST_F(replicas, a_config_list_of_hosts_with_roles_follows_the_servers_and_names_each_contradicted_role) {
    // The roles are swapped on purpose, as after a failover nobody wrote down.
    auto const config = s_dir / "hosts.yaml";
    std::ofstream{config} << "postgres:\n"
                          << "  connection_string: postgresql://kachel:"
                          << read_file(s_primary.dir / "password").substr(0, 24) << "@/" << db_name
                          << "?sslmode=verify-full\n"
                          << "  hosts:\n"
                          << "    - {host: localhost, port: " << s_standby.port() << ", role: primary}\n"
                          << "    - host: localhost\n      port: " << s_primary.port()
                          << "\n      role: standby\n";
    auto const third = start_kachel({"-W", "1", "-p", "2", "--config", config.string()}, "info");
    auto const port = test::ready_port(*third);
    ASSERT_NE(port, 0) << third->output();
    for (auto const* c : {&s_standby, &s_primary}) {
        bool const is_standby = c == &s_standby;
        auto const wanted =
            fmt::format("Host {} of kachel answers as a {}, but {} postgres.hosts[{}] says it "
                        "is a {}: kachel follows the server",
                        host_label(*c), is_standby ? "standby" : "primary", config.string(),
                        is_standby ? 0 : 1, is_standby ? "primary" : "standby");
        EXPECT_TRUE(third->wait_for_output(wanted, 10s)) << wanted << "\n" << third->output();
    }
    // Discovery found the primary, and the tiles are read on the standby, as the servers say.
    auto const ready = wait_ready_with("serves reads", port, 10s);
    EXPECT_NE(
        ready.find("host " + host_label(s_standby) + ": standby (configured as primary), up, serves reads"),
        std::string::npos)
        << ready;
    EXPECT_NE(ready.find("host " + host_label(s_primary) + ": primary (configured as standby), up"),
              std::string::npos)
        << ready;
    for (unsigned x = 0; x < 8; ++x) {
        auto const r = test::http_get(port, fmt::format("/pts/3/{}/3", x));
        ASSERT_TRUE(r.status == 200 || r.status == 204) << r.status << " " << r.body;
    }
    auto const standby_reads =
        test::metric_sum(port, "kachel_postgres_reads_total", "host=\"" + host_label(s_standby) + "\"");
    EXPECT_GE(standby_reads, 8) << third->output();
    EXPECT_EQ(test::metric_sum(port, "kachel_postgres_reads_total", "host=\"primary\""), 0);
    // Each warning once, not at every check.
    auto const log = third->output();
    EXPECT_EQ(log.find("but " + config.string() + " postgres.hosts[0]", log.find("postgres.hosts[0]") + 1),
              std::string::npos)
        << log;
}

TEST_F(replicas, the_primary_stops_under_load_without_a_failed_tile_then_the_standby_is_promoted) {
    // Distinct tiles of zoom 12, all misses, from 4 clients until told to stop.
    std::atomic<bool> stop{false};
    std::atomic<unsigned> next{0};
    std::atomic<std::size_t> answered{0};
    std::atomic<std::size_t> failed{0};
    std::mutex failures_mutex;
    std::vector<std::string> failures;
    {
        std::vector<std::jthread> clients;
        for (int t = 0; t < 4; ++t) {
            clients.push_back(test::test_thread([&] {
                while (!stop) {
                    auto const i = next++;
                    auto const path = fmt::format("/pts/12/{}/{}", 2048 + i % 64, 1300 + i / 64);
                    auto const r = test::http_get(s_port, path);
                    ++answered;
                    if (r.status != 200 && r.status != 204) {
                        ++failed;
                        std::lock_guard const lock{failures_mutex};
                        failures.push_back(fmt::format("{} {} {}", path, r.status, r.body));
                    }
                }
            }));
        }
        std::this_thread::sleep_for(1s);
        auto const before_stop = answered.load();
        EXPECT_EQ(
            shell(fmt::format("'{}/pg-cluster.sh' stop '{}'", KACHEL_SCRIPTS_DIR, s_primary.dir.string()),
                  s_dir / "failover.log"),
            0);
        std::this_thread::sleep_for(3s);
        stop = true;
        EXPECT_GT(answered.load(), before_stop + 20) << "the load stopped with the primary";
    }
    EXPECT_EQ(failed.load(), 0U) << fmt::format("{}", fmt::join(failures, "\n")) << "\n"
                                 << s_kachel->output();
    auto const ready = test::http_get(s_port, "/_/ready");
    EXPECT_EQ(ready.status, 200) << ready.body;
    EXPECT_NE(ready.body.find("host " + host_label(s_primary) + ": "), std::string::npos);
    EXPECT_NE(ready.body.find(host_label(s_primary) + ": primary, down"), std::string::npos) << ready.body;

    // An instance started now, with the primary down, reads the catalog on the standby and serves.
    auto const late = start_kachel({"-W", "1", "-p", "2", "--notify-changes", s_url}, "info");
    auto const late_port = test::ready_port(*late);
    ASSERT_NE(late_port, 0) << late->output();
    EXPECT_NE(late->output().find("takes writes now"), std::string::npos) << late->output();
    auto const paris = tile_path(6, 2.35, 48.85);
    {
        auto const deadline = std::chrono::steady_clock::now() + 10s;
        test::http_reply r;
        while ((r = test::http_get(late_port, "/_/ready")).status != 200) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << r.body << late->output();
            std::this_thread::sleep_for(50ms);
        }
        EXPECT_NE(r.body.find("standby, up, serves reads"), std::string::npos) << r.body;
        auto const tile = test::http_get(late_port, paris);
        ASSERT_EQ(tile.status, 200) << tile.body << late->output();
        EXPECT_NE(tile.body.find("paris-v1b"), std::string::npos);
    }

    // Promoted: the notifications are listened for on it, and a change there reaches the cache.
    ASSERT_NE(test::http_get(s_port, paris).body.find("paris-v1b"), std::string::npos);
    ASSERT_EQ(
        shell(fmt::format("'{}/pg-cluster.sh' promote '{}'", KACHEL_SCRIPTS_DIR, s_standby.dir.string()),
              s_dir / "failover.log"),
        0)
        << read_file(s_dir / "failover.log");
    ASSERT_TRUE(s_kachel->wait_for_output("was a standby and is now a primary (promoted)", 15s))
        << s_kachel->output();
    ASSERT_TRUE(s_kachel->wait_for_output("follow again", 40s)) << s_kachel->output();
    // The catalog is discovered again on the new primary, and publishes the same source.
    ASSERT_TRUE(s_kachel->wait_for_output("reloaded in", 10s)) << s_kachel->output();
    EXPECT_EQ(s_kachel->output().find("already taken"), std::string::npos) << s_kachel->output();
    EXPECT_TRUE(std::regex_search(s_kachel->output(), std::regex{"reloaded in [0-9]+ ms: unchanged"}))
        << "a failover changed the catalog:\n"
        << s_kachel->output();
    // The late instance's first LISTEN reaches the new primary too.
    ASSERT_TRUE(late->wait_for_output("Following the changes", 40s)) << late->output();
    change_on(s_standby, "UPDATE pts SET name = 'paris-v2' WHERE id = 1");
    auto const after = test::http_get(s_port, paris);
    ASSERT_EQ(after.status, 200);
    EXPECT_NE(after.body.find("paris-v2"), std::string::npos) << s_kachel->output();
    // It applies the change too: its cached tile goes, and the next one is new.
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    while (test::http_get(late_port, paris).body.find("paris-v2") == std::string::npos) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << late->output();
        std::this_thread::sleep_for(50ms);
    }
}

} // namespace

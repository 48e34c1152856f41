// Golden end-to-end cases: kachel runs with tests/golden/config.yaml against the fixture database;
// each line of tests/golden/cases.txt is a request whose status, relevant headers and decoded body
// (TileJSON, or the tile's layers, features, geometry and properties) must equal
// tests/golden/expected/NAME.json. KACHEL_UPDATE_GOLDEN=1 rewrites the expected files instead.
// Also here: --save-config round trips and startup behaviour of configured sources.

#include "core/text.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/threads.hpp"
#include "tiles/mvt_decoder.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include <csignal>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::filesystem::path const golden_dir{KACHEL_GOLDEN_DIR};

struct golden_case {
    std::string name;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;
};

std::vector<golden_case> read_cases() {
    std::ifstream in{golden_dir / "cases.txt"};
    std::vector<golden_case> out;
    std::string line;
    while (std::getline(in, line)) {
        if (trim(line).empty() || line.front() == '#') {
            continue;
        }
        auto const bar1 = line.find('|');
        auto const bar2 = line.find('|', bar1 + 1);
        golden_case c{std::string{trim(line.substr(0, bar1))},
                      std::string{trim(line.substr(bar1 + 1, bar2 - bar1 - 1))},
                      {}};
        std::string_view rest =
            bar2 == std::string::npos ? std::string_view{} : std::string_view{line}.substr(bar2 + 1);
        while (!trim(rest).empty()) {
            auto const bar = rest.find('|');
            auto const item = rest.substr(0, bar);
            auto const colon = item.find(':');
            if (colon != std::string_view::npos) {
                c.headers.emplace_back(std::string{trim(item.substr(0, colon))},
                                       std::string{trim(item.substr(colon + 1))});
            }
            rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
        }
        out.push_back(std::move(c));
    }
    return out;
}

/// kachel started from a config file against a fresh fixture database.
struct instance {
    std::unique_ptr<test::child_process> process;
    unsigned short port = 0;

    instance(std::string const& db, std::filesystem::path const& config,
             std::vector<std::string> extra = {}) {
        std::vector<std::string> args{KACHEL_BINARY, "-c", config.string(), "-l", "127.0.0.1:0", "-W", "2",
                                      "-p",          "4"};
        args.insert(args.end(), extra.begin(), extra.end());
        process = std::make_unique<test::child_process>(
            args, std::map<std::string, std::optional<std::string>>{
                      {"KACHEL_GOLDEN_URL", test::tls_url(db)},
                      {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}});
        if (process->wait_for_output("kachel is now active. See http://", 60s)) {
            std::smatch m;
            auto const out = process->output();
            if (std::regex_search(out, m, std::regex{"active\\. See http://127\\.0\\.0\\.1:(\\d+)/"})) {
                port = static_cast<unsigned short>(std::stoi(m[1]));
            }
        }
    }
};

json render_tile(std::string const& body) {
    json layers = json::array();
    for (auto const& layer : tiles::decode_mvt(body)) {
        json features = json::array();
        for (auto const& f : layer.features) {
            json feature{{"type", f.geometry_type},
                         {"geometry", tiles::decode_geometry(f.geometry)},
                         {"properties", f.tags}};
            if (f.id) {
                feature["id"] = *f.id;
            }
            features.push_back(std::move(feature));
        }
        layers.push_back({{"name", layer.name},
                          {"version", layer.version},
                          {"extent", layer.extent},
                          {"features", features}});
    }
    return layers;
}

/// What a case observed, with the parts that change between runs (port, request ids) masked.
json observe(unsigned short port, golden_case const& c) {
    auto const reply = test::http_request(port, c.path, boost::beast::http::verb::get, c.headers);
    json headers = json::object();
    for (char const* name : {"content-type", "content-encoding", "etag", "location", "vary", "retry-after"}) {
        if (auto const v = reply.header(name); !v.empty()) {
            headers[name] = v;
        }
    }
    json out{{"request", c.path}, {"status", reply.status}, {"headers", headers}};
    auto const type = reply.header("content-type");
    std::string const host = "localhost:" + std::to_string(port);
    if (type == "application/json") {
        // The URLs in the body hold the port, and so does the body's hash: the body is compared instead.
        headers["etag"] = "(hash of the body)";
        out["headers"] = headers;
        auto text = reply.body;
        for (auto pos = text.find(host); pos != std::string::npos; pos = text.find(host, pos)) {
            text.replace(pos, host.size(), "HOST");
        }
        out["body"] = json::parse(text);
    } else if (type == "application/x-protobuf") {
        out["body"] = render_tile(reply.body);
    } else if (type.starts_with("text/plain")) {
        out["body"] = std::regex_replace(reply.body, std::regex{"request [0-9a-f]{8}"}, "request ID");
    } else if (!reply.body.empty()) {
        out["body"] = {{"bytes", reply.body.size()}};
    }
    return out;
}

class golden : public ::testing::TestWithParam<golden_case> {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        s_kachel = std::make_unique<instance>(s_db->name(), golden_dir / "config.yaml");
    }
    static void TearDownTestSuite() {
        s_kachel.reset();
        s_db.reset();
    }
    void SetUp() override { ASSERT_NE(s_kachel->port, 0) << s_kachel->process->output(); }

    static std::unique_ptr<test::tempdb> s_db;
    static std::unique_ptr<instance> s_kachel;
};

std::unique_ptr<test::tempdb> golden::s_db;
std::unique_ptr<instance> golden::s_kachel;

} // namespace

TEST_P(golden, matches_expected) {
    auto const& c = GetParam();
    auto const actual = observe(s_kachel->port, c);
    auto const file = golden_dir / "expected" / (c.name + ".json");
    if (std::getenv("KACHEL_UPDATE_GOLDEN") != nullptr) {
        std::ofstream{file} << actual.dump(2) << "\n";
        return;
    }
    std::ifstream in{file};
    ASSERT_TRUE(in) << "no expected file " << file << ": run with KACHEL_UPDATE_GOLDEN=1 to create it";
    auto const expected = json::parse(in);
    EXPECT_EQ(actual, expected) << "diff (RFC 6902, expected -> actual): "
                                << json::diff(expected, actual).dump(1);
}

// A case file that cannot be read would give no cases, and so a pass: this fails instead.
TEST(golden_cases, the_case_file_is_read_and_holds_cases) {
    ASSERT_TRUE(std::ifstream{golden_dir / "cases.txt"}) << "cannot read " << golden_dir / "cases.txt";
    auto const cases = read_cases();
    EXPECT_GE(cases.size(), 30U);
    for (auto const& c : cases) {
        EXPECT_FALSE(c.name.empty());
        EXPECT_TRUE(c.path.starts_with("/")) << c.name << ": " << c.path;
    }
}

INSTANTIATE_TEST_SUITE_P(cases, golden, ::testing::ValuesIn(read_cases()),
                         [](auto const& test_info) { return test_info.param.name; });

TEST_F(golden, invalid_configured_sources_are_skipped_with_a_warning) {
    auto const log = s_kachel->process->output();
    EXPECT_NE(
        log.find("Unable to configure source wrong_srid: table public.utm_points.geom has SRID 32632, but "
                 "the source sets srid 4326; the source is skipped"),
        std::string::npos)
        << log;
    EXPECT_NE(
        log.find("Unable to configure source missing_function because schema 'public' has no tile-serving "
                 "function 'no_such_function'"),
        std::string::npos);
    EXPECT_NE(log.find("Comment on public.plain_commented is not a JSON object"), std::string::npos);
}

TEST_F(golden, composite_constituents_run_concurrently) {
    // Each constituent sleeps one second in the database; while the request runs, all three
    // queries must be active at the same time.
    auto request = test::test_thread([port = s_kachel->port] {
        EXPECT_EQ(test::http_get(port, "/sleep_a,sleep_b,sleep_c/10/0/0").status, 204U);
    });
    std::size_t most = 0;
    for (int i = 0; i < 40 && most < 3; ++i) {
        auto const rows =
            s_db->query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = '" +
                        s_db->name() + "' AND query LIKE '%fn_sleep%' AND query NOT LIKE '%pg_stat%'");
        most = std::max<std::size_t>(most, std::stoul(rows.at(0)));
        std::this_thread::sleep_for(50ms);
    }
    request.join();
    EXPECT_EQ(most, 3U);
}

TEST_F(golden, a_client_that_goes_away_cancels_its_query) {
    auto const active_sleeps = [] {
        return std::stoul(
            s_db->query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = '" +
                        s_db->name() + "' AND query LIKE '%fn_sleep%' AND query NOT LIKE '%pg_stat%'")
                .at(0));
    };
    auto const kachel_connections = [] {
        return std::stoul(s_db->query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                      s_db->name() + "' AND application_name LIKE 'kachel%'")
                              .at(0));
    };
    {
        // sleep_a at z=200 would sleep 20 s: the client leaves after the query started.
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::socket socket{ioc};
        socket.connect({boost::asio::ip::make_address("127.0.0.1"), s_kachel->port});
        std::string const request = "GET /sleep_a/30/0/0 HTTP/1.1\r\nHost: x\r\n\r\n";
        boost::asio::write(socket, boost::asio::buffer(request));
        for (int i = 0; i < 100 && active_sleeps() == 0; ++i) {
            std::this_thread::sleep_for(20ms);
        }
        ASSERT_EQ(active_sleeps(), 1U);
    } // closes the socket
    auto const before = kachel_connections();
    auto const closed = std::chrono::steady_clock::now();
    while (active_sleeps() != 0 && std::chrono::steady_clock::now() - closed < 5s) {
        std::this_thread::sleep_for(20ms);
    }
    auto const took = std::chrono::steady_clock::now() - closed;
    EXPECT_EQ(active_sleeps(), 0U);
    EXPECT_LT(took, 1s) << "the statement was still running " << std::chrono::duration<double>(took).count()
                        << " s after the client left";
    // The connection went back to the pool instead of being closed, and serves the next request.
    EXPECT_EQ(kachel_connections(), before);
    EXPECT_EQ(test::http_get(s_kachel->port, "/points/0/0/0").status, 200U);
    EXPECT_NE(s_kachel->process->output().find("\"GET /sleep_a/30/0/0\" 499 0 "), std::string::npos);
}

TEST_F(golden, statement_timeout_cancels_slow_tiles_with_504) {
    // sleep_short has statement_timeout 1s; z=30 sleeps 3 s.
    auto const started = std::chrono::steady_clock::now();
    auto const r = test::http_get(s_kachel->port, "/sleep_short/30/0/1");
    auto const took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.status, 504U);
    EXPECT_NE(r.body.find("took too long to produce and was cancelled"), std::string::npos) << r.body;
    EXPECT_LT(took, 2500ms);
    // The statement is cancelled in the database, not left running.
    std::string remaining;
    for (int i = 0; i < 50; ++i) {
        remaining = s_db->query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
                                "'%fn_sleep%' AND query NOT LIKE '%pg_stat%' AND datname = '" +
                                s_db->name() + "'")
                        .at(0);
        if (remaining == "0") {
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(remaining, "0");
    EXPECT_EQ(test::http_get(s_kachel->port, "/sleep_short/1/0/0").status, 204U);
}

TEST(golden_startup, invalid_configured_sources_abort_by_default) {
    test::tempdb const db;
    auto const config = std::filesystem::temp_directory_path() / ("kachel-abort-" + db.name() + ".yaml");
    std::ofstream{config} << "postgres:\n  connection_string: ${KACHEL_GOLDEN_URL}\n  tables:\n    t:\n"
                             "      schema: nope\n      table: points\n";
    instance k{db.name(), config};
    EXPECT_EQ(k.port, 0);
    EXPECT_EQ(k.process->wait_exit(30s), 1);
    auto const log = k.process->output();
    EXPECT_NE(
        log.find(
            "Unable to configure source t because schema 'nope' does not exist. Available schemas: alpha, "
            "beta, public"),
        std::string::npos)
        << log;
    EXPECT_NE(log.find("on_invalid: warn (--on-invalid warn)"), std::string::npos);
    std::filesystem::remove(config);
}

TEST(golden_startup, saved_config_publishes_the_same_catalog_without_passwords) {
    test::tempdb const db;
    auto const dir = std::filesystem::temp_directory_path();
    auto const saved = dir / ("kachel-saved-" + db.name() + ".yaml");
    auto const saved_again = dir / ("kachel-saved-again-" + db.name() + ".yaml");
    auto const first_config = golden_dir / "config.yaml";

    auto const documents = [](instance const& k) {
        auto const catalog = json::parse(test::http_get(k.port, "/catalog").body);
        json out{{"catalog", catalog}};
        for (auto const& [id, entry] : catalog["tiles"].items()) {
            auto doc = json::parse(test::http_get(k.port, "/" + id).body);
            doc.erase("tiles");
            out[id] = doc;
        }
        return out;
    };
    json first;
    {
        instance const k{db.name(), first_config, {"--save-config", saved.string()}};
        ASSERT_NE(k.port, 0) << k.process->output();
        first = documents(k);
    }
    std::ifstream in{saved};
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("connection_string: ${KACHEL_GOLDEN_URL}"), std::string::npos) << text.str();
    EXPECT_EQ(text.str().find(test::cluster_env("KACHEL_PG_PASSWORD")), std::string::npos);
    // Every source is spelled out with what discovery found.
    EXPECT_NE(text.str().find(
                  "  points:\n        schema: public\n        table: points\n        srid: 4326\n"
                  "        geometry_column: geom\n        geometry_type: POINT\n        id_column: gid\n"),
              std::string::npos)
        << text.str();
    // The budgets and the filter are written back as read.
    for (auto const* wanted :
         {"order_by: name desc, gid", "max_feature_count:\n          0-3: 5\n          4-: 50",
          "thin_points:\n          0-5: 64", "simplify:\n          0-8: 2\n          9: 0.5",
          "filter: gid > 0"}) {
        EXPECT_NE(text.str().find(wanted), std::string::npos) << wanted << "\n" << text.str();
    }
    {
        instance const k{db.name(), saved, {"--save-config", saved_again.string()}};
        ASSERT_NE(k.port, 0) << k.process->output();
        EXPECT_EQ(documents(k), first);
    }
    std::ifstream again{saved_again};
    std::stringstream text_again;
    text_again << again.rdbuf();
    EXPECT_EQ(text_again.str(), text.str());
    std::filesystem::remove(saved);
    std::filesystem::remove(saved_again);
}

TEST(golden_startup, saved_config_never_holds_an_inline_password) {
    test::tempdb const db;
    test::child_process k{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "--save-config", "-", test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    ASSERT_TRUE(k.wait_for_output("kachel is now active", 60s)) << k.output();
    auto const out = k.output();
    EXPECT_EQ(out.find(test::cluster_env("KACHEL_PG_PASSWORD")), std::string::npos);
    EXPECT_NE(out.find("connection_string: postgresql://kachel@localhost:"), std::string::npos) << out;
    EXPECT_NE(out.find("auto_publish: true"), std::string::npos);
}

TEST(golden_startup, route_prefix_and_base_path) {
    test::tempdb const db;
    test::child_process k{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "--route-prefix", "/tiles/", "--base-path", "/public",
         test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    ASSERT_TRUE(k.wait_for_output("kachel is now active", 60s)) << k.output();
    std::smatch m;
    auto const out = k.output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex{"See http://127\\.0\\.0\\.1:(\\d+)/tiles/catalog"}))
        << out;
    auto const port = static_cast<unsigned short>(std::stoi(m[1]));
    EXPECT_EQ(test::http_get(port, "/tiles/catalog").status, 200U);
    EXPECT_EQ(test::http_get(port, "/catalog").status, 404U);
    EXPECT_EQ(test::http_get(port, "/health").status, 200U);
    EXPECT_EQ(test::http_get(port, "/tiles/points/0/0/0").status, 200U);
    auto const tilejson = json::parse(test::http_get(port, "/tiles/points?a=1").body);
    EXPECT_EQ(tilejson["tiles"][0],
              "http://localhost:" + std::to_string(port) + "/public/points/{z}/{x}/{y}?a=1");
    // The web UI works under the prefix: its links are relative to /tiles/.
    EXPECT_EQ(test::http_get(port, "/tiles").header("location"), "/tiles/");
    EXPECT_EQ(test::http_get(port, "/tiles/").header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(test::http_get(port, "/tiles/_/ui/app.js").status, 200U);
    auto const legacy = test::http_get(port, "/tiles/points/0/0/0.pbf");
    EXPECT_EQ(legacy.status, 301U);
    EXPECT_EQ(legacy.header("location"), "/tiles/points/0/0/0");
}

TEST(golden_startup, srid_zero_needs_default_srid) {
    test::tempdb const db;
    std::vector<std::string> args{KACHEL_BINARY, "-l", "127.0.0.1:0", test::tls_url(db.name())};
    auto const catalog_with = [&](std::map<std::string, std::optional<std::string>> env) {
        env["PGSSLROOTCERT"] = test::cluster_env("KACHEL_PG_CA");
        env["DATABASE_URL"] = std::nullopt;
        test::child_process k{args, env};
        EXPECT_TRUE(k.wait_for_output("kachel is now active", 60s)) << k.output();
        std::smatch m;
        auto const out = k.output();
        EXPECT_TRUE(std::regex_search(out, m, std::regex{"See http://127\\.0\\.0\\.1:(\\d+)/catalog"}));
        return json::parse(
            test::http_get(static_cast<unsigned short>(std::stoi(m[1])), "/catalog").body)["tiles"];
    };
    auto const without = catalog_with({{"DEFAULT_SRID", std::nullopt}});
    EXPECT_FALSE(without.contains("no_srid"));
    EXPECT_FALSE(without.contains("mercator_no_srid"));
    // DEFAULT_SRID counts when there is no config file and no -d.
    auto const with = catalog_with({{"DEFAULT_SRID", "3857"}});
    EXPECT_TRUE(with.contains("no_srid"));
    EXPECT_TRUE(with.contains("mercator_no_srid"));
}

namespace {

std::size_t unexpected_eof_lines() {
    std::ifstream log{test::cluster_env("KACHEL_PG_DIR") + "/server.log"};
    std::size_t n = 0;
    std::string line;
    while (std::getline(log, line)) {
        n += line.find("unexpected EOF") != std::string::npos ? 1 : 0;
    }
    return n;
}

std::size_t running(test::tempdb const& db, std::string const& what) {
    return std::stoul(db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db.name() +
                               "' AND " + what + " AND pid <> pg_backend_pid()")
                          .at(0));
}

} // namespace

TEST(golden_startup, sigterm_finishes_requests_in_flight_then_exits_cleanly) {
    test::tempdb const db;
    auto const eof_before = unexpected_eof_lines();
    instance k{db.name(), golden_dir / "config.yaml"};
    ASSERT_NE(k.port, 0) << k.process->output();
    std::atomic<unsigned> status{0};
    auto request =
        test::test_thread([&] { status = test::http_get(k.port, "/sleep_a/15/0/0").status; }); // 1.5 s
    for (int i = 0; i < 100 && running(db, "state = 'active' AND query LIKE '%fn_sleep%'") == 0; ++i) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(running(db, "state = 'active' AND query LIKE '%fn_sleep%'"), 1U);
    k.process->signal(SIGTERM);
    request.join();
    EXPECT_EQ(status.load(), 204U) << "the request in flight was not finished";
    EXPECT_EQ(k.process->wait_exit(10s), 0);
    EXPECT_NE(k.process->output().find("kachel stopped"), std::string::npos) << k.process->output();
    EXPECT_EQ(running(db, "application_name LIKE 'kachel%'"), 0U);
    EXPECT_EQ(unexpected_eof_lines(), eof_before) << "kachel left connections without closing them";
}

TEST(golden_startup, sigterm_cancels_what_outlives_the_shutdown_timeout) {
    test::tempdb const db;
    instance k{db.name(), golden_dir / "config.yaml", {"--shutdown-timeout", "1"}};
    ASSERT_NE(k.port, 0) << k.process->output();
    std::atomic<unsigned> status{0};
    auto request = test::test_thread([&] {
        try {
            status = test::http_get(k.port, "/sleep_a/30/0/0").status; // 3 s
        } catch (std::exception const&) {
            status = 1; // connection closed without an answer
        }
    });
    for (int i = 0; i < 100 && running(db, "state = 'active' AND query LIKE '%fn_sleep%'") == 0; ++i) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(running(db, "state = 'active' AND query LIKE '%fn_sleep%'"), 1U);
    auto const signalled = std::chrono::steady_clock::now();
    k.process->signal(SIGTERM);
    EXPECT_EQ(k.process->wait_exit(10s), 0);
    auto const took = std::chrono::steady_clock::now() - signalled;
    request.join();
    EXPECT_LT(took, 2500ms); // sooner than the statement would have ended
    EXPECT_NE(status.load(), 204U);
    EXPECT_NE(k.process->output().find("cancelled 1 database statement(s)"), std::string::npos)
        << k.process->output();
    EXPECT_EQ(running(db, "query LIKE '%fn_sleep%'"), 0U);
}

TEST(golden_startup, a_least_privilege_role_publishes_only_what_it_is_granted) {
    test::tempdb const db;
    auto const role = "kachel_ro_" + std::to_string(::getpid());
    test::admin_connection admin{db.name()};
    admin.query("CREATE ROLE " + role + " LOGIN PASSWORD 'ro-secret'");
    // What docs/operations.md recommends: connect, read the published table only, and take
    // EXECUTE away from the functions that must not be published.
    admin.query("GRANT CONNECT ON DATABASE \"" + db.name() + "\" TO " + role +
                "; GRANT USAGE ON SCHEMA public TO " + role + "; GRANT SELECT ON points TO " + role +
                "; REVOKE EXECUTE ON FUNCTION fn_sleep(integer, integer, integer), fn_raster(integer, "
                "integer, integer), "
                "fn_token(integer, integer, integer, jsonb) FROM PUBLIC; ALTER ROLE " +
                role + " SET default_transaction_read_only = on");
    std::string const url = "postgresql://" + role +
                            ":ro-secret@localhost:" + test::cluster_env("KACHEL_PG_PORT") + "/" + db.name() +
                            "?sslmode=verify-full";
    {
        test::child_process k{
            {KACHEL_BINARY, "-l", "127.0.0.1:0", url},
            {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
        ASSERT_TRUE(k.wait_for_output("kachel is now active", 60s)) << k.output();
        std::smatch m;
        auto const out = k.output();
        ASSERT_TRUE(std::regex_search(out, m, std::regex{"See http://127\\.0\\.0\\.1:(\\d+)/catalog"}));
        auto const port = static_cast<unsigned short>(std::stoi(m[1]));
        auto const tiles = json::parse(test::http_get(port, "/catalog").body)["tiles"];
        EXPECT_TRUE(tiles.contains("points"));
        EXPECT_TRUE(tiles.contains("fn_zxy"));
        for (char const* id :
             {"lines", "polygons", "geog_places", "utm_points", "points_view", "polygons_mat", "two_geoms",
              "shared_name", "MixedCase", "commented", "antimeridian", "single_point"}) {
            EXPECT_FALSE(tiles.contains(id)) << "published a table without SELECT: " << id;
        }
        EXPECT_FALSE(tiles.contains("fn_sleep")) << "published a function without EXECUTE";
        EXPECT_FALSE(tiles.contains("fn_raster"));
        EXPECT_EQ(test::http_get(port, "/points/0/0/0").status, 200U);
        EXPECT_EQ(test::http_get(port, "/fn_zxy/0/0/0").status, 200U);
        EXPECT_EQ(out.find("ro-secret"), std::string::npos);
    }
    admin.query("DROP OWNED BY " + role);
    test::admin_connection{"postgres"}.query("DROP ROLE " + role);
}

namespace {

/// The statements PostgreSQL logged for `dbname` (log_statement = all), one string per entry:
/// `statement: ...`, `execute <name>: ...` or `DETAIL:  parameters: ...`, continuation lines joined.
std::vector<std::string> logged_statements(std::string const& dbname, std::streamoff from) {
    std::ifstream log{test::cluster_env("KACHEL_PG_DIR") + "/server.log"};
    log.seekg(from);
    std::vector<std::string> out;
    std::string line;
    bool in_entry = false;
    std::regex const entry{R"(^\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] (\S*@\S*) (LOG|DETAIL):  (.*)$)"};
    while (std::getline(log, line)) {
        std::smatch m;
        if (std::regex_match(line, m, entry)) {
            in_entry =
                m[1] == "kachel@" + dbname && (m[2] == "DETAIL" || m[3].str().starts_with("statement: ") ||
                                               m[3].str().starts_with("execute "));
            if (in_entry) {
                out.push_back(m[2] == "DETAIL" ? "DETAIL: " + m[3].str() : m[3].str());
            }
        } else if (in_entry && !out.empty()) {
            out.back() += "\n" + line;
        }
    }
    return out;
}

std::streamoff server_log_size() {
    return static_cast<std::streamoff>(
        std::filesystem::file_size(test::cluster_env("KACHEL_PG_DIR") + "/server.log"));
}

} // namespace

// Identifiers and values built to break out of quoting: quotes, semicolons, comments,
// backslashes, non-ASCII. Nothing but kachel's own statements may run, and URL query values
// must reach a function only as its bound JSON argument.
TEST(golden_startup, hostile_names_and_values_run_nothing_but_kachel_statements) {
    test::tempdb const db;
    std::string const schema = "s'; DROP TABLE canary; --";
    std::string const table = "t\" ; DROP TABLE canary; /*ü\\";
    std::string const geom = "g;eom') --";
    std::string const id = "id\"\" --";
    std::string const prop = "na'me\\ ü $1";
    std::string const function = "f'n\"; DROP TABLE canary; --";
    auto const ident = [](std::string const& name) {
        std::string out = "\"";
        for (char const c : name) {
            out += c == '"' ? std::string{"\"\""} : std::string{c};
        }
        return out + "\"";
    };
    test::admin_connection owner{db.name(), "kachel"};
    owner.query("CREATE TABLE canary (v integer); INSERT INTO canary VALUES (42);"
                "CREATE SCHEMA " +
                ident(schema) +
                ";"
                "CREATE TABLE " +
                ident(schema) + "." + ident(table) + " (" + ident(id) + " integer PRIMARY KEY, " +
                ident(prop) + " text, " + ident(geom) +
                " geometry(Point, 4326));"
                "INSERT INTO " +
                ident(schema) + "." + ident(table) +
                " VALUES (7, 'x''); DROP TABLE canary; --', ST_SetSRID(ST_MakePoint(10, 10), 4326));"
                "CREATE FUNCTION " +
                ident(schema) + "." + ident(function) +
                "(z integer, x integer, y integer, query jsonb) RETURNS bytea LANGUAGE sql STABLE AS "
                "$$ SELECT convert_to(query::text, 'UTF8') $$;");
    test::admin_connection{"postgres"}.query("ALTER DATABASE \"" + db.name() +
                                             "\" SET log_statement = 'all'");

    json const tables{{"evil'table",
                       {{"schema", schema},
                        {"table", table},
                        {"geometry_column", geom},
                        {"id_column", id},
                        {"srid", 4326},
                        {"geometry_type", "POINT"},
                        {"properties", {{prop, "text"}}}}}};
    json const functions{{"evil_fn", {{"schema", schema}, {"function", function}}}};
    auto const config_path =
        std::filesystem::temp_directory_path() / ("kachel-hostile-" + std::to_string(::getpid()) + ".yaml");
    // JSON is YAML's flow style: every hostile name is written double-quoted, so none is expanded.
    std::ofstream{config_path}
        << "postgres:\n  connection_string: ${KACHEL_GOLDEN_URL}\n  auto_publish: false\n"
        << "  tables: " << tables.dump() << "\n  functions: " << functions.dump() << "\n";
    auto const log_from = server_log_size();
    {
        instance k{db.name(), config_path};
        ASSERT_NE(k.port, 0) << k.process->output();

        EXPECT_EQ(test::http_get(k.port, "/evil%27table/0/0/0").status, 404U);
        auto const tile = test::http_get(k.port, "/evil-table/0/0/0");
        ASSERT_EQ(tile.status, 200U) << tile.body;
        auto const layers = tiles::decode_mvt(tile.body);
        ASSERT_EQ(layers.size(), 1U);
        ASSERT_EQ(layers[0].features.size(), 1U);
        EXPECT_EQ(layers[0].features[0].id, 7U);
        EXPECT_EQ(layers[0].features[0].tags.at(prop), "x'); DROP TABLE canary; --");
        EXPECT_EQ(test::http_get(k.port, "/evil-table").status, 200U);

        // Query-string keys and values arrive as one JSON object, exactly as sent.
        auto const echo = test::http_get(
            k.port, "/evil_fn/0/0/0?a=%27%29%3B%20DROP%20TABLE%20canary%3B%20--&%22%3B--=%5C%27&c=$1");
        ASSERT_EQ(echo.status, 200U) << echo.body;
        EXPECT_EQ(json::parse(echo.body),
                  (json{{"a", "'); DROP TABLE canary; --"}, {"\";--", "\\'"}, {"c", "$1"}}));
        auto const nul = test::http_get(k.port, "/evil_fn/0/0/0?d=%00x");
        EXPECT_EQ(nul.status, 400U);
        EXPECT_NE(nul.body.find("NUL character (%00)"), std::string::npos) << nul.body;

        // Source ids that try to escape: all unknown, nothing runs.
        for (char const* target :
             {"/evil_table%3BDROP%20TABLE%20canary/0/0/0", "/%27%7C%7Cpg_sleep(1)%7C%7C%27/0/0/0",
              "/evil_table%22%3B--/0/0/0", "/evil_table,%27%3B--/0/0/0"}) {
            auto const r = test::http_get(k.port, target);
            EXPECT_EQ(r.status, 404U) << target;
            EXPECT_EQ(r.body.find("SELECT"), std::string::npos) << r.body;
        }
    }
    std::filesystem::remove(config_path);

    EXPECT_EQ(db.query("SELECT v FROM canary"), std::vector<std::string>{"42"});
    auto const statements = logged_statements(db.name(), log_from);
    ASSERT_FALSE(statements.empty()) << "log_statement = all logged nothing for kachel";
    bool saw_table_tile = false;
    bool saw_bound_query = false;
    for (auto const& s : statements) {
        if (s.starts_with("DETAIL: ")) {
            saw_bound_query = saw_bound_query || s.find("DROP TABLE canary; --\"") != std::string::npos;
            continue;
        }
        auto sql = s.substr(s.find(": ") + 2);
        sql.erase(0, sql.find_first_not_of(" \t\n"));
        EXPECT_TRUE(sql.starts_with("SELECT") || sql.starts_with("WITH") || sql.starts_with("SET") ||
                    sql.starts_with("RESET") || sql.starts_with("SHOW"))
            << "kachel ran a statement that is not a read: " << s;
        EXPECT_EQ(sql.find("'); DROP"), std::string::npos) << "a query value reached the SQL text: " << s;
        saw_table_tile = saw_table_tile || sql.find(ident(schema) + "." + ident(table)) != std::string::npos;
    }
    EXPECT_TRUE(saw_table_tile) << "the tile SQL does not quote the table as an identifier";
    EXPECT_TRUE(saw_bound_query) << "the URL query did not reach the function as a bound parameter";
}

// Every key of Martin's configuration reference that applies to PostgreSQL and the server, in one
// file: kachel starts, and each key shows its effect (docs/config.md, "Martin's keys").
TEST(golden_startup, a_whole_martin_config_runs_with_every_key_in_effect) {
    test::tempdb const db;
    auto const config = std::filesystem::temp_directory_path() / ("kachel-martin-" + db.name() + ".yaml");
    std::ofstream{config} << R"(keep_alive: 30
listen_addresses: '127.0.0.1:0'
worker_processes: 2
route_prefix: /tiles
base_path: /base
preferred_encoding: brotli
cache_control: 'public, max-age=60'
cors:
  origin: ['https://maps.example']
  max_age: 600
web_ui: disable
on_invalid: warn
tilejson_url_version_param: v
cache:
  size_mb: 64
  tile_size_mb: 32
  expiry: 2h
  tile_expiry: 1h
  idle_timeout: 20m
  tile_idle_timeout: 10m
  minzoom: 0
  maxzoom: 20
observability:
  metrics:
    add_labels: {region: test}
postgres:
  connection_string: ${KACHEL_GOLDEN_URL}
  default_srid: 4326
  auto_bounds: skip
  max_feature_count: 3
  pool_size: 3
  retry_timeout: 10s
  reload_interval: 0s
  convert_to_mlt: disabled
  auto_publish: false
  tables:
    pts:
      schema: public
      table: points
      srid: 4326
      geometry_column: geom
      id_column: gid
      layer_id: the_points
      minzoom: 0
      maxzoom: 10
      bounds: [-170, -80, 170, 80]
      extent: 512
      buffer: 8
      clip_geom: true
      geometry_type: POINT
      properties: {name: text, kind: int4}
      filter: kind = 1
      cache: {maxzoom: 8}
    broken:
      schema: nope
      table: points
  functions:
    fn:
      schema: public
      function: fn_zxy
      minzoom: 1
      maxzoom: 6
      bounds: [-10, -10, 10, 10]
      cache: disable
)";
    test::child_process k{{KACHEL_BINARY, "-c", config.string()},
                          {{"KACHEL_GOLDEN_URL", test::tls_url(db.name())},
                           {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}}};
    ASSERT_TRUE(k.wait_for_output("kachel is now active", 60s)) << k.output();
    std::filesystem::remove(config);
    std::smatch m;
    auto const out = k.output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex{"See http://127\\.0\\.0\\.1:(\\d+)/tiles/catalog"}))
        << out;
    auto const port = static_cast<unsigned short>(std::stoi(m[1]));
    // on_invalid: warn skips the broken source; the warned key is named.
    EXPECT_NE(out.find("Unable to configure source broken"), std::string::npos) << out;
    EXPECT_NE(out.find("'tilejson_url_version_param' is not supported by kachel yet and is ignored"),
              std::string::npos);
    // route_prefix, and the catalog holds exactly the configured sources that work.
    EXPECT_EQ(test::http_get(port, "/catalog").status, 404U);
    auto const catalog = json::parse(test::http_get(port, "/tiles/catalog").body)["tiles"];
    EXPECT_EQ(catalog.size(), 2U) << catalog.dump();
    EXPECT_TRUE(catalog.contains("pts") && catalog.contains("fn")) << catalog.dump();
    // TileJSON: base_path, layer_id, properties, bounds, zooms.
    auto const tj = json::parse(test::http_get(port, "/tiles/pts").body);
    EXPECT_EQ(tj["tiles"][0], "http://localhost:" + std::to_string(port) + "/base/pts/{z}/{x}/{y}");
    EXPECT_EQ(tj["vector_layers"][0]["id"], "the_points");
    EXPECT_EQ(tj["vector_layers"][0]["fields"], (json{{"kind", "int4"}, {"name", "text"}}));
    EXPECT_EQ(tj["bounds"], (json{-170, -80, 170, 80}));
    EXPECT_EQ(tj["maxzoom"], 10);
    auto const fn = json::parse(test::http_get(port, "/tiles/fn").body);
    EXPECT_EQ(fn["minzoom"], 1);
    EXPECT_EQ(fn["bounds"], (json{-10, -10, 10, 10}));
    // A tile: preferred_encoding, cache_control, CORS, extent, id, filter, max_feature_count.
    auto const tile =
        test::http_request(port, "/tiles/pts/0/0/0", boost::beast::http::verb::get,
                           {{"Accept-Encoding", "gzip, br"}, {"Origin", "https://maps.example"}});
    ASSERT_EQ(tile.status, 200U);
    EXPECT_EQ(tile.header("content-encoding"), "br");
    EXPECT_EQ(tile.header("cache-control"), "public, max-age=60");
    EXPECT_EQ(tile.header("access-control-allow-origin"), "https://maps.example");
    auto const plain = test::http_get(port, "/tiles/pts/0/0/0");
    auto const layers = tiles::decode_mvt(plain.body);
    ASSERT_EQ(layers.size(), 1U);
    EXPECT_EQ(layers[0].name, "the_points");
    EXPECT_EQ(layers[0].extent, 512U);
    EXPECT_EQ(layers[0].features.size(), 3U); // max_feature_count
    for (auto const& f : layers[0].features) {
        EXPECT_EQ(f.tags.at("kind"), "1"); // the filter
        EXPECT_TRUE(f.id.has_value());
    }
    EXPECT_EQ(test::http_get(port, "/tiles/pts/11/0/0").status, 404U); // maxzoom
    EXPECT_EQ(test::http_get(port, "/tiles/fn/0/0/0").status, 404U);   // the function's minzoom
    // web_ui: disable; the metrics carry the added label.
    EXPECT_EQ(test::http_get(port, "/tiles/").header("content-type"), "text/plain; charset=utf-8");
    EXPECT_NE(test::http_get(port, "/tiles/_/metrics").body.find("region=\"test\""), std::string::npos);
}

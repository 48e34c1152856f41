// The tile cache against a real database: functions that count their calls (a sequence) show
// how many database queries each request sequence cost.

#include "http/compression.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/threads.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;

namespace {

/// A database with counting tile functions:
/// - counted(z, x, y): a 20 KB tile (after 300 ms at z=3); NULL (empty) at z=1; raises at z=5;
/// - sized(z, x, y): a tile of x kB;
/// - counted_q(z, x, y, query jsonb): the query's text as the tile.
/// Each call bumps the sequence `calls`.
struct counting_db {
    test::tempdb db;
    counting_db() {
        test::admin_connection{db.name(), "kachel"}.query(R"SQL(
            CREATE SEQUENCE calls;
            CREATE FUNCTION counted(z integer, x integer, y integer) RETURNS bytea
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM nextval('calls');
                IF z = 3 THEN PERFORM pg_sleep(0.3); END IF;
                IF z = 5 THEN RAISE EXCEPTION 'no tile at zoom 5'; END IF;
                IF z = 1 THEN RETURN NULL; END IF;
                RETURN convert_to(format('%s/%s/%s:', z, x, y) || repeat('t', 20000), 'UTF8');
            END $$;
            CREATE FUNCTION sized(z integer, x integer, y integer) RETURNS bytea
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM nextval('calls');
                RETURN convert_to(repeat('s', x * 1000), 'UTF8');
            END $$;
            CREATE FUNCTION counted_q(z integer, x integer, y integer, query jsonb) RETURNS bytea
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM nextval('calls');
                RETURN convert_to(query::text, 'UTF8');
            END $$;
        )SQL");
    }
    /// Function calls so far.
    [[nodiscard]] int calls() const {
        auto const rows = db.query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM calls");
        return std::stoi(rows.at(0));
    }
};

struct kachel_process {
    std::unique_ptr<test::child_process> process;
    unsigned short port = 0;

    kachel_process(std::string const& db, std::vector<std::string> const& extra) {
        std::vector<std::string> args{KACHEL_BINARY, "-l", "127.0.0.1:0", "-W", "2", "-p", "8"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(test::tls_url(db));
        process = std::make_unique<test::child_process>(
            args, std::map<std::string, std::optional<std::string>>{
                      {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}});
        port = test::ready_port(*process);
    }
    /// Access-log lines for `path` with their cache field.
    [[nodiscard]] std::size_t logged(std::string const& path, std::string const& cache) const {
        return test::access_logged(process->output(), path, cache);
    }
};

/// kachel started with a config file (`yaml`, which may use ${KACHEL_CACHE_URL}) on `db`.
struct configured_process {
    std::unique_ptr<test::child_process> process;
    unsigned short port = 0;

    configured_process(counting_db const& db, std::string const& name, std::string const& yaml) {
        auto const config = std::filesystem::temp_directory_path() /
                            ("kachel-cache-" + name + "-" + std::to_string(::getpid()) + ".yaml");
        std::ofstream{config} << yaml;
        process = std::make_unique<test::child_process>(
            std::vector<std::string>{KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", config.string()},
            std::map<std::string, std::optional<std::string>>{
                {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
                {"KACHEL_CACHE_URL", test::tls_url(db.db.name())}});
        port = test::ready_port(*process);
        std::filesystem::remove(config);
    }
};

std::size_t metric(unsigned short port, std::string const& name) {
    auto const value = test::metric_value(port, name);
    return value ? static_cast<std::size_t>(*value) : static_cast<std::size_t>(-1);
}

} // namespace

TEST(tile_cache, hits_cost_no_query_and_concurrent_misses_share_one) {
    counting_db const db;
    kachel_process const k{db.db.name(), {}};
    ASSERT_NE(k.port, 0) << k.process->output();

    // Eight clients ask for the same uncached tile at once: one database call.
    std::vector<test::http_reply> replies(8);
    {
        std::vector<std::jthread> clients;
        for (auto& reply : replies) {
            clients.push_back(
                test::test_thread([&reply, &k] { reply = test::http_get(k.port, "/counted/3/1/1"); }));
        }
    }
    for (auto const& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.body;
        EXPECT_EQ(r.body, replies.front().body);
        EXPECT_EQ(r.header("etag"), replies.front().header("etag"));
    }
    EXPECT_EQ(db.calls(), 1);

    // Later requests are hits: no call, same bytes; a query string a source ignores is no new key.
    auto const again = test::http_get(k.port, "/counted/3/1/1?ignored=1");
    EXPECT_EQ(again.body, replies.front().body);
    EXPECT_EQ(db.calls(), 1);
    EXPECT_GE(k.logged("/counted/3/1/1?ignored=1", "hit"), 1U);

    // Each encoding is made once and then served as stored.
    for (int i = 0; i < 2; ++i) {
        auto const gz = test::http_request(k.port, "/counted/3/1/1", boost::beast::http::verb::get,
                                           {{"Accept-Encoding", "gzip"}});
        ASSERT_EQ(gz.header("content-encoding"), "gzip");
        EXPECT_EQ(http::decompress(gz.body, http::encoding::gzip), replies.front().body);
        EXPECT_EQ(gz.header("etag"), replies.front().header("etag"));
        auto const br = test::http_request(k.port, "/counted/3/1/1", boost::beast::http::verb::get,
                                           {{"Accept-Encoding", "br"}});
        ASSERT_EQ(br.header("content-encoding"), "br");
        EXPECT_EQ(http::decompress(br.body, http::encoding::brotli), replies.front().body);
    }
    EXPECT_EQ(db.calls(), 1);
    // identity, gzip and br entries of one tile
    EXPECT_EQ(metric(k.port, "kachel_tile_cache_entries"), 3U);
    auto const etag = replies.front().header("etag");
    auto const not_modified = test::http_request(k.port, "/counted/3/1/1", boost::beast::http::verb::get,
                                                 {{"If-None-Match", etag}});
    EXPECT_EQ(not_modified.status, 304U);
    // Per-zoom lookups, as Martin's martin_tile_cache_requests_total: the eight first requests
    // missed (seven of them then shared the eighth's query); the six since then were hits.
    auto const metrics = test::http_get(k.port, "/_/metrics").body;
    auto const lookups = [&metrics](std::string const& result) {
        std::smatch g;
        std::regex const series{"kachel_tile_cache_requests_total\\{cache=\"tile\",result=\"" + result +
                                "\",zoom=\"3\"\\} (\\d+)"};
        return std::regex_search(metrics, g, series) ? std::stoul(g[1]) : 0UL;
    };
    EXPECT_EQ(lookups("miss"), 8U) << metrics;
    EXPECT_EQ(lookups("hit"), 6U) << metrics;

    // Empty tiles are cached; errors are not.
    EXPECT_EQ(test::http_get(k.port, "/counted/1/0/0").status, 204U);
    EXPECT_EQ(test::http_get(k.port, "/counted/1/0/0").status, 204U);
    EXPECT_EQ(db.calls(), 2);
    EXPECT_EQ(test::http_get(k.port, "/counted/5/0/0").status, 500U);
    EXPECT_EQ(test::http_get(k.port, "/counted/5/0/0").status, 500U);
    EXPECT_EQ(db.calls(), 4);

    // For a source that takes the query, the query is part of the key.
    EXPECT_EQ(test::http_get(k.port, "/counted_q/2/0/0?a=1").body, R"({"a": 1})");
    EXPECT_EQ(test::http_get(k.port, "/counted_q/2/0/0?a=1").body, R"({"a": 1})");
    EXPECT_EQ(test::http_get(k.port, "/counted_q/2/0/0?a=2").body, R"({"a": 2})");
    EXPECT_EQ(db.calls(), 6);

    // A composite reuses the constituents' entries: counted/3/1/1 is a hit, counted_q is new.
    auto const composite = test::http_get(k.port, "/counted,counted_q/3/1/1?b=1");
    ASSERT_EQ(composite.status, 200U);
    EXPECT_EQ(composite.body, replies.front().body + R"({"b": 1})");
    EXPECT_EQ(db.calls(), 7);
}

TEST(tile_cache, is_bounded_by_bytes_and_evicts_least_recently_used) {
    counting_db const db;
    // -C 2: the tiles get half, 1,000,000 bytes, split over 16 shards.
    kachel_process const k{db.db.name(), {"-C", "2"}};
    ASSERT_NE(k.port, 0) << k.process->output();
    EXPECT_NE(k.process->output().find("Tile cache: up to 1 MB"), std::string::npos) << k.process->output();
    for (unsigned x = 0; x < 120; ++x) { // 120 tiles of 20 KB: 2.4 MB
        ASSERT_EQ(test::http_get(k.port, "/counted/7/" + std::to_string(x) + "/0").status, 200U);
    }
    EXPECT_EQ(db.calls(), 120);
    auto const bytes = metric(k.port, "kachel_tile_cache_bytes");
    EXPECT_LE(bytes, 1'000'000U);
    EXPECT_GE(bytes, 500'000U); // and it is used
    auto const entries = metric(k.port, "kachel_tile_cache_entries");
    EXPECT_LT(entries, 50U);
    // The first tiles were evicted; the last one is still there.
    ASSERT_EQ(test::http_get(k.port, "/counted/7/119/0").status, 200U);
    EXPECT_EQ(db.calls(), 120);
    ASSERT_EQ(test::http_get(k.port, "/counted/7/0/0").status, 200U);
    EXPECT_EQ(db.calls(), 121);

    // A tile too big for a hashed shard (1/16, 62.5 kB) is kept in the shard for big ones (up to
    // a quarter, 250 kB, taken from the others); one bigger than that is not kept.
    ASSERT_EQ(test::http_get(k.port, "/sized/9/100/0").body.size(), 100'000U);
    ASSERT_EQ(test::http_get(k.port, "/sized/9/100/0").status, 200U);
    EXPECT_EQ(db.calls(), 122);
    ASSERT_EQ(test::http_get(k.port, "/sized/9/300/0").status, 200U);
    ASSERT_EQ(test::http_get(k.port, "/sized/9/300/0").status, 200U);
    EXPECT_EQ(db.calls(), 124);
    EXPECT_LE(metric(k.port, "kachel_tile_cache_bytes"), 1'000'000U);
}

TEST(tile_cache, expiry_and_disabling) {
    counting_db const db;
    {
        kachel_process const k{db.db.name(), {"--cache-expiry", "1"}};
        ASSERT_NE(k.port, 0) << k.process->output();
        ASSERT_EQ(test::http_get(k.port, "/counted/3/0/0").status, 200U);
        ASSERT_EQ(test::http_get(k.port, "/counted/3/0/0").status, 200U);
        EXPECT_EQ(db.calls(), 1);
        std::this_thread::sleep_for(1200ms);
        ASSERT_EQ(test::http_get(k.port, "/counted/3/0/0").status, 200U);
        EXPECT_EQ(db.calls(), 2);
    }
    kachel_process const off{db.db.name(), {"-C", "0"}};
    ASSERT_NE(off.port, 0) << off.process->output();
    EXPECT_NE(off.process->output().find("Tile cache: off"), std::string::npos);
    ASSERT_EQ(test::http_get(off.port, "/counted/3/0/0").status, 200U);
    ASSERT_EQ(test::http_get(off.port, "/counted/3/0/0").status, 200U);
    EXPECT_EQ(db.calls(), 4);
    EXPECT_EQ(off.logged("/counted/3/0/0", "-"), 2U);
}

TEST(tile_cache, sources_can_opt_out_or_limit_zooms) {
    counting_db const db;
    configured_process const k{db, "gates",
                               "postgres:\n  connection_string: ${KACHEL_CACHE_URL}\n  auto_publish: false\n"
                               "  functions:\n"
                               "    never: {schema: public, function: counted, cache: disable}\n"
                               "    low: {schema: public, function: counted, cache: {maxzoom: 4}}\n"
                               "    always: {schema: public, function: counted}\n"};
    auto const port = k.port;
    ASSERT_NE(port, 0) << k.process->output();
    auto const twice = [&](std::string const& target) {
        EXPECT_EQ(test::http_get(port, target).status, 200U) << target;
        EXPECT_EQ(test::http_get(port, target).status, 200U) << target;
    };
    twice("/never/2/0/0");
    EXPECT_EQ(db.calls(), 2);
    twice("/low/4/0/0"); // within its cached zooms
    EXPECT_EQ(db.calls(), 3);
    twice("/low/6/0/0"); // above them
    EXPECT_EQ(db.calls(), 5);
    twice("/always/6/0/0");
    EXPECT_EQ(db.calls(), 6);
}

TEST(tile_cache, time_to_idle_globally_and_per_source) {
    counting_db const db;
    configured_process const k{
        db, "idle",
        "cache:\n  tile_idle_timeout: 2000ms\npostgres:\n"
        "  connection_string: ${KACHEL_CACHE_URL}\n  auto_publish: false\n"
        "  functions:\n"
        "    idle: {schema: public, function: counted}\n"
        "    patient: {schema: public, function: counted, cache: {idle_timeout: 10m}}\n"};
    auto const port = k.port;
    ASSERT_NE(port, 0) << k.process->output();
    auto const get = [&](std::string const& target) { EXPECT_EQ(test::http_get(port, target).status, 200U); };
    get("/patient/3/0/0");
    get("/idle/3/0/0"); // last: the gaps below hold no other query (each takes 0.3 s, more on a busy machine)
    EXPECT_EQ(db.calls(), 2);
    // Used every second, the tile stays although it grows older than the idle timeout...
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(1000ms);
        get("/idle/3/0/0");
    }
    EXPECT_EQ(db.calls(), 2) << k.process->output();
    // ...and once unused for longer, it is made again; the source with its own timeout keeps it.
    std::this_thread::sleep_for(2500ms);
    get("/idle/3/0/0");
    get("/patient/3/0/0");
    EXPECT_EQ(db.calls(), 3) << k.process->output();
}

TEST(tile_cache, a_composite_is_cached_encoded_and_dropped_with_any_of_its_sources) {
    counting_db const db;
    kachel_process const k{db.db.name(), {"--purge-endpoint"}};
    ASSERT_NE(k.port, 0) << k.process->output();
    auto const get = [&k](std::string const& path, std::vector<std::pair<std::string, std::string>> headers) {
        return test::http_request(k.port, path, boost::beast::http::verb::get, std::move(headers));
    };
    std::string const path = "/counted,counted_q/4/1/1?c=1";
    auto const first = get(path, {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(first.status, 200U) << first.body;
    ASSERT_EQ(first.header("content-encoding"), "gzip");
    auto const plain = http::decompress(first.body, http::encoding::gzip);
    EXPECT_EQ(plain.substr(plain.size() - 8), R"({"c": 1})");
    EXPECT_EQ(db.calls(), 2);
    // Stored: the constituents, the composite, the composite in gzip.
    EXPECT_EQ(metric(k.port, "kachel_tile_cache_entries"), 4U);

    // The same composite again: one lookup of the encoded composite, logged as a hit.
    auto const again = get(path, {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(again.header("etag"), first.header("etag"));
    EXPECT_EQ(k.logged(path, "hit"), 1U);
    EXPECT_EQ(get(path, {{"If-None-Match", first.header("etag")}}).status, 304U);
    EXPECT_EQ(db.calls(), 2);
    // Another query is another composite (counted_q takes it); the other source is a hit.
    EXPECT_EQ(get("/counted,counted_q/4/1/1?c=2", {}).status, 200U);
    EXPECT_EQ(db.calls(), 3);

    // Purging one constituent drops every composite that holds it.
    auto const purged = test::http_request(k.port, "/cache/counted", boost::beast::http::verb::delete_);
    EXPECT_EQ(purged.status, 200U) << purged.body;
    auto const after = get(path, {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(http::decompress(after.body, http::encoding::gzip), plain);
    EXPECT_EQ(db.calls(), 4) << "counted is made again, counted_q still cached";
}

TEST(tile_cache, big_tiles_are_measured_timed_and_warned_about_once_in_a_while) {
    counting_db const db;
    kachel_process const k{db.db.name(), {"--tile-size-warning", "10kB"}};
    ASSERT_NE(k.port, 0) << k.process->output();
    auto const made = test::http_request(k.port, "/counted/4/2/3", boost::beast::http::verb::get,
                                         {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(made.status, 200U);
    EXPECT_TRUE(
        std::regex_match(made.header("server-timing"), std::regex{R"(db;dur=\d+\.\d, encode;dur=\d+\.\d)"}))
        << made.header("server-timing");
    auto const hit = test::http_request(k.port, "/counted/4/2/3", boost::beast::http::verb::get,
                                        {{"Accept-Encoding", "gzip"}});
    EXPECT_TRUE(
        std::regex_match(hit.header("server-timing"), std::regex{R"(cache;desc=hit, made;dur=\d+\.\d)"}))
        << hit.header("server-timing");
    EXPECT_EQ(test::http_get(k.port, "/counted/4/2/4").status, 200U);

    // Both tiles (20 kB) are in the size histogram of their source and zoom.
    auto const metrics = test::http_get(k.port, "/_/metrics").body;
    EXPECT_NE(metrics.find("kachel_tile_size_bytes_bucket{source=\"counted\",zoom=\"4\",le=\"16384\"} 0"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("kachel_tile_size_bytes_bucket{source=\"counted\",zoom=\"4\",le=\"65536\"} 2"),
              std::string::npos)
        << metrics;
    // One warning for the two, naming the first; the second waits for the next line.
    auto const log = k.process->output();
    EXPECT_NE(log.find("Tile counted/4/2/3 is 20006 bytes, more than tile_size_warning (10000 bytes)"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("Tile counted/4/2/4"), std::string::npos) << log;
}

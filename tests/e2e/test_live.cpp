// Live data: tables whose triggers (printed by kachel --print-change-triggers, run as a DBA would)
// notify their changes, and two kachel processes whose caches follow them.

#include "http/compression.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/test_env.hpp"
#include "tiles/tile_ranges.hpp"

#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view live_tables_sql = R"sql(
CREATE TABLE live_pts (id integer PRIMARY KEY, name text, geom geometry(Point, 4326));
INSERT INTO live_pts VALUES
  (1, 'paris-v0', ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)),
  (2, 'tokyo-v0', ST_SetSRID(ST_MakePoint(139.7, 35.7), 4326));
CREATE TABLE live_merc (id integer PRIMARY KEY, label text, geom geometry(Polygon, 3857));
INSERT INTO live_merc VALUES
  (1, 'square-v0', ST_Transform(ST_MakeEnvelope(2.3, 48.8, 2.4, 48.9, 4326), 3857));
-- A view, which cannot have triggers: a change to it is notified by hand, as the printed SQL
-- says. Its tiles take 0.3 s, so that changes land while they are being made.
CREATE VIEW live_slow AS SELECT id, name, geom FROM live_pts WHERE pg_sleep(0.15) IS NOT NULL;
)sql";

/// The bearer token of the second process's purge route.
constexpr std::string_view purge_token = "s3cret-live-token";

/// A kachel process on the suite's database, with `--notify-changes`, the purge route and debug
/// logs; with `token`, the purge route asks for purge_token.
struct kachel_process {
    std::unique_ptr<test::child_process> process;
    unsigned short port = 0;

    kachel_process(std::string const& db, bool token) {
        std::map<std::string, std::optional<std::string>> env{
            {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
            {"DATABASE_URL", std::nullopt},
            {"RUST_LOG", "debug"},
            {"KACHEL_PURGE_TOKEN", std::nullopt}};
        if (token) {
            env["KACHEL_PURGE_TOKEN"] = std::string{purge_token};
        }
        process = std::make_unique<test::child_process>(
            std::vector<std::string>{KACHEL_BINARY, "-l", "127.0.0.1:0", "-W", "2", "-p", "8",
                                     "--notify-changes", "--purge-endpoint", test::tls_url(db)},
            env);
        port = test::ready_port(*process);
    }

    /// Access-log lines for `path` whose cache field is `cache` (hit, miss).
    [[nodiscard]] std::size_t logged(std::string const& path, std::string const& cache) const {
        return test::access_logged(process->output(), path, cache);
    }

    /// The sum of a metric's series whose labels hold `labels`.
    [[nodiscard]] double metric(std::string const& name, std::string const& labels = {}) const {
        return test::metric_sum(port, name, labels);
    }

    /// Waits until the metric grows past `above`; false after 10 s.
    [[nodiscard]] bool wait_metric_above(std::string const& name, std::string const& labels,
                                         double above) const {
        auto const deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            if (metric(name, labels) > above) {
                return true;
            }
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }

    [[nodiscard]] double applied() const {
        return metric("kachel_change_notifications_total", "outcome=\"applied\"");
    }
};

/// The z/x/y path of the tile holding (lon, lat) at zoom z.
std::string tile_path(std::string const& source, unsigned z, double lon, double lat) {
    auto const r = tiles::rect_of(tiles::lonlat_box{lon, lat, lon, lat}, z);
    return fmt::format("/{}/{}/{}/{}", source, z, r.min_x, r.min_y);
}

/// A client of `/_/changes`: reads the raw stream (chunk sizes and all: every event lies whole
/// in one chunk) and finds the events in it.
class event_stream {
  public:
    explicit event_stream(unsigned short port) {
        m_stream.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
        std::string const request = fmt::format(
            "GET /_/changes HTTP/1.1\r\nHost: localhost:{}\r\nAccept: text/event-stream\r\n\r\n", port);
        boost::asio::write(m_stream.socket(), boost::asio::buffer(request));
    }

    /// Reads until the stream holds `text` after what earlier calls consumed, for up to `timeout`.
    /// \returns the stream from there to its end so far (empty when not found; the stream's end
    /// is then in ended()).
    std::string read_until(std::string const& text, std::chrono::milliseconds timeout = 10s) {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto const at = m_data.find(text, m_consumed); at != std::string::npos) {
                auto out = m_data.substr(at);
                m_consumed = at + text.size();
                return out;
            }
            auto const left = deadline - std::chrono::steady_clock::now();
            if (left <= 0s || m_ended) {
                return {};
            }
            std::array<char, 4096> buf{};
            m_stream.expires_after(left);
            boost::beast::error_code ec;
            std::size_t n = 0;
            m_stream.async_read_some(boost::asio::buffer(buf),
                                     [&](boost::beast::error_code const& e, std::size_t got) {
                                         ec = e;
                                         n = got;
                                     });
            m_ioc.restart();
            m_ioc.run();
            m_data.append(buf.data(), n);
            if (ec == boost::asio::error::eof) {
                m_ended = true;
            } else if (ec) {
                return {};
            }
        }
    }

    /// The JSON of the next `change` event, for up to `timeout` (null when none came).
    nlohmann::json next_change(std::chrono::milliseconds timeout = 10s) {
        auto const from = read_until("event: change\ndata: ", timeout);
        auto const end = from.find('\n', 19);
        if (from.empty() || end == std::string::npos) {
            return nullptr;
        }
        return nlohmann::json::parse(from.substr(19, end - 19));
    }

    [[nodiscard]] std::string const& data() const { return m_data; }
    [[nodiscard]] bool ended() const { return m_ended; }

  private:
    boost::asio::io_context m_ioc;
    boost::beast::tcp_stream m_stream{m_ioc};
    std::string m_data;
    std::size_t m_consumed = 0;
    bool m_ended = false;
};

/// True when one of the event's boxes holds (lon, lat).
bool holds(nlohmann::json const& event, double lon, double lat) {
    for (auto const& b : event.at("boxes")) {
        if (b.at(0) <= lon && lon <= b.at(2) && b.at(1) <= lat && lat <= b.at(3)) {
            return true;
        }
    }
    return false;
}

std::string read_file(fs::path const& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class live : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        s_db->query(std::string{live_tables_sql});
        // The SQL as a DBA gets it, run as the tables' owner with psql.
        s_dir = fs::temp_directory_path() / fmt::format("kachel-live-{}", ::getpid());
        fs::create_directories(s_dir);
        auto const sql = s_dir / "triggers.sql";
        auto const print =
            fmt::format("PGSSLROOTCERT='{}' RUST_LOG=warn '{}' --notify-changes --print-change-triggers '{}' "
                        "> '{}' 2> '{}'",
                        test::cluster_env("KACHEL_PG_CA"), KACHEL_BINARY, test::tls_url(s_db->name()),
                        sql.string(), (s_dir / "print.log").string());
        s_print_status = std::system(print.c_str());
        s_triggers = read_file(sql);
        // As the owner: the table triggers, and a notice that the event triggers need a superuser;
        // then as a superuser, which adds them.
        for (auto const* role : {"kachel", "postgres"}) {
            auto const run =
                fmt::format("psql -X -q -v ON_ERROR_STOP=1 -h '{}' -p {} -U {} -d '{}' -f '{}' >> '{}' 2>&1",
                            test::cluster_env("KACHEL_PG_SOCKET"), test::cluster_env("KACHEL_PG_PORT"), role,
                            s_db->name(), sql.string(), (s_dir / "psql.log").string());
            s_psql_status = s_psql_status > 0 ? s_psql_status : std::system(run.c_str());
        }
        s_a = std::make_unique<kachel_process>(s_db->name(), false);
        s_b = std::make_unique<kachel_process>(s_db->name(), true);
    }
    static void TearDownTestSuite() {
        s_a.reset();
        s_b.reset();
        s_db.reset();
        std::error_code ec;
        fs::remove_all(s_dir, ec);
    }
    void SetUp() override {
        ASSERT_EQ(s_print_status, 0) << read_file(s_dir / "print.log");
        ASSERT_EQ(s_psql_status, 0) << read_file(s_dir / "psql.log") << "\n" << s_triggers;
        ASSERT_NE(s_a->port, 0) << s_a->process->output();
        ASSERT_NE(s_b->port, 0) << s_b->process->output();
    }

    /// Runs `sql` as the tables' owner and waits until both processes have applied its
    /// `notifications`.
    static void change(std::string const& sql, int notifications = 1) {
        auto const a = s_a->applied();
        auto const b = s_b->applied();
        s_db->query(sql);
        ASSERT_TRUE(s_a->wait_metric_above("kachel_change_notifications_total", "outcome=\"applied\"",
                                           a + notifications - 1))
            << s_a->process->output();
        ASSERT_TRUE(s_b->wait_metric_above("kachel_change_notifications_total", "outcome=\"applied\"",
                                           b + notifications - 1))
            << s_b->process->output();
    }

    static inline std::unique_ptr<test::tempdb> s_db;
    static inline std::unique_ptr<kachel_process> s_a;
    static inline std::unique_ptr<kachel_process> s_b;
    static inline fs::path s_dir;
    static inline std::string s_triggers;
    static inline int s_print_status = -1;
    static inline int s_psql_status = 0;
};

TEST_F(live, the_printed_sql_covers_the_published_relations) {
    // Tables get the four triggers; relations that cannot have them get the statement to run.
    EXPECT_NE(s_triggers.find("CREATE OR REPLACE FUNCTION kachel_notify.notify_change()"), std::string::npos);
    EXPECT_NE(s_triggers.find("CREATE TRIGGER kachel_notify_update AFTER UPDATE ON \"public\".\"live_pts\" "
                              "REFERENCING OLD TABLE AS kachel_old NEW TABLE AS kachel_new"),
              std::string::npos)
        << s_triggers;
    EXPECT_NE(s_triggers.find("kachel_notify.notify_change('geom', '3857', 'fixed')"), std::string::npos);
    EXPECT_NE(s_triggers.find("AFTER TRUNCATE ON \"public\".\"live_merc\""), std::string::npos);
    EXPECT_NE(s_triggers.find("is a view, which cannot have these triggers"), std::string::npos)
        << s_triggers;
    EXPECT_EQ(s_triggers.rfind("COMMIT;\n"), s_triggers.size() - 8);
    // It was run above, on every fixture relation (geography, SRID 0 with default, views...).
    auto const installed =
        s_db->query("SELECT count(*) FROM pg_trigger WHERE tgname = 'kachel_notify_update'");
    EXPECT_GE(std::stoi(installed.at(0)), 3);
    // The event triggers: left out with a notice for the owner, made for the superuser.
    EXPECT_NE(read_file(s_dir / "psql.log").find("only a superuser can create event triggers"),
              std::string::npos)
        << read_file(s_dir / "psql.log");
    auto const events = s_db->query("SELECT string_agg(evtname || ':' || evtevent, ',' ORDER BY evtname) "
                                    "FROM pg_event_trigger WHERE evtname LIKE 'kachel%'");
    EXPECT_EQ(events.at(0), "kachel_notify_ddl:ddl_command_end,kachel_notify_drop:sql_drop");
}

TEST_F(live, a_change_drops_the_tiles_it_touches_and_no_other) {
    auto const paris = tile_path("live_pts", 6, 2.35, 48.85);
    auto const tokyo = tile_path("live_pts", 6, 139.7, 35.7);
    auto const composite = tile_path("live_pts,live_merc", 6, 2.35, 48.85);
    for (auto const* k : {s_a.get(), s_b.get()}) {
        for (int i = 0; i < 2; ++i) {
            for (auto const& path : {paris, tokyo, composite}) {
                ASSERT_EQ(test::http_get(k->port, path).status, 200) << path;
            }
        }
    }
    auto const before = test::http_get(s_a->port, paris);
    EXPECT_NE(before.body.find("paris-v0"), std::string::npos);
    auto const gzip_before =
        test::http_request(s_a->port, paris, boost::beast::http::verb::get, {{"Accept-Encoding", "gzip"}});
    auto const tokyo_hits = s_a->logged(tokyo, "hit");
    auto const paris_misses = s_a->logged(paris, "miss");

    change("UPDATE live_pts SET name = 'paris-v1' WHERE id = 1");

    for (auto const* k : {s_a.get(), s_b.get()}) {
        auto const after = test::http_get(k->port, paris);
        EXPECT_NE(after.body.find("paris-v1"), std::string::npos) << "port " << k->port;
        EXPECT_EQ(after.body.find("paris-v0"), std::string::npos);
        auto const joined = test::http_get(k->port, composite);
        EXPECT_NE(joined.body.find("paris-v1"), std::string::npos);
        EXPECT_NE(joined.body.find("square-v0"), std::string::npos);
    }
    auto const after = test::http_get(s_a->port, paris);
    EXPECT_NE(after.header("etag"), before.header("etag"));
    auto const gzip_after =
        test::http_request(s_a->port, paris, boost::beast::http::verb::get, {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(gzip_after.header("content-encoding"), "gzip");
    EXPECT_NE(http::decompress(gzip_after.body, http::encoding::gzip).find("paris-v1"), std::string::npos);
    EXPECT_NE(gzip_after.header("etag"), gzip_before.header("etag"));
    // Paris was made anew once; Tokyo, far from the change, still came from the cache.
    EXPECT_EQ(s_a->logged(paris, "miss"), paris_misses + 1);
    EXPECT_EQ(test::http_get(s_a->port, tokyo).status, 200);
    EXPECT_EQ(s_a->logged(tokyo, "hit"), tokyo_hits + 1);
    EXPECT_NE(s_a->process->output().find("Change in public.live_pts (1 box(es))"), std::string::npos);

    // A projected table: its boxes come in EPSG:4326 and reach the same tile.
    auto const square = tile_path("live_merc", 6, 2.35, 48.85);
    EXPECT_NE(test::http_get(s_a->port, square).body.find("square-v0"), std::string::npos);
    change("UPDATE live_merc SET label = 'square-v1'");
    EXPECT_NE(test::http_get(s_a->port, square).body.find("square-v1"), std::string::npos);

    // TRUNCATE drops the source's tiles everywhere.
    ASSERT_EQ(test::http_get(s_a->port, tokyo).status, 200);
    change("BEGIN; CREATE TEMP TABLE keep AS SELECT * FROM live_pts; TRUNCATE live_pts; "
           "INSERT INTO live_pts SELECT * FROM keep; UPDATE live_pts SET name = 'tokyo-v1' WHERE id = 2; "
           "COMMIT");
    EXPECT_NE(test::http_get(s_a->port, tokyo).body.find("tokyo-v1"), std::string::npos);
    EXPECT_GE(s_a->metric("kachel_change_source_drops_total", "reason=\"whole_table\""), 1);
}

TEST_F(live, no_stale_tile_is_served_once_a_change_is_applied) {
    // Readers keep the tiles in demand, so that changes land while they are being made: a request
    // that comes once a change is applied must neither wait for a tile begun before it nor find
    // one stored from it.
    auto const fast = tile_path("live_pts", 8, 2.35, 48.85);
    auto const slow = tile_path("live_slow", 8, 2.35, 48.85);
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int i = 0; i < 4; ++i) {
        readers.emplace_back([&, i] {
            while (!stop) {
                (void)test::http_get((i % 2 == 0 ? s_a : s_b)->port, i < 2 ? fast : slow);
            }
        });
    }
    int stale = 0;
    for (int round = 1; round <= 12; ++round) {
        auto const name = fmt::format("paris-r{}", round);
        change(
            fmt::format(
                "BEGIN; UPDATE live_pts SET name = '{}' WHERE id = 1; "
                R"(SELECT pg_notify('kachel_changes', '{{"schema":"public","table":"live_slow"}}'); COMMIT)",
                name),
            2);
        // At once, and once the tiles begun before the change are done (and perhaps stored).
        for (auto const wait : {0ms, 350ms}) {
            std::this_thread::sleep_for(wait);
            for (auto const* k : {s_a.get(), s_b.get()}) {
                for (auto const& path : {fast, slow}) {
                    auto const body = test::http_get(k->port, path).body;
                    if (body.find(name) == std::string::npos) {
                        ++stale;
                        ADD_FAILURE() << "round " << round << ", after " << wait.count() << " ms: " << path
                                      << " on port " << k->port << " is stale";
                    }
                }
            }
        }
    }
    stop = true;
    for (auto& t : readers) {
        t.join();
    }
    EXPECT_EQ(stale, 0);
    EXPECT_GT(s_a->logged(fast, "hit"), 0U); // the cache did serve between changes
}

TEST_F(live, bad_notifications_are_logged_and_ignored) {
    auto const malformed = s_a->metric("kachel_change_notifications_total", "outcome=\"malformed\"");
    auto const not_followed = s_a->metric("kachel_change_notifications_total", "outcome=\"not_followed\"");
    s_db->query("SELECT pg_notify('kachel_changes', 'garbage')");
    s_db->query(
        R"(SELECT pg_notify('kachel_changes', '{"schema":"public","table":"live_pts","boxes":[[1,2,3]]}'))");
    s_db->query(
        R"(SELECT pg_notify('kachel_changes', '{"schema":"public","table":"nowhere","boxes":[[1,2,3,4]]}'))");
    ASSERT_TRUE(s_a->wait_metric_above("kachel_change_notifications_total", "outcome=\"not_followed\"",
                                       not_followed));
    ASSERT_TRUE(
        s_a->wait_metric_above("kachel_change_notifications_total", "outcome=\"malformed\"", malformed + 1));
    EXPECT_NE(s_a->process->output().find("Ignored a change notification"), std::string::npos);
    EXPECT_NE(s_a->process->output().find(": garbage"), std::string::npos);
    EXPECT_EQ(test::http_get(s_a->port, tile_path("live_pts", 3, 2.35, 48.85)).status, 200);
}

TEST_F(live, a_lost_listener_reconnects_and_drops_what_it_may_have_missed) {
    auto const paris = tile_path("live_pts", 7, 2.35, 48.85);
    ASSERT_EQ(test::http_get(s_a->port, paris).status, 200);
    ASSERT_EQ(test::http_get(s_a->port, paris).status, 200);
    auto const misses = s_a->logged(paris, "miss");
    auto const reconnects = s_a->metric("kachel_change_listener_reconnects_total");
    // A change while nobody listens, and the listeners cut off.
    s_db->query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kachel changes'");
    ASSERT_TRUE(s_a->wait_metric_above("kachel_change_listener_reconnects_total", "", reconnects));
    ASSERT_TRUE(s_a->process->wait_for_output("follow again", 10s)) << s_a->process->output();
    EXPECT_EQ(test::http_get(s_a->port, paris).status, 200);
    EXPECT_EQ(s_a->logged(paris, "miss"), misses + 1);
    EXPECT_GE(s_a->metric("kachel_change_source_drops_total", "reason=\"reconnect\""), 1);
    // And the new connection follows changes.
    ASSERT_TRUE(s_b->process->wait_for_output("follow again", 10s)) << s_b->process->output();
    change("UPDATE live_pts SET name = 'paris-after-reconnect' WHERE id = 1");
    EXPECT_NE(test::http_get(s_a->port, paris).body.find("paris-after-reconnect"), std::string::npos);
}

TEST_F(live, a_purge_drops_the_tiles_it_names) {
    namespace bhttp = boost::beast::http;
    auto const paris = tile_path("live_pts", 9, 2.35, 48.85);
    auto const tokyo = tile_path("live_pts", 9, 139.7, 35.7);
    auto const paris_deep = tile_path("live_pts", 12, 2.35, 48.85);
    for (auto const* k : {s_a.get(), s_b.get()}) {
        for (int i = 0; i < 2; ++i) {
            for (auto const& path : {paris, tokyo, paris_deep}) {
                ASSERT_EQ(test::http_get(k->port, path).status, 200);
            }
        }
    }
    // B asks for its token; A, without one, answers this machine.
    auto const refused = test::http_request(s_b->port, "/cache/live_pts", bhttp::verb::delete_);
    EXPECT_EQ(refused.status, 401);
    auto const wrong = test::http_request(s_b->port, "/cache/live_pts", bhttp::verb::delete_,
                                          {{"Authorization", "Bearer not-the-token"}});
    EXPECT_EQ(wrong.status, 401);
    auto const misses = s_b->logged(paris, "miss");
    auto const deep_misses = s_b->logged(paris_deep, "miss");
    auto const tokyo_misses = s_b->logged(tokyo, "miss");
    // Only Paris, only zooms 8 to 10.
    auto const purged =
        test::http_request(s_b->port, "/cache/live_pts?bbox=2,48,3,49&minzoom=8&maxzoom=10",
                           bhttp::verb::delete_, {{"Authorization", "Bearer " + std::string{purge_token}}});
    ASSERT_EQ(purged.status, 200) << purged.body;
    EXPECT_EQ(purged.header("content-type"), "application/json");
    EXPECT_EQ(purged.body, R"({"dropped":1,"sources":["live_pts"]})");
    for (auto const& path : {paris, tokyo, paris_deep}) {
        ASSERT_EQ(test::http_get(s_b->port, path).status, 200);
    }
    EXPECT_EQ(s_b->logged(paris, "miss"), misses + 1);
    EXPECT_EQ(s_b->logged(paris_deep, "miss"), deep_misses);
    EXPECT_EQ(s_b->logged(tokyo, "miss"), tokyo_misses);
    EXPECT_EQ(s_b->process->output().find(purge_token), std::string::npos) << "the token is never logged";
    // A whole source, on A from this machine; then bad requests.
    auto const a_misses = s_a->logged(paris_deep, "miss");
    auto const all = test::http_request(s_a->port, "/cache/live_pts", bhttp::verb::delete_);
    ASSERT_EQ(all.status, 200) << all.body;
    EXPECT_NE(all.body.find("\"dropped\":"), std::string::npos) << all.body;
    ASSERT_EQ(test::http_get(s_a->port, paris_deep).status, 200);
    EXPECT_EQ(s_a->logged(paris_deep, "miss"), a_misses + 1);
    EXPECT_EQ(test::http_request(s_a->port, "/cache/nowhere", bhttp::verb::delete_).status, 404);
    EXPECT_EQ(test::http_request(s_a->port, "/cache/live_pts?bbox=9,9,1,1", bhttp::verb::delete_).status,
              400);
    EXPECT_EQ(test::http_request(s_a->port, "/cache/live_pts").status, 405);
}

TEST_F(live, the_change_stream_tells_what_changed_and_where) {
    namespace bhttp = boost::beast::http;
    event_stream a{s_a->port};
    event_stream b{s_b->port};
    for (auto* stream : {&a, &b}) {
        auto const head = stream->read_until("HTTP/1.1 200 OK");
        ASSERT_FALSE(head.empty()) << stream->data();
        ASSERT_FALSE(stream->read_until(": kachel change events").empty()) << stream->data();
        EXPECT_NE(stream->data().find("Content-Type: text/event-stream"), std::string::npos);
        EXPECT_NE(stream->data().find("Transfer-Encoding: chunked"), std::string::npos);
        EXPECT_NE(stream->data().find("Cache-Control: no-store"), std::string::npos);
    }
    // An UPDATE reaches every instance's stream, with the area it touched.
    s_db->query("UPDATE live_pts SET name = 'paris-stream' WHERE id = 1");
    for (auto* stream : {&a, &b}) {
        auto const event = stream->next_change();
        ASSERT_FALSE(event.is_null()) << stream->data();
        EXPECT_EQ(event.at("sources"), nlohmann::json::array({"live_pts"})) << event;
        EXPECT_TRUE(holds(event, 2.35, 48.85)) << event;
        EXPECT_FALSE(holds(event, 139.7, 35.7)) << event;
        EXPECT_GT(event.at("margin").get<double>(), 0) << event; // the source's buffer
    }
    // A purge is told on the instance that purged, with its box and zooms.
    auto const purged =
        test::http_request(s_a->port, "/cache/live_merc?bbox=2,48,3,49&minzoom=3", bhttp::verb::delete_);
    ASSERT_EQ(purged.status, 200) << purged.body;
    auto const event = a.next_change();
    ASSERT_FALSE(event.is_null()) << a.data();
    EXPECT_EQ(event.at("sources"), nlohmann::json::array({"live_merc"}));
    EXPECT_EQ(event.at("boxes"), nlohmann::json::parse("[[2,48,3,49]]"));
    EXPECT_EQ(event.at("minzoom"), 3);
    EXPECT_FALSE(event.contains("maxzoom"));
    // HEAD gets the head alone; the stream is not a request the metrics wait for.
    auto const head = test::http_request(s_a->port, "/_/changes", bhttp::verb::head);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("content-type"), "text/event-stream");
}

TEST_F(live, a_stopping_server_ends_its_change_streams_at_once) {
    kachel_process k{s_db->name(), false};
    ASSERT_NE(k.port, 0) << k.process->output();
    event_stream stream{k.port};
    ASSERT_FALSE(stream.read_until(": kachel change events").empty()) << stream.data();
    auto const began = std::chrono::steady_clock::now();
    k.process->signal(SIGTERM);
    // The stream ends with the chunked body's last chunk, and the server does not wait for it.
    EXPECT_FALSE(stream.read_until("\r\n0\r\n\r\n", 5s).empty()) << stream.data();
    auto const status = k.process->wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << k.process->output();
    EXPECT_EQ(*status, 0) << k.process->output();
    EXPECT_LT(std::chrono::steady_clock::now() - began, 3s) << k.process->output();
    EXPECT_NE(k.process->output().find("\"GET /_/changes\" 200"), std::string::npos) << k.process->output();
}

TEST_F(live, the_catalog_follows_the_schema_at_once_on_every_instance) {
    event_stream stream{s_a->port};
    ASSERT_FALSE(stream.read_until(": kachel change events").empty()) << stream.data();
    auto const reloads = s_a->metric("kachel_catalog_reloads_total", "outcome=\"changed\"");
    auto const kept = tile_path("live_pts", 10, 139.7, 35.7);
    ASSERT_EQ(test::http_get(s_a->port, kept).status, 200);
    ASSERT_EQ(test::http_get(s_a->port, kept).status, 200);
    auto const kept_misses = s_a->logged(kept, "miss");
    // A new table: published by both processes, without a restart (reload_interval is 10 min:
    // only the event trigger's notification can do it this soon).
    s_db->query("CREATE TABLE live_new (id integer PRIMARY KEY, name text, geom geometry(Point, 4326));"
                "INSERT INTO live_new VALUES (1, 'new-v0', 'SRID=4326;POINT(2.35 48.85)')");
    auto const tile = tile_path("live_new", 6, 2.35, 48.85);
    for (auto const* k : {s_a.get(), s_b.get()}) {
        auto const deadline = std::chrono::steady_clock::now() + 10s;
        while (test::http_get(k->port, "/live_new").status != 200 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(20ms);
        }
        ASSERT_EQ(test::http_get(k->port, "/live_new").status, 200) << k->process->output();
        EXPECT_NE(test::http_get(k->port, "/catalog").body.find("\"live_new\""), std::string::npos);
        EXPECT_NE(test::http_get(k->port, tile).body.find("new-v0"), std::string::npos);
    }
    auto const added = stream.read_until("event: catalog\ndata: ");
    ASSERT_FALSE(added.empty()) << stream.data();
    EXPECT_NE(added.find(R"("added":["live_new"])"), std::string::npos) << added;
    EXPECT_GT(s_a->metric("kachel_catalog_reloads_total", "outcome=\"changed\""), reloads);
    EXPECT_NE(s_a->process->output().find("added [live_new]"), std::string::npos);
    // The sources that did not change kept their cached tiles.
    ASSERT_EQ(test::http_get(s_a->port, kept).status, 200);
    EXPECT_EQ(s_a->logged(kept, "miss"), kept_misses);

    // A new column: the source is republished with it, and its cached tiles go.
    ASSERT_EQ(test::http_get(s_a->port, tile).status, 200); // cached now
    s_db->query("ALTER TABLE live_new ADD COLUMN kind text DEFAULT 'museum'");
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    while (test::http_get(s_a->port, "/live_new").body.find("\"kind\"") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(test::http_get(s_a->port, "/live_new").body.find("\"kind\""), std::string::npos);
    EXPECT_NE(test::http_get(s_a->port, tile).body.find("museum"), std::string::npos);
    auto const changed = stream.read_until("event: catalog\ndata: ");
    EXPECT_NE(changed.find(R"("changed":["live_new"])"), std::string::npos) << stream.data();

    // A request in flight while the catalog changes finishes on the sources it started with.
    std::atomic<unsigned> slow_status{0};
    std::thread slow{
        [&] { slow_status = test::http_get(s_a->port, tile_path("live_slow", 5, 2.35, 48.85)).status; }};
    std::this_thread::sleep_for(50ms);
    // Dropped: 404 on both, and the other sources stay.
    s_db->query("DROP TABLE live_new");
    slow.join();
    EXPECT_EQ(slow_status.load(), 200U);
    for (auto const* k : {s_a.get(), s_b.get()}) {
        auto const gone = std::chrono::steady_clock::now() + 10s;
        while (test::http_get(k->port, "/live_new").status != 404 &&
               std::chrono::steady_clock::now() < gone) {
            std::this_thread::sleep_for(20ms);
        }
        EXPECT_EQ(test::http_get(k->port, "/live_new").status, 404);
        EXPECT_EQ(test::http_get(k->port, tile).status, 404);
        EXPECT_EQ(test::http_get(k->port, "/live_pts").status, 200);
    }
    auto const removed = stream.read_until("event: catalog\ndata: ");
    EXPECT_NE(removed.find(R"("removed":["live_new"])"), std::string::npos) << stream.data();
    // A temporary table changes nothing: no reload.
    auto const before = s_a->metric("kachel_catalog_reloads_total");
    s_db->query("CREATE TEMP TABLE scratch (id integer); DROP TABLE scratch");
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(s_a->metric("kachel_catalog_reloads_total"), before);
}

TEST_F(live, reload_interval_finds_new_tables_and_keeps_configured_sources_as_configured) {
    // No listener here (no notify_changes): only the interval reloads.
    auto const config = s_dir / "reload.yaml";
    std::ofstream{config} << fmt::format(R"(postgres:
  connection_string: '{}'
  reload_interval: 1s
  auto_publish: true
  tables:
    configured_pts:
      schema: public
      table: live_pts
      srid: 4326
      geometry_column: geom
      minzoom: 3
      properties: {{name: text}}
)",
                                         test::tls_url(s_db->name()));
    test::child_process k{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-W", "1", "-c", config.string()},
                          {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
                           {"DATABASE_URL", std::nullopt},
                           {"RUST_LOG", "info"}}};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output();
    EXPECT_EQ(test::http_get(port, "/live_later").status, 404);
    // Made without firing the event triggers, as in a database without them.
    test::admin_connection{s_db->name()}.query(
        "SET session_replication_role = replica; SET ROLE kachel;"
        "CREATE TABLE live_later (id integer, geom geometry(Point, 4326));"
        "INSERT INTO live_later VALUES (1, 'SRID=4326;POINT(1 1)')");
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    while (test::http_get(port, "/live_later").status != 200 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(test::http_get(port, "/live_later").status, 200) << k.output();
    auto const configured = test::http_get(port, "/configured_pts");
    EXPECT_NE(configured.body.find("\"minzoom\":3"), std::string::npos) << configured.body;
    s_db->query("DROP TABLE live_later");
}

} // namespace

// PMTiles archives read over HTTPS range requests from a real server: Debian's nginx, with a
// certificate from a CA made here. The archives are written by tests/archives/write_pmtiles.mjs
// and checked by the reference reader; the tiles are made by PostGIS.

#include "support/archive_fixtures.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
using test::read_file;
using test::run_shell;
using test::write_file;
namespace fs = std::filesystem;

namespace {

/// A TCP port nothing listens on now.
unsigned short free_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    return a.local_endpoint().port();
}

bool accepts_connections(unsigned short port) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s{ioc};
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    return !ec;
}

class pmtiles_remote : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ASSERT_STRNE(KACHEL_NGINX, "")
            << "nginx is not installed: run scripts/install-deps.sh --with-test-tools";
        s_suite.prepare("pmtiles-remote");
        s_dir = s_suite.dir;
        auto const www = s_dir / "www";
        fs::create_directories(www / "noranges");
        fs::create_directories(www / "secret");
        fs::create_directories(s_dir / "nginx-temp");
        // Zoom 0 to 2: one city per tile, so every tile differs.
        constexpr std::array<double, 4> latitudes{75, 30, -30, -75};
        for (int z = 0; z <= 2; ++z) {
            int const n = 1 << z;
            for (int x = 0; x < n; ++x) {
                for (int y = 0; y < n; ++y) {
                    double const lon = -180.0 + (360.0 / n) * (x + 0.5);
                    double const lat = z == 0 ? 10.0 : (z == 1 ? (y == 0 ? 40.0 : -40.0) : latitudes.at(y));
                    auto const name = std::to_string(z) + "-" + std::to_string(x) + "-" + std::to_string(y);
                    auto const bytes = test::postgis_tile(*s_suite.db, "c" + name, lon, lat, z, x, y);
                    write_file(s_dir / name, bytes);
                    run_shell("cd '" + s_dir.string() + "' && gzip -n -c " + name + " > " + name + ".gz");
                    s_tiles[{z, x, y}] = bytes;
                }
            }
        }
        // Version A: the tiles where they belong, gzip, with leaf directories.
        std::vector<test::tile_file> a;
        // Version B: each tile holds the bytes of the one mirrored in x, plain, no leaves.
        std::vector<test::tile_file> b;
        for (auto const& [zxy, bytes] : s_tiles) {
            auto const [z, x, y] = zxy;
            auto const name = [](int tz, int tx, int ty) {
                return std::to_string(tz) + "-" + std::to_string(tx) + "-" + std::to_string(ty);
            };
            a.push_back({z, x, y, s_dir / (name(z, x, y) + ".gz")});
            b.push_back({z, x, y, s_dir / name(z, (1 << z) - 1 - x, y)});
        }
        test::write_pmtiles(s_dir / "a.pmtiles", a, 2, 2, 4, "A");
        test::write_pmtiles(s_dir / "b.pmtiles", b, 1, 1, 0, "B");
        for (auto const* target :
             {"world.pmtiles", "live.pmtiles", "noranges/world.pmtiles", "secret/world.pmtiles"}) {
            fs::copy_file(s_dir / "a.pmtiles", www / target);
        }

        // A CA, and a certificate for localhost (by name only: 127.0.0.1 does not match it).
        run_shell(
            "cd '" + s_dir.string() +
            "' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=kachel test web CA' "
            "-keyout ca.key -out ca.crt 2>/dev/null && "
            "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr "
            "2>/dev/null && printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile san.ext -out server.crt 2>/dev/null");

        s_https = free_port();
        s_http = free_port();
        std::ostringstream conf;
        auto const d = s_dir.string();
        conf << "daemon off; master_process off; worker_processes 1; pid " << d << "/nginx.pid;\n"
             << "error_log " << d << "/nginx-error.log;\n"
             << "events { worker_connections 256; }\n"
             << "http {\n"
             << "  log_format conn '$connection $connection_requests $status $request_uri $http_range';\n"
             << "  access_log " << d << "/access.log conn;\n"
             << "  client_body_temp_path " << d << "/nginx-temp/body; proxy_temp_path " << d
             << "/nginx-temp/proxy;\n"
             << "  fastcgi_temp_path " << d << "/nginx-temp/fcgi; uwsgi_temp_path " << d
             << "/nginx-temp/uwsgi; scgi_temp_path " << d << "/nginx-temp/scgi;\n"
             << "  keepalive_requests 10000;\n"
             << "  server {\n"
             << "    listen 127.0.0.1:" << s_https << " ssl;\n"
             << "    ssl_certificate " << d << "/server.crt; ssl_certificate_key " << d << "/server.key;\n"
             << "    root " << d << "/www;\n"
             << "    location /noranges/ { max_ranges 0; }\n"
             << "    location /secret/ { deny all; }\n"
             << "  }\n"
             << "  server { listen 127.0.0.1:" << s_http << "; root " << d << "/www; }\n"
             << "}\n";
        write_file(s_dir / "nginx.conf", conf.str());
        s_nginx = std::make_unique<test::child_process>(std::vector<std::string>{KACHEL_NGINX, "-p", d, "-e",
                                                                                 d + "/nginx-error.log", "-c",
                                                                                 d + "/nginx.conf"},
                                                        std::map<std::string, std::optional<std::string>>{});
        for (int i = 0; i < 100 && !accepts_connections(s_https); ++i) {
            std::this_thread::sleep_for(50ms);
        }
        ASSERT_TRUE(accepts_connections(s_https))
            << s_nginx->output() << read_file(s_dir / "nginx-error.log");
    }
    static void TearDownTestSuite() {
        s_nginx.reset();
        s_suite.finish();
    }

    [[nodiscard]] static std::string url(std::string const& path) {
        return "https://localhost:" + std::to_string(s_https) + "/" + path;
    }

    /// kachel with `config` (YAML) as its config file, without a database.
    [[nodiscard]] static std::unique_ptr<test::child_process> start_kachel(std::string const& config) {
        static int count = 0;
        auto const file = s_dir / ("kachel-" + std::to_string(count++) + ".yaml");
        write_file(file, config);
        return std::make_unique<test::child_process>(
            std::vector<std::string>{KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", file.string()},
            std::map<std::string, std::optional<std::string>>{{"DATABASE_URL", std::nullopt}});
    }

    /// The config's `pmtiles` section trusting the test CA, with `sources`.
    [[nodiscard]] static std::string with_ca(std::string const& sources) {
        return "pmtiles:\n  ssl_root_cert: " + (s_dir / "ca.crt").string() + "\n  sources:\n" + sources;
    }

    static inline test::archive_suite s_suite;
    static inline fs::path s_dir;
    static inline std::map<std::tuple<int, int, int>, std::string> s_tiles;
    static inline unsigned short s_https = 0;
    static inline unsigned short s_http = 0;
    static inline std::unique_ptr<test::child_process> s_nginx;
};

std::string path_of(std::string const& id, std::tuple<int, int, int> const& zxy) {
    auto const [z, x, y] = zxy;
    return "/" + id + "/" + std::to_string(z) + "/" + std::to_string(x) + "/" + std::to_string(y);
}

/// The access log's lines for `uri`: {connection serial, status}.
std::vector<std::pair<std::string, std::string>> requests_for(fs::path const& log, std::string const& uri) {
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream in{read_file(log)};
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields{line};
        std::string connection;
        std::string serial;
        std::string status;
        std::string target;
        fields >> connection >> serial >> status >> target;
        if (target == uri) {
            out.emplace_back(connection, status);
        }
    }
    return out;
}

} // namespace

TEST_F(pmtiles_remote, every_tile_comes_over_https_ranges_on_kept_alive_connections) {
    auto const k = start_kachel(with_ca("    world: " + url("world.pmtiles") + "\n"));
    auto const port = test::ready_port(*k);
    ASSERT_NE(port, 0) << k->output();
    for (auto const& [zxy, bytes] : s_tiles) {
        auto const r = test::http_get(port, path_of("world", zxy));
        EXPECT_EQ(r.status, 200U) << path_of("world", zxy);
        EXPECT_EQ(r.body, bytes) << path_of("world", zxy);
    }
    EXPECT_EQ(test::http_get(port, "/world/3/0/0").status, 404U) << "beyond the archive's zooms";
    auto const doc = nlohmann::json::parse(test::http_get(port, "/world").body);
    EXPECT_EQ(doc["name"], "Cities A");
    EXPECT_EQ(doc["maxzoom"], 2);

    // Every range went to nginx with its answer 206, over a few reused connections.
    auto const seen = requests_for(s_dir / "access.log", "/world.pmtiles");
    ASSERT_GE(seen.size(), s_tiles.size()) << "one range per tile at least";
    std::set<std::string> connections;
    for (auto const& [connection, status] : seen) {
        EXPECT_EQ(status, "206");
        connections.insert(connection);
    }
    EXPECT_LE(connections.size(), 4U)
        << seen.size() << " requests on " << connections.size() << " connections";
}

TEST_F(pmtiles_remote, a_replaced_archive_is_served_from_its_new_version_and_cached_tiles_go) {
    auto const live = s_dir / "www" / "live.pmtiles";
    auto const k = start_kachel(with_ca("    live: " + url("live.pmtiles") + "\n"));
    auto const port = test::ready_port(*k);
    ASSERT_NE(port, 0) << k->output();
    EXPECT_EQ(test::http_get(port, "/live/1/0/0").body, s_tiles.at({1, 0, 0}));
    EXPECT_EQ(test::http_get(port, "/live/2/0/0").body, s_tiles.at({2, 0, 0})) << "version A, now cached";

    // Replaced atomically, with another size and time, so nginx gives it another ETag.
    fs::copy_file(s_dir / "b.pmtiles", s_dir / "www" / "live.next", fs::copy_options::overwrite_existing);
    run_shell("touch -d '2001-02-03 04:05:06' '" + (s_dir / "www" / "live.next").string() + "'");
    fs::rename(s_dir / "www" / "live.next", live);

    // A tile not cached reaches the archive: kachel sees the new ETag, reads the new directories,
    // and serves version B, where 1/1/0 holds the bytes of 1/0/0.
    auto const first = test::http_get(port, "/live/1/1/0");
    EXPECT_EQ(first.status, 200U);
    EXPECT_EQ(first.body, s_tiles.at({1, 0, 0}));
    EXPECT_TRUE(k->wait_for_output("serving the new version", 10s)) << k->output();
    // The tiles cached from version A went with the change.
    EXPECT_EQ(test::http_get(port, "/live/2/0/0").body, s_tiles.at({2, 3, 0}));
    for (auto const& [zxy, bytes] : s_tiles) {
        auto const [z, x, y] = zxy;
        EXPECT_EQ(test::http_get(port, path_of("live", zxy)).body, s_tiles.at({z, (1 << z) - 1 - x, y}))
            << path_of("live", zxy);
    }
    // The old version's ranges were asked with If-Match: nginx answered 412 at the switch.
    bool refused = false;
    for (auto const& [connection, status] : requests_for(s_dir / "access.log", "/live.pmtiles")) {
        refused = refused || status == "412";
    }
    EXPECT_TRUE(refused) << read_file(s_dir / "access.log");
}

TEST_F(pmtiles_remote, every_reload_interval_the_server_is_asked_so_cached_tiles_of_a_replaced_archive_go) {
    // After the replacement only a cached tile is asked for: no read reaches the archive, so
    // only the periodic question (pmtiles.reload_interval) can tell that it changed.
    auto const www = s_dir / "www";
    fs::copy_file(s_dir / "a.pmtiles", www / "asked.pmtiles", fs::copy_options::overwrite_existing);
    auto const k =
        start_kachel(with_ca("    asked: " + url("asked.pmtiles") + "\n") + "  reload_interval: 1s\n");
    auto const port = test::ready_port(*k);
    ASSERT_NE(port, 0) << k->output();
    EXPECT_EQ(test::http_get(port, "/asked/2/0/0").body, s_tiles.at({2, 0, 0})) << "version A, now cached";
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(k->output().find("serving the new version"), std::string::npos)
        << "asked, and still the same version: " << k->output();

    fs::copy_file(s_dir / "b.pmtiles", www / "asked.next", fs::copy_options::overwrite_existing);
    run_shell("touch -d '2001-02-03 04:05:06' '" + (www / "asked.next").string() + "'");
    fs::rename(www / "asked.next", www / "asked.pmtiles");
    EXPECT_TRUE(k->wait_for_output("serving the new version", 10s)) << k->output();
    EXPECT_TRUE(k->wait_for_output("Source 'asked' changed: ", 5s)) << k->output();
    EXPECT_EQ(test::http_get(port, "/asked/2/0/0").body, s_tiles.at({2, 3, 0})) << "version B";
}

TEST_F(pmtiles_remote, an_archive_gone_from_its_server_answers_502_until_it_returns) {
    auto const www = s_dir / "www";
    fs::copy_file(s_dir / "a.pmtiles", www / "away.pmtiles", fs::copy_options::overwrite_existing);
    auto const k = start_kachel("cache: disable\n" + with_ca("    away: " + url("away.pmtiles") + "\n"));
    auto const port = test::ready_port(*k);
    ASSERT_NE(port, 0) << k->output();
    EXPECT_EQ(test::http_get(port, "/away/0/0/0").body, s_tiles.at({0, 0, 0}));
    fs::rename(www / "away.pmtiles", www / "away.hidden");
    auto const gone = test::http_get(port, "/away/0/0/0");
    EXPECT_EQ(gone.status, 502U) << gone.body;
    EXPECT_EQ(gone.header("retry-after"), "5");
    EXPECT_EQ(gone.body.find("localhost"), std::string::npos)
        << "the cause is logged, not sent: " << gone.body;
    EXPECT_TRUE(k->wait_for_output("404 Not Found", 10s)) << k->output();
    fs::rename(www / "away.hidden", www / "away.pmtiles");
    EXPECT_EQ(test::http_get(port, "/away/2/3/1").body, s_tiles.at({2, 3, 1}));
}

TEST_F(pmtiles_remote, each_server_problem_stops_startup_with_its_cause) {
    auto const https = std::to_string(s_https);
    // A server that takes connections (the kernel does) and never says a word.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor silent{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    auto const silent_port = std::to_string(silent.local_endpoint().port());
    struct bad_case {
        std::string config;
        std::string message;
    };
    std::vector<bad_case> const cases{
        {with_ca("    a: " + url("missing.pmtiles") + "\n"), "404 Not Found"},
        {with_ca("    a: " + url("secret/world.pmtiles") + "\n"), "403 Forbidden"},
        {with_ca("    a: " + url("noranges/world.pmtiles") + "\n"), "does not serve byte ranges"},
        // The system's CAs do not know the test CA.
        {"pmtiles:\n  sources:\n    a: " + url("world.pmtiles") + "\n",
         "is not trusted: unable to get local issuer certificate"},
        // The certificate names localhost, not 127.0.0.1.
        {with_ca("    a: https://127.0.0.1:" + https + "/world.pmtiles\n"),
         "is not trusted: IP address mismatch"},
        {with_ca("    a: https://localhost:" + std::to_string(free_port()) + "/world.pmtiles\n"),
         "Connection refused (after 3 attempts)"},
        {"pmtiles:\n  connect_timeout: 1s\n  sources:\n    a: https://localhost:" + silent_port +
             "/world.pmtiles\n",
         "failed: timed out (after 3 attempts)"},
        {"pmtiles:\n  allow_http: false\n  paths: http://localhost:" + std::to_string(s_http) +
             "/world.pmtiles\n",
         "pmtiles.allow_http is false"},
        {"pmtiles:\n  aws_region: eu-west-1\n  paths: " + url("world.pmtiles") + "\n",
         "'pmtiles.aws_region' is not a pmtiles key kachel reads"},
        {"mbtiles:\n  paths: " + url("world.mbtiles") + "\n", "MBTiles files are read from local disks only"},
    };
    for (auto const& c : cases) {
        auto const k = start_kachel(c.config);
        EXPECT_EQ(k->wait_exit(60s), 1) << c.config;
        EXPECT_NE(k->output().find(c.message), std::string::npos) << c.config << k->output();
    }
}

TEST_F(pmtiles_remote, http_urls_on_the_command_line_are_read_as_martin_reads_them) {
    // Martin's default allows http://; the id comes from the URL's file name.
    test::child_process k{{KACHEL_BINARY, "-l", "127.0.0.1:0",
                           "http://localhost:" + std::to_string(s_http) + "/world.pmtiles?version=1"},
                          {{"DATABASE_URL", std::nullopt}}};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output();
    EXPECT_EQ(test::http_get(port, "/world/2/1/3").body, s_tiles.at({2, 1, 3}));
    EXPECT_EQ(k.output().find("version=1"), std::string::npos) << "the query is left out of the log";
}

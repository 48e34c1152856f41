#pragma once

// What the archive tests share: files in and out, shell steps, and MVT tiles made by PostGIS.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace kachel::test {

inline std::string read_file(std::filesystem::path const& path) {
    std::ifstream in{path, std::ios::binary};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_file(std::filesystem::path const& path, std::string const& data) {
    std::ofstream out{path, std::ios::binary};
    out << data;
}

/// Runs a shell command; a failure fails the test.
inline void run_shell(std::string const& command) {
    ASSERT_EQ(std::system(command.c_str()), 0) << command; // NOLINT(cert-env33-c): test tools
}

/// An MVT tile made by PostGIS: layer `cities`, one point feature named `name` at lon/lat, in
/// tile z/x/y.
inline std::string postgis_tile(tempdb const& db, std::string const& name, double lon, double lat, int z,
                                int x, int y) {
    auto const hex =
        db.query("SELECT encode(ST_AsMVT(t, 'cities'), 'hex') FROM (SELECT '" + name +
                 "' AS name, ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(" + std::to_string(lon) +
                 ", " + std::to_string(lat) + "), 4326), 3857), ST_TileEnvelope(" + std::to_string(z) + ", " +
                 std::to_string(x) + ", " + std::to_string(y) + ")) AS geom) AS t")[0];
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return out;
}

/// One tile of an archive to write: its coordinates and the file holding its bytes as stored.
struct tile_file {
    int z = 0;
    int x = 0;
    int y = 0;
    std::filesystem::path file;
};

/// Writes the PMTiles archive `out` with tests/archives/write_pmtiles.mjs (which reads every
/// tile back through the reference reader): tiles plain, gzipped, brotli- or zstd-compressed
/// (`tile_compression` 1, 2, 3, 4; brotli and zstd ones compressed by the writer), directories likewise
/// (`internal`), leaf directories of `leaf_size` entries (0: none), metadata named `name`.
inline void write_pmtiles(std::filesystem::path const& out, std::vector<tile_file> const& tiles,
                          int tile_compression, int internal, int leaf_size, std::string const& name) {
    nlohmann::json spec{
        {"out", out.string()},
        {"tile_type", 1},
        {"tile_compression", tile_compression},
        {"internal_compression", internal},
        {"leaf_size", leaf_size},
        {"compress_tiles", tile_compression >= 3},
        {"bounds", {-170.5, -60.25, 170.5, 75.125}},
        {"center", {3.4, 6.5, 1}},
        {"metadata",
         {{"name", "Cities " + name},
          {"attribution", "test data"},
          {"vector_layers", {{{"id", "cities"}, {"fields", {{"name", "String"}}}}}}}},
    };
    spec["tiles"] = nlohmann::json::array();
    for (auto const& t : tiles) {
        spec["tiles"].push_back({{"z", t.z}, {"x", t.x}, {"y", t.y}, {"file", t.file.string()}});
    }
    auto const spec_file = out.string() + ".json";
    write_file(spec_file, spec.dump());
    run_shell(std::string{"cd '"} + KACHEL_ARCHIVE_TOOLS + "' && '" + KACHEL_NODE + "' write_pmtiles.mjs '" +
              spec_file + "'");
}

/// What an archive test suite holds: a database with the fixtures, a scratch directory for the
/// archives, and a kachel serving the database and `archive` paths.
struct archive_suite {
    std::unique_ptr<tempdb> db;
    std::filesystem::path dir;
    std::unique_ptr<child_process> kachel;
    unsigned short port = 0;

    /// The database and an empty scratch directory `kachel-NAME-PID` (with `archives/` in it).
    void prepare(std::string const& name) {
        db = std::make_unique<tempdb>();
        dir = std::filesystem::temp_directory_path() / ("kachel-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir / "archives");
    }

    /// Starts kachel on the database and `paths`.
    void start(std::vector<std::string> const& paths) {
        std::vector<std::string> args{KACHEL_BINARY, "-l", "127.0.0.1:0", tls_url(db->name())};
        args.insert(args.end(), paths.begin(), paths.end());
        kachel = std::make_unique<child_process>(
            args, std::map<std::string, std::optional<std::string>>{
                      {"PGSSLROOTCERT", cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}});
        port = ready_port(*kachel);
    }

    /// Stops kachel, drops the database and the directory (both kept with KACHEL_KEEP_TEST_DB).
    void finish() {
        kachel.reset();
        db.reset();
        if (std::getenv("KACHEL_KEEP_TEST_DB") == nullptr) {
            std::filesystem::remove_all(dir);
        }
    }

    /// GET `target` with the Accept-Encoding given (none when empty).
    [[nodiscard]] http_reply get(std::string const& target, std::string const& accept_encoding = {}) const {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!accept_encoding.empty()) {
            headers.emplace_back("Accept-Encoding", accept_encoding);
        }
        return http_request(port, target, boost::beast::http::verb::get, headers);
    }
};

/// A kachel serving archives only (no database): `paths`, on a port of its own.
struct archive_server {
    std::unique_ptr<child_process> kachel;
    unsigned short port = 0;

    explicit archive_server(std::vector<std::string> const& paths) {
        std::vector<std::string> args{KACHEL_BINARY, "-l", "127.0.0.1:0"};
        args.insert(args.end(), paths.begin(), paths.end());
        kachel = std::make_unique<child_process>(
            args, std::map<std::string, std::optional<std::string>>{{"DATABASE_URL", std::nullopt}});
        port = ready_port(*kachel);
    }

    [[nodiscard]] http_reply get(std::string const& target, std::string const& accept_encoding) const {
        return http_request(port, target, boost::beast::http::verb::get,
                            {{"Accept-Encoding", accept_encoding}});
    }
};

/// `server` answers `path` as `reference` does, in identity and in gzip: the status, the
/// encoding, the ETag and the bytes.
inline void expect_same_answers(archive_suite const& reference, archive_server const& server,
                                std::string const& path) {
    for (auto const* accept : {"identity", "gzip"}) {
        SCOPED_TRACE(path + " " + accept);
        auto const expected = reference.get(path, accept);
        auto const r = server.get(path, accept);
        EXPECT_EQ(r.status, expected.status);
        EXPECT_EQ(r.header("content-encoding"), expected.header("content-encoding"));
        EXPECT_EQ(r.header("etag"), expected.header("etag"));
        EXPECT_FALSE(r.header("etag").empty());
        EXPECT_EQ(r.body, expected.body);
    }
}

/// Copies `files` into `dir` (made afresh) with no write permission for anyone: files that
/// nothing can write, which kachel maps or opens immutable.
inline void copy_read_only(std::vector<std::filesystem::path> const& files,
                           std::filesystem::path const& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (auto const& file : files) {
        auto const to = dir / file.filename();
        std::filesystem::copy_file(file, to);
        std::filesystem::permissions(to, std::filesystem::perms::owner_read |
                                             std::filesystem::perms::group_read |
                                             std::filesystem::perms::others_read);
    }
}

/// Drops `file`'s pages from the page cache (those no process has mapped), so that the next
/// read of them waits for the disk.
inline void evict_from_page_cache(std::filesystem::path const& file) {
    int const fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT: POSIX
    ASSERT_GE(fd, 0) << file;
    ::fdatasync(fd);
    EXPECT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0) << file;
    ::close(fd);
}

} // namespace kachel::test

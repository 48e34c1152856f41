#pragma once

// What the archive tests share: files in and out, shell steps, and MVT tiles made by PostGIS.

#include "support/tempdb.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

} // namespace kachel::test

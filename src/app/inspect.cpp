#include "app/inspect.hpp"

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "mbtiles/mbtiles_source.hpp"
#include "mbtiles/mbtiles_writer.hpp"
#include "mbtiles/sqlite.hpp"
#include "pmtiles/pmtiles_source.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/tile_ranges.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <vector>

namespace kachel::app {

namespace {

/// Tiles of one zoom: how many, their sizes, the columns and rows they span (XYZ).
struct zoom_figures {
    std::uint64_t tiles = 0;
    std::uint64_t bytes = 0;
    std::uint64_t smallest = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t largest = 0;
    std::uint32_t min_x = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t min_y = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t max_x = 0;
    std::uint32_t max_y = 0;

    void add(tile_coord c, std::uint64_t size) {
        ++tiles;
        bytes += size;
        smallest = std::min(smallest, size);
        largest = std::max(largest, size);
        min_x = std::min(min_x, c.x);
        max_x = std::max(max_x, c.x);
        min_y = std::min(min_y, c.y);
        max_y = std::max(max_y, c.y);
    }
};

void print_zooms(std::FILE* out, std::map<std::uint32_t, zoom_figures> const& zooms) {
    fmt::print(out, "{:>4} {:>10} {:>10} {:>10} {:>12}  {}\n", "zoom", "tiles", "smallest", "largest",
               "total", "area (west, south, east, north)");
    for (auto const& [z, f] : zooms) {
        auto const area = tiles::box_of(tiles::tile_rect{z, f.min_x, f.min_y, f.max_x, f.max_y});
        fmt::print(out, "{:>4} {:>10} {:>10} {:>10} {:>12}  {:.4f}, {:.4f}, {:.4f}, {:.4f}\n", z, f.tiles,
                   f.smallest, f.largest, f.bytes, area.west, area.south, area.east, area.north);
    }
}

std::string shortened(std::string_view text) {
    constexpr std::size_t longest = 100;
    return text.size() <= longest ? std::string{text}
                                  : fmt::format("{}... ({} bytes)", text.substr(0, longest), text.size());
}

/// What is wrong, as found.
using problems = std::vector<std::string>;

problems inspect_mbtiles(std::string const& path, std::FILE* out) {
    problems wrong;
    mbtiles::sqlite_db const db{path};
    auto const names = mbtiles::relations(db);
    auto const kind = mbtiles::schema_of(names);
    if (!kind) {
        return {"it has no tiles table (neither tiles, tiles_with_hash, map with images, nor tiles_shallow)"};
    }
    auto const integer = [&](char const* sql) {
        mbtiles::sqlite_stmt q{db, sql};
        return q.step() ? q.integer(0) : 0;
    };
    fmt::print(out, "MBTiles {}\nschema: {}; {} pages of {} bytes\n", path, mbtiles::schema_name(*kind),
               integer("PRAGMA page_count"), integer("PRAGMA page_size"));
    std::optional<std::string> stored_hash;
    if (names.contains("metadata")) {
        fmt::print(out, "metadata:\n");
        mbtiles::sqlite_stmt rows{db, "SELECT name, value FROM metadata ORDER BY name"};
        while (rows.step()) {
            fmt::print(out, "  {}: {}\n", rows.bytes(0), shortened(rows.bytes(1)));
            if (rows.bytes(0) == "agg_tiles_hash") {
                stored_hash = std::string{rows.bytes(1)};
            }
        }
    } else {
        wrong.emplace_back("it has no metadata table");
    }
    if (!names.contains("tiles")) {
        wrong.emplace_back("it has no tiles table or view, which most readers need");
        return wrong;
    }
    std::map<std::uint32_t, zoom_figures> zooms;
    mbtiles::sqlite_stmt tiles{db,
                               "SELECT zoom_level, min(tile_column), max(tile_column), min(tile_row), "
                               "max(tile_row), count(*), sum(length(tile_data)), min(length(tile_data)), "
                               "max(length(tile_data)) FROM tiles GROUP BY zoom_level ORDER BY zoom_level"};
    while (tiles.step()) {
        auto const z = tiles.integer(0);
        if (z < 0 || z > max_zoom) {
            wrong.push_back(fmt::format("tiles at zoom {}, outside 0 to {}", z, max_zoom));
            continue;
        }
        auto const zoom = static_cast<std::uint32_t>(z);
        auto const flip = [&](std::int64_t row) {
            return static_cast<std::uint32_t>((std::int64_t{1} << zoom) - 1 - row);
        };
        zoom_figures f;
        f.tiles = static_cast<std::uint64_t>(tiles.integer(5));
        f.bytes = static_cast<std::uint64_t>(tiles.integer(6));
        f.smallest = static_cast<std::uint64_t>(tiles.integer(7));
        f.largest = static_cast<std::uint64_t>(tiles.integer(8));
        f.min_x = static_cast<std::uint32_t>(tiles.integer(1));
        f.max_x = static_cast<std::uint32_t>(tiles.integer(2));
        f.min_y = flip(tiles.integer(4));
        f.max_y = flip(tiles.integer(3));
        zooms[zoom] = f;
    }
    print_zooms(out, zooms);

    // Checks.
    {
        mbtiles::sqlite_stmt check{db, "PRAGMA integrity_check"};
        while (check.step()) {
            if (check.bytes(0) != "ok") {
                wrong.push_back(fmt::format("SQLite integrity: {}", check.bytes(0)));
            }
        }
    }
    std::uint64_t hashed = 0;
    auto const check_hashes = [&](char const* sql, char const* what) {
        mbtiles::sqlite_stmt rows{db, sql};
        while (rows.step()) {
            ++hashed;
            auto const expected = mbtiles::md5_hex(rows.bytes(0));
            if (rows.is_null(1) || rows.bytes(1) != expected) {
                wrong.push_back(fmt::format("{} {}: its hash is {}, its bytes' MD5 {}", what, rows.bytes(2),
                                            rows.is_null(1) ? "missing" : std::string{rows.bytes(1)},
                                            expected));
            }
        }
    };
    if (*kind == mbtiles::schema::flat_with_hash) {
        check_hashes("SELECT tile_data, tile_hash, zoom_level || '/' || tile_column || '/' || tile_row FROM "
                     "tiles_with_hash",
                     "tile (z/column/TMS row)");
    } else if (*kind == mbtiles::schema::normalized) {
        check_hashes("SELECT tile_data, tile_id, tile_id FROM images", "image");
        if (auto const orphans = integer("SELECT count(*) FROM map LEFT JOIN images USING (tile_id) WHERE "
                                         "images.tile_id IS NULL");
            orphans > 0) {
            wrong.push_back(fmt::format("{} map rows name an image that is not there", orphans));
        }
    }
    if (hashed > 0) {
        fmt::print(out, "per-tile hashes: {} checked\n", hashed);
    }
    auto const hash = mbtiles::agg_tiles_hash(db);
    if (!stored_hash) {
        fmt::print(out, "agg_tiles_hash: none stored (the tiles' would be {})\n", hash);
    } else if (*stored_hash != hash) {
        wrong.push_back(fmt::format("agg_tiles_hash is {}, the tiles' is {}", *stored_hash, hash));
    } else {
        fmt::print(out, "agg_tiles_hash: {}, matches the tiles\n", hash);
    }
    return wrong;
}

problems inspect_pmtiles(std::string const& path, std::FILE* out) {
    problems wrong;
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT(cppcoreguidelines-pro-type-vararg)
    if (fd < 0) {
        return {fmt::format("cannot open it: {}", std::strerror(errno))};
    }
    auto const size = static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END));
    auto const file = mapped_file::map(fd, size);
    ::close(fd);
    if (!file) {
        return {"cannot map it into memory"};
    }
    auto const h = pmtiles::parse_header(file->bytes(0, std::min<std::uint64_t>(size, pmtiles::header_size)));
    fmt::print(out, "PMTiles v3 {} ({} bytes)\n", path, size);
    fmt::print(out, "tile type {} ({}), tile compression {}, internal compression {}, clustered: {}\n",
               h.tile_type, pmtiles::type_name(h.tile_type), h.tile_compression, h.internal_compression,
               h.clustered);
    fmt::print(out, "zooms {} to {}; bounds {}, {}, {}, {}; center {}, {} at zoom {}\n", h.min_zoom,
               h.max_zoom, h.min_lon, h.min_lat, h.max_lon, h.max_lat, h.center_lon, h.center_lat,
               h.center_zoom);
    fmt::print(out, "tiles addressed {}, entries {}, contents {}\n", h.addressed_tiles, h.tile_entries,
               h.tile_contents);
    struct section {
        char const* name;
        std::uint64_t offset;
        std::uint64_t length;
    };
    std::array const sections{section{"root directory", h.root_offset, h.root_length},
                              section{"metadata", h.metadata_offset, h.metadata_length},
                              section{"leaf directories", h.leaf_offset, h.leaf_length},
                              section{"tile data", h.data_offset, h.data_length}};
    for (auto const& s : sections) {
        fmt::print(out, "  {:<17} at {:>12}, {:>12} bytes\n", s.name, s.offset, s.length);
        if (s.offset > size || s.length > size - s.offset) {
            wrong.push_back(fmt::format("the {} ({} bytes at {}) reaches past the end of the file ({} bytes)",
                                        s.name, s.length, s.offset, size));
        }
    }
    if (!wrong.empty()) {
        return wrong;
    }
    if (h.root_offset + h.root_length > 16384) {
        fmt::print(out,
                   "note: the root directory ends past the first 16 KiB, which some readers fetch at once\n");
    }
    auto const internal = [&](std::uint64_t offset, std::uint64_t length) {
        auto const bytes = file->bytes(offset, length);
        auto const e = pmtiles::encoding_of(h.internal_compression).value_or(tiles::encoding::identity);
        return e == tiles::encoding::identity ? std::string{bytes} : tiles::decompress(bytes, e);
    };
    if (h.metadata_length > 0) {
        try {
            auto const meta = nlohmann::json::parse(internal(h.metadata_offset, h.metadata_length));
            fmt::print(out, "metadata:\n");
            for (auto const& [key, value] : meta.items()) {
                fmt::print(out, "  {}: {}\n", key,
                           shortened(value.is_string() ? value.get<std::string>() : value.dump()));
            }
        } catch (std::exception const& e) {
            wrong.push_back(fmt::format("the metadata is not JSON: {}", e.what()));
        }
    }

    // Every directory, depth first, in tile-id order.
    std::map<std::uint32_t, zoom_figures> zooms;
    std::uint64_t addressed = 0;
    std::uint64_t entries = 0;
    std::set<std::uint64_t> contents;
    std::uint64_t data_end = 0; // clustered: where the next new content must start
    std::uint64_t last_id = 0;
    bool any = false;
    std::uint32_t min_zoom = max_zoom;
    std::uint32_t max_zoom_seen = 0;
    auto walk = [&](auto&& self, std::uint64_t offset, std::uint64_t length, int depth,
                    std::string const& where) -> void {
        if (depth > 3) {
            wrong.push_back(fmt::format("{}: leaf directories nest deeper than 3", where));
            return;
        }
        std::vector<pmtiles::entry> dir;
        try {
            dir = pmtiles::parse_directory(internal(offset, length));
        } catch (std::exception const& e) {
            wrong.push_back(fmt::format("{}: cannot be read: {}", where, e.what()));
            return;
        }
        for (std::size_t i = 0; i < dir.size(); ++i) {
            auto const& e = dir[i];
            if (i + 1 < dir.size() &&
                dir[i + 1].tile_id < e.tile_id + std::max<std::uint64_t>(e.run_length, 1)) {
                wrong.push_back(fmt::format("{}: entry {} (tile id {}) overlaps the next one (tile id {})",
                                            where, i, e.tile_id, dir[i + 1].tile_id));
            }
            if (e.run_length == 0) {
                if (e.offset > h.leaf_length || e.length > h.leaf_length - e.offset) {
                    wrong.push_back(
                        fmt::format("{}: leaf directory at {} ({} bytes) is outside the leaf section", where,
                                    e.offset, e.length));
                    continue;
                }
                self(self, h.leaf_offset + e.offset, e.length, depth + 1,
                     fmt::format("leaf directory at {}", e.offset));
                continue;
            }
            ++entries;
            if (any && e.tile_id <= last_id) {
                wrong.push_back(fmt::format("{}: tile id {} comes after {}", where, e.tile_id, last_id));
            }
            any = true;
            last_id = e.tile_id + e.run_length - 1;
            if (e.offset > h.data_length || e.length > h.data_length - e.offset) {
                wrong.push_back(fmt::format("tile id {}: its {} bytes at {} are outside the tile data",
                                            e.tile_id, e.length, e.offset));
                continue;
            }
            if (contents.insert(e.offset).second) {
                if (h.clustered && e.offset != data_end) {
                    wrong.push_back(
                        fmt::format("tile id {}: stored at {}, but a clustered archive has its next tile "
                                    "data at {}",
                                    e.tile_id, e.offset, data_end));
                }
                data_end = std::max(data_end, e.offset + e.length);
            }
            addressed += e.run_length;
            auto const first = tiles::tile_of_id(e.tile_id);
            auto const last = tiles::tile_of_id(last_id);
            min_zoom = std::min(min_zoom, first.z);
            max_zoom_seen = std::max(max_zoom_seen, last.z);
            for (std::uint64_t id = e.tile_id; id <= last_id; ++id) {
                auto const t = tiles::tile_of_id(id);
                zooms[t.z].add(t, e.length);
            }
        }
    };
    walk(walk, h.root_offset, h.root_length, 0, "root directory");
    print_zooms(out, zooms);
    auto const claim = [&](char const* what, std::uint64_t claimed, std::uint64_t found) {
        if (claimed != found) {
            wrong.push_back(
                fmt::format("the header claims {} {}, the directories hold {}", claimed, what, found));
        }
    };
    claim("addressed tiles", h.addressed_tiles, addressed);
    claim("tile entries", h.tile_entries, entries);
    claim("distinct tile contents", h.tile_contents, contents.size());
    if (any && (h.min_zoom != min_zoom || h.max_zoom != max_zoom_seen)) {
        wrong.push_back(fmt::format("the header's zooms are {} to {}, the tiles' {} to {}", h.min_zoom,
                                    h.max_zoom, min_zoom, max_zoom_seen));
    }
    return wrong;
}

} // namespace

int inspect_archive(std::string const& path, std::FILE* out) {
    problems wrong;
    try {
        std::string head(16, '\0');
        int const fd =
            ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT(cppcoreguidelines-pro-type-vararg)
        if (fd < 0) {
            fmt::print(out, "{}: cannot open it: {}\n", path, std::strerror(errno));
            return 1;
        }
        auto const n = ::read(fd, head.data(), head.size());
        ::close(fd);
        head.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        if (head.starts_with("PMTiles")) {
            wrong = inspect_pmtiles(path, out);
        } else if (head.starts_with("SQLite format 3")) {
            wrong = inspect_mbtiles(path, out);
        } else {
            fmt::print(out, "{}: neither an MBTiles (SQLite) file nor a PMTiles archive\n", path);
            return 1;
        }
    } catch (std::exception const& e) {
        wrong.emplace_back(e.what());
    }
    if (wrong.empty()) {
        fmt::print(out, "valid\n");
        return 0;
    }
    fmt::print(out, "NOT VALID: {} problem(s)\n", wrong.size());
    for (auto const& w : wrong) {
        fmt::print(out, "  - {}\n", w);
    }
    return 1;
}

} // namespace kachel::app

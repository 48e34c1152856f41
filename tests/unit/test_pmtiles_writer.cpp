// The PMTiles writer, read back by kachel's own reader functions (the e2e tests read its archives
// with the format authors' reader too).

#include "core/error.hpp"
#include "pmtiles/pmtiles_source.hpp"
#include "pmtiles/pmtiles_writer.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/tile_ranges.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace kachel;
namespace fs = std::filesystem;

namespace {

std::string read_all(fs::path const& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

fs::path scratch(std::string const& name) {
    auto const dir = fs::temp_directory_path() / ("kachel-pmtiles-writer-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    return dir / name;
}

/// The tile at `id` of an archive held in `bytes`, following leaf directories: nothing when absent.
std::optional<std::string> find_tile(std::string const& bytes, std::uint64_t id) {
    auto const h = pmtiles::parse_header(bytes);
    auto dir = tiles::decompress(bytes.substr(h.root_offset, h.root_length), tiles::encoding::gzip);
    for (int depth = 0; depth < 4; ++depth) {
        auto const entries = pmtiles::parse_directory(dir);
        auto const* e = pmtiles::find_entry(entries, id);
        if (e == nullptr) {
            return std::nullopt;
        }
        if (e->run_length > 0) {
            return bytes.substr(h.data_offset + e->offset, e->length);
        }
        dir = tiles::decompress(bytes.substr(h.leaf_offset + e->offset, e->length), tiles::encoding::gzip);
    }
    return std::nullopt;
}

} // namespace

TEST(pmtiles_writer, stores_repeats_once_and_runs_in_one_entry) {
    auto const path = scratch("runs.pmtiles");
    {
        pmtiles::pmtiles_writer w{path.string()};
        w.add(0, "\x1a"
                 "a");
        w.add(1, "\x1a"
                 "sea");
        w.add(2, "\x1a"
                 "sea");
        w.add(3, "\x1a"
                 "sea");
        w.add(5, "\x1a"
                 "a"); // the first tile again, after a gap: stored once
        w.add(6, "\x1a"
                 "sea");
        EXPECT_EQ(w.addressed(), 6U);
        EXPECT_EQ(w.entries(), 4U);
        EXPECT_EQ(w.contents(), 2U);
        EXPECT_FALSE(fs::exists(path)) << "nothing under the final name before finish";
        pmtiles::archive_description d;
        d.metadata = {{"name", "runs"}};
        w.finish(d);
    }
    auto const bytes = read_all(path);
    auto const h = pmtiles::parse_header(bytes);
    EXPECT_TRUE(h.clustered);
    EXPECT_EQ(h.addressed_tiles, 6U);
    EXPECT_EQ(h.tile_entries, 4U);
    EXPECT_EQ(h.tile_contents, 2U);
    EXPECT_EQ(h.data_length, 6U);
    EXPECT_EQ(h.min_zoom, 0);
    EXPECT_EQ(h.max_zoom, 2);
    EXPECT_EQ(find_tile(bytes, 2), "\x1a"
                                   "sea");
    EXPECT_EQ(find_tile(bytes, 5), "\x1a"
                                   "a");
    EXPECT_EQ(find_tile(bytes, 4), std::nullopt);
    EXPECT_EQ(find_tile(bytes, 7), std::nullopt);
    auto const meta =
        tiles::decompress(bytes.substr(h.metadata_offset, h.metadata_length), tiles::encoding::gzip);
    EXPECT_EQ(meta, R"({"name":"runs"})");
    fs::remove_all(path.parent_path());
}

TEST(pmtiles_writer, many_entries_go_to_leaf_directories_and_the_root_fits_in_16_kib) {
    auto const path = scratch("leaves.pmtiles");
    std::mt19937 random{7};
    std::vector<std::string> tiles_written;
    {
        pmtiles::pmtiles_writer w{path.string()};
        for (std::uint64_t id = 0; id < 150'000; ++id) {
            std::string tile(10 + random() % 200, 'x');
            tile[0] = '\x1a';
            tile[1] = static_cast<char>(id & 0xff);
            tile[2] = static_cast<char>(id >> 8);
            // Gaps in the ids too.
            w.add(3 * id, tile);
            tiles_written.push_back(std::move(tile));
        }
        w.finish({});
    }
    auto const bytes = read_all(path);
    auto const h = pmtiles::parse_header(bytes);
    EXPECT_GT(h.leaf_length, 0U);
    EXPECT_LE(h.root_offset + h.root_length, 16384U);
    for (std::uint64_t id = 0; id < 150'000; id += 997) {
        EXPECT_EQ(find_tile(bytes, 3 * id), tiles_written[id]) << id;
        EXPECT_EQ(find_tile(bytes, 3 * id + 1), std::nullopt) << id;
    }
    EXPECT_EQ(find_tile(bytes, 3 * 149'999), tiles_written.back());
    EXPECT_EQ(h.tile_entries, 150'000U);
    fs::remove_all(path.parent_path());
}

TEST(pmtiles_writer, only_small_tiles_are_looked_up_by_content) {
    auto const path = scratch("large.pmtiles");
    std::string const large(5000, 'L');
    std::string const small(100, 's');
    {
        pmtiles::pmtiles_writer w{path.string()};
        w.add(0, large);
        w.add(1, small);
        w.add(2, large); // not next to the first: stored again (its hash is not kept)
        w.add(3, small); // stored once
        w.add(4, large);
        w.add(5, large); // next to the one before: a run, whatever the size
        EXPECT_EQ(w.contents(), 4U);
        EXPECT_EQ(w.entries(), 5U);
        w.finish({});
    }
    auto const bytes = read_all(path);
    EXPECT_EQ(pmtiles::parse_header(bytes).data_length, 3 * large.size() + small.size());
    for (std::uint64_t id : {0, 2, 4, 5}) {
        EXPECT_EQ(find_tile(bytes, id), large) << id;
    }
    EXPECT_EQ(find_tile(bytes, 3), small);
    fs::remove_all(path.parent_path());
}

TEST(pmtiles_writer, an_unfinished_archive_leaves_nothing_behind) {
    auto const path = scratch("unfinished.pmtiles");
    {
        pmtiles::pmtiles_writer w{path.string()};
        w.add(0, "\x1a"
                 "tile");
    }
    EXPECT_TRUE(fs::is_empty(path.parent_path()));
    fs::remove_all(path.parent_path());
    EXPECT_THROW(pmtiles::pmtiles_writer{"/nonexistent-dir/x.pmtiles"}, source_error);
}

#pragma once

#include "config/settings.hpp"
#include "mbtiles/mbtiles_source.hpp"
#include "mbtiles/mbtiles_writer.hpp"
#include "tiles/tile_ranges.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kachel::config {

/// What kachel-cp copies and where to (martin-cp's flags, martin-compat 8).
struct copy_options {
    /// `--inspect FILE`: print this archive's summary and check it, instead of copying.
    std::optional<std::string> inspect;
    /// `-o/--output-file`: the archive to write.
    std::string output_file;
    /// `--output-format`: `mbtiles` or `pmtiles`, else from the file name.
    std::optional<std::string> output_format;
    /// `--mbtiles-type`: the schema of a new MBTiles file (normalized by default, as Martin).
    std::optional<mbtiles::schema> mbtiles_type;
    /// `--source`: one id or a composite `a,b`; may be left out when there is one source.
    std::optional<std::string> source;
    /// `--bbox` (repeatable); none means the sources' bounds.
    std::vector<tiles::lonlat_box> boxes;
    std::optional<std::uint32_t> min_zoom;
    std::optional<std::uint32_t> max_zoom;
    /// `-z/--zoom-levels`: these zooms instead of a range.
    std::vector<std::uint32_t> zoom_levels;
    /// `--url-query`: passed to functions that take a query, as the server does from the URL.
    std::string url_query;
    /// `--encoding`: an Accept-Encoding header to negotiate the stored encoding with.
    std::string encoding = "gzip";
    std::optional<mbtiles::on_duplicate> on_duplicate;
    /// `--concurrency`: tiles made at once.
    std::optional<std::size_t> concurrency;
    bool skip_agg_tiles_hash = false;
    /// `--set-meta NAME=VALUE`.
    std::vector<std::pair<std::string, std::string>> metadata;
};

/// The result of reading kachel-cp's command line.
struct copy_command_line {
    settings values;
    copy_options copy;
    /// Set for help, version, or a usage error already printed.
    std::optional<int> exit_code;
};

/// Parses `kachel-cp [OPTIONS] [CONNECTION]...`: the server's source arguments, config file and
/// flags (except the HTTP listener's), and martin-cp's own flags.
/// \throws config_error for values that make no sense, naming the flag
[[nodiscard]] copy_command_line parse_copy_command_line(int argc, char const* const* argv);

} // namespace kachel::config

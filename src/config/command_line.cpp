#include "config/config_file.hpp"
#include "config/copy_options.hpp"
#include "config/setting.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/secrets.hpp"

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <filesystem>

#ifndef KACHEL_VERSION
#define KACHEL_VERSION "0.0.0"
#endif

namespace kachel::config {

bool is_connection_string(std::string_view arg) noexcept {
    return arg.starts_with("postgres://") || arg.starts_with("postgresql://") ||
           arg.find('=') != std::string_view::npos;
}

namespace {

/// `--help` text of a setting: its help, its type and its default.
std::string help_text(setting const& st) {
    auto text = std::string{st.help};
    if (st.form == flag_form::value && !st.type.empty()) {
        text += fmt::format(" ({})", st.type);
    }
    if (st.scope == setting_scope::connection && !st.key.empty()) {
        text += fmt::format("; overrides postgres.{} of every connection", st.key);
    }
    if (auto const def = st.default_text(); !def.empty() && st.form == flag_form::value) {
        text += fmt::format(" [default: {}]", def);
    }
    return text;
}

/// The value of an environment variable, empty when unset.
std::string_view env_value(std::string_view name) {
    char const* value = std::getenv(std::string{name}.c_str());
    return value == nullptr ? std::string_view{} : std::string_view{value};
}

/// What the command line gave the settings' flags and the positional arguments.
struct given_flags {
    std::vector<std::optional<std::string>> given;
    std::vector<int> switched;
    std::vector<std::string> positional;
};

/// Declares the positional sources and one flag per setting that `wanted` accepts.
void add_setting_flags(CLI::App& app, given_flags& out, bool (*wanted)(setting const&)) {
    app.add_option("connection", out.positional,
                   "PostgreSQL connection strings (postgresql://... or key=value), MBTiles and PMTiles "
                   "files or directories of them. Without a connection, DATABASE_URL "
                   "is used. libpq reads every other setting (sslmode, PGSSLROOTCERT, ...) as psql does");
    // One slot per setting with a flag: the text given, or for a switch whether it was given.
    auto const table = all_settings();
    out.given.resize(table.size());
    out.switched.resize(table.size(), 0);
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto const& st = table[i];
        if (st.flags.empty() || !wanted(st)) {
            continue;
        }
        if (st.form == flag_form::value) {
            app.add_option(std::string{st.flags}, out.given[i], help_text(st));
        } else {
            app.add_flag(std::string{st.flags}, out.switched[i], help_text(st));
        }
    }
}

/// The settings from the parsed flags, the sources, the config file and the environment.
settings read_settings(given_flags const& parsed) {
    settings s;
    auto const table = all_settings();
    auto const& given = parsed.given;
    auto const& switched = parsed.switched;
    auto const& positional = parsed.positional;
    std::vector<given_value> flags;
    std::optional<std::string> config_file;
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto const& st = table[i];
        value_origin origin{"", std::string{st.long_flag()}};
        if (st.long_flag() == "--config") {
            config_file = given[i];
        } else if (given[i]) {
            flags.push_back(given_value{&st, *given[i], std::move(origin)});
        } else if (switched[i] != 0) {
            flags.push_back(
                given_value{&st, st.form == flag_form::on_switch ? "true" : "false", std::move(origin)});
        }
    }

    std::vector<std::string> unrecognized;
    s.mbtiles.origin = "command line";
    s.pmtiles.origin = "command line";
    for (std::size_t i = 0; i < positional.size(); ++i) {
        auto const& arg = positional[i];
        std::error_code ec;
        bool const url = tiles::is_http_url(arg); // as in Martin, a URL is a PMTiles archive
        if (!url && is_connection_string(arg)) {
            postgres_settings entry;
            entry.connection_string = arg;
            entry.origin = fmt::format("command line argument {}", i + 1);
            s.postgres.push_back(std::move(entry));
        } else if (!url && tiles::is_remote_archive(arg)) {
            throw config_error{fmt_error("{}: {}", without_password(arg), tiles::object_store_refusal)};
        } else if (url || arg.ends_with(".pmtiles")) {
            s.pmtiles.paths.push_back(arg);
        } else if (std::filesystem::is_directory(arg, ec)) {
            // A directory is searched for archives of both kinds.
            s.mbtiles.paths.push_back(arg);
            s.pmtiles.paths.push_back(arg);
        } else if (arg.ends_with(".mbtiles") || std::filesystem::exists(arg, ec)) {
            s.mbtiles.paths.push_back(arg);
        } else {
            unrecognized.push_back(without_password(positional[i]));
        }
    }
    if (!unrecognized.empty()) {
        throw config_error{
            fmt_error("Unrecognizable connection strings: [{}]. Give PostgreSQL connections as "
                      "postgresql://user@host/db?sslmode=verify-full or as key=value pairs, and MBTiles "
                      "and PMTiles archives as existing files or directories",
                      fmt::join(unrecognized, ", "))};
    }
    if (config_file) {
        if (!s.postgres.empty() || !s.mbtiles.paths.empty() || !s.pmtiles.paths.empty()) {
            throw config_error{"The --config file and source arguments cannot be used together: put the "
                               "connections in the config file's 'postgres' section and the files in its "
                               "'mbtiles' and 'pmtiles' sections, or drop --config"};
        }
        load_config_file(*config_file).apply_to(s);
        // Martin's rule: these flags override the key in every postgres entry of the file.
        for (auto const& flag : flags) {
            if (flag.target->scope == setting_scope::connection) {
                spdlog::info("{} overrides the config file's value for every postgres connection",
                             flag.origin.key);
            }
        }
    } else {
        if (char const* url = std::getenv("DATABASE_URL");
            s.postgres.empty() && url != nullptr && *url != '\0') {
            if (is_connection_string(url)) {
                postgres_settings entry;
                entry.connection_string = url;
                entry.origin = "DATABASE_URL";
                s.postgres.push_back(std::move(entry));
            } else {
                spdlog::warn("DATABASE_URL is not a PostgreSQL connection string, ignored");
            }
        }
        // Without a config file, a setting's environment variable stands in for its flag.
        for (auto const& st : table) {
            auto const value = st.env.empty() ? std::string_view{} : env_value(st.env);
            bool const flagged = std::any_of(flags.begin(), flags.end(),
                                             [&](given_value const& f) { return f.target == &st; });
            if (value.empty() || flagged) {
                continue;
            }
            try {
                settings scratch;
                st.set(scratch, value, value_origin{"", std::string{st.env}});
                flags.push_back(given_value{&st, std::string{value}, value_origin{"", std::string{st.env}}});
            } catch (config_error const& e) {
                spdlog::warn("{}, ignored", e.what());
            }
        }
    }
    apply_settings(s, std::move(flags));
    return s;
}

/// Flags of the HTTP listener and of a running server's cache, which kachel-cp has no use for.
bool serves_http(setting const& st) {
    constexpr std::array listener_keys{"listen_addresses", "web_ui",           "keep_alive",
                                       "max_connections",  "shutdown_timeout", "route_prefix",
                                       "base_path",        "access_log",       "cors",
                                       "cache_control",    "purge_endpoint",   "purge_token_file",
                                       "notify_changes",   "reload_interval"};
    return std::find(listener_keys.begin(), listener_keys.end(), st.key) != listener_keys.end() ||
           st.long_flag() == "--check-connection" || st.long_flag() == "--print-change-triggers";
}

/// The parts of a comma-separated list, trimmed.
std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        auto const end = std::min(text.find(',', at), text.size());
        auto part = text.substr(at, end - at);
        while (!part.empty() && part.front() == ' ') {
            part.remove_prefix(1);
        }
        while (!part.empty() && part.back() == ' ') {
            part.remove_suffix(1);
        }
        out.emplace_back(part);
        at = end + 1;
    }
    return out;
}

std::uint32_t parse_zoom(std::string_view text, std::string_view flag) {
    std::uint32_t z = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), z);
    if (ec != std::errc{} || end != text.data() + text.size() || z > max_zoom) {
        throw config_error{
            fmt_error("{} '{}' is not a zoom: give a whole number from 0 to {}", flag, text, max_zoom)};
    }
    return z;
}

} // namespace

command_line parse_command_line(int argc, char const* const* argv) {
    command_line result;
    CLI::App app{"kachel: a vector tile server for PostGIS, compatible with Martin", "kachel"};
    app.set_version_flag("-V,--version", "kachel " KACHEL_VERSION);
    given_flags parsed;
    add_setting_flags(app, parsed, [](setting const&) { return true; });
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        result.exit_code = app.exit(e);
        return result;
    }
    result.values = read_settings(parsed);
    return result;
}

copy_command_line parse_copy_command_line(int argc, char const* const* argv) {
    copy_command_line result;
    auto& c = result.copy;
    CLI::App app{
        "kachel-cp: copies tiles from PostGIS, MBTiles or PMTiles sources into an MBTiles or PMTiles "
        "archive. Takes kachel's source arguments and config file",
        "kachel-cp"};
    app.set_version_flag("-V,--version", "kachel-cp " KACHEL_VERSION);
    given_flags parsed;
    add_setting_flags(app, parsed, [](setting const& st) { return !serves_http(st); });
    std::vector<std::string> boxes;
    std::vector<std::string> metadata;
    std::string zoom_list;
    std::string mbtiles_type;
    std::string on_duplicate;
    app.add_option(
        "--inspect", c.inspect,
        "Print an MBTiles or PMTiles archive's summary and check it (hashes, directories), instead of "
        "copying; exits with 1 when it finds a problem");
    app.add_option("-o,--output-file", c.output_file, "The archive to write: a .mbtiles or .pmtiles file");
    app.add_option("--output-format", c.output_format,
                   "mbtiles or pmtiles, when the output file's name does not end in either")
        ->check(CLI::IsMember({"mbtiles", "pmtiles"}));
    app.add_option("--mbtiles-type", mbtiles_type,
                   "Schema of a new MBTiles file: flat, flat-with-hash or normalized [default: normalized]")
        ->check(CLI::IsMember({"flat", "flat-with-hash", "normalized"}));
    app.add_option("--source", c.source,
                   "The source to copy, or several joined by commas (a composite); needed when there is more "
                   "than one");
    app.add_option("--url-query", c.url_query, "A query string (k=v&...) passed to PostgreSQL functions");
    app.add_option("--encoding", c.encoding,
                   "How tiles are stored, as an Accept-Encoding header: gzip, br, zstd or identity "
                   "[default: gzip]");
    app.add_option("--on-duplicate", on_duplicate,
                   "When the output exists and holds tiles: override, ignore (also resumes an interrupted "
                   "copy without making its tiles again) or abort")
        ->check(CLI::IsMember({"override", "ignore", "abort"}));
    app.add_option("--concurrency", c.concurrency,
                   "Tiles made at once [default: the pool size of the connections, at least 4]");
    app.add_option("--bbox", boxes,
                   "An area to copy, west,south,east,north in degrees; repeatable (overlaps are copied once) "
                   "[default: the sources' bounds]");
    app.add_option("--min-zoom", c.min_zoom, "The lowest zoom to copy");
    app.add_option("--max-zoom", c.max_zoom, "The highest zoom to copy");
    app.add_option("-z,--zoom-levels", zoom_list, "Zooms to copy, separated by commas (instead of a range)");
    app.add_flag("--skip-agg-tiles-hash", c.skip_agg_tiles_hash,
                 "Do not compute agg_tiles_hash when the copy ends (for large MBTiles files)");
    app.add_option("--set-meta", metadata, "Metadata NAME=VALUE to set in the output; repeatable");
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        result.exit_code = app.exit(e);
        return result;
    }
    if (c.inspect) {
        return result;
    }
    if (c.output_file.empty()) {
        throw config_error{"kachel-cp needs --output-file: the .mbtiles or .pmtiles archive to write"};
    }
    for (auto const& box : boxes) {
        c.boxes.push_back(tiles::parse_box(box, "--bbox"));
    }
    for (auto const& item : metadata) {
        auto const eq = item.find('=');
        if (eq == std::string::npos || eq == 0) {
            throw config_error{fmt_error("--set-meta '{}' is not NAME=VALUE", item)};
        }
        c.metadata.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    for (auto const& [flag, zoom] :
         {std::pair{"--min-zoom", c.min_zoom}, std::pair{"--max-zoom", c.max_zoom}}) {
        if (zoom && *zoom > max_zoom) {
            throw config_error{fmt_error("{} {} is above the highest zoom, {}", flag, *zoom, max_zoom)};
        }
    }
    if (c.min_zoom && c.max_zoom && *c.min_zoom > *c.max_zoom) {
        throw config_error{fmt_error("--min-zoom {} is above --max-zoom {}: give the lower zoom first",
                                     *c.min_zoom, *c.max_zoom)};
    }
    if (!zoom_list.empty() && (c.min_zoom || c.max_zoom)) {
        throw config_error{"-z/--zoom-levels and --min-zoom/--max-zoom cannot be used together: give a list "
                           "or a range"};
    }
    if (!zoom_list.empty()) {
        for (auto const& part : split_list(zoom_list)) {
            c.zoom_levels.push_back(parse_zoom(part, "-z/--zoom-levels"));
        }
    }
    if (!mbtiles_type.empty()) {
        c.mbtiles_type = mbtiles_type == "flat"             ? mbtiles::schema::flat
                         : mbtiles_type == "flat-with-hash" ? mbtiles::schema::flat_with_hash
                                                            : mbtiles::schema::normalized;
    }
    if (!on_duplicate.empty()) {
        c.on_duplicate = on_duplicate == "override" ? mbtiles::on_duplicate::override
                         : on_duplicate == "ignore" ? mbtiles::on_duplicate::ignore
                                                    : mbtiles::on_duplicate::abort;
    }
    result.values = read_settings(parsed);
    return result;
}

} // namespace kachel::config

#include "config/config_file.hpp"
#include "config/setting.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/secrets.hpp"

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
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

} // namespace

command_line parse_command_line(int argc, char const* const* argv) {
    command_line result;
    auto& s = result.values;
    CLI::App app{"kachel: a vector tile server for PostGIS, compatible with Martin", "kachel"};
    app.set_version_flag("-V,--version", "kachel " KACHEL_VERSION);
    std::vector<std::string> positional;
    app.add_option("connection", positional,
                   "PostgreSQL connection strings (postgresql://... or key=value), MBTiles and PMTiles "
                   "files or directories of them. Without a connection, DATABASE_URL "
                   "is used. libpq reads every other setting (sslmode, PGSSLROOTCERT, ...) as psql does");
    // One slot per setting with a flag: the text given, or for a switch whether it was given.
    auto const table = all_settings();
    std::vector<std::optional<std::string>> given(table.size());
    std::vector<int> switched(table.size(), 0);
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto const& st = table[i];
        if (st.flags.empty()) {
            continue;
        }
        if (st.form == flag_form::value) {
            app.add_option(std::string{st.flags}, given[i], help_text(st));
        } else {
            app.add_flag(std::string{st.flags}, switched[i], help_text(st));
        }
    }
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        result.exit_code = app.exit(e);
        return result;
    }
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
    return result;
}

} // namespace kachel::config

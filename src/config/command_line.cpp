#include "config/settings.hpp"

#include "core/error.hpp"

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#ifndef KACHEL_VERSION
#define KACHEL_VERSION "0.0.0"
#endif

namespace kachel::config {

bool is_connection_string(std::string_view arg) noexcept {
    return arg.starts_with("postgres://") || arg.starts_with("postgresql://") ||
           arg.find('=') != std::string_view::npos;
}

std::string mask_password(std::string_view text) {
    std::string out{text};
    auto const scheme = out.find("://");
    auto const at = out.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    if (at == std::string::npos) {
        return out;
    }
    auto const colon = out.find(':', scheme == std::string::npos ? 0 : scheme + 3);
    if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "****");
    }
    return out;
}

command_line parse_command_line(int argc, char const* const* argv) {
    command_line result;
    auto& s = result.values;
    CLI::App app{"kachel: a vector tile server for PostGIS, compatible with Martin", "kachel"};
    app.set_version_flag("-V,--version", "kachel " KACHEL_VERSION);
    std::vector<std::string> positional;
    app.add_option("connection", positional,
                   "PostgreSQL connection strings (postgresql://... or key=value). Without any, DATABASE_URL "
                   "is used. libpq reads every other setting (sslmode, PGSSLROOTCERT, ...) as psql does");
    app.add_option("-l,--listen-addresses", s.listen_addresses, "Address to listen on, HOST:PORT")
        ->capture_default_str();
    app.add_option("-p,--pool-size", s.pool_size, "Connections per database")->capture_default_str();
    app.add_option("-W,--workers", s.workers, "Worker threads (default: number of cores)");
    app.add_option("--ca-root-file", s.ca_root_file,
                   "Trusted CA certificate(s) for the server certificate, for every connection that does not "
                   "set sslrootcert itself (takes precedence over PGSSLROOTCERT)");
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        result.exit_code = app.exit(e);
        return result;
    }

    std::vector<std::string> unrecognized;
    for (auto& arg : positional) {
        if (is_connection_string(arg)) {
            s.connections.push_back(std::move(arg));
        } else {
            unrecognized.push_back(mask_password(arg));
        }
    }
    if (!unrecognized.empty()) {
        throw config_error{
            fmt_error("Unrecognizable connection strings: [{}]. Give PostgreSQL connections as "
                      "postgresql://user@host/db?sslmode=verify-full or as key=value pairs",
                      fmt::join(unrecognized, ", "))};
    }
    if (s.connections.empty()) {
        if (char const* url = std::getenv("DATABASE_URL"); url != nullptr && *url != '\0') {
            if (is_connection_string(url)) {
                s.connections.emplace_back(url);
            } else {
                spdlog::warn("DATABASE_URL is not a PostgreSQL connection string, ignored");
            }
        }
    }
    if (s.pool_size == 0) {
        throw config_error{"--pool-size must be at least 1"};
    }
    return result;
}

} // namespace kachel::config

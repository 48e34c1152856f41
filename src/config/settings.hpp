#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// Everything kachel needs to start, after command line and environment are merged.
struct settings {
    /// PostgreSQL connection strings (URL or key=value form). May contain passwords: never log.
    std::vector<std::string> connections;
    /// `-l/--listen-addresses`.
    std::string listen_addresses = "0.0.0.0:3000";
    /// `-p/--pool-size`, connections per database.
    std::size_t pool_size = 20;
    /// `-W/--workers`: threads running the event loop (0 = number of cores).
    unsigned workers = 0;
    /// `--ca-root-file`: trusted CA(s) for every connection without its own sslrootcert.
    std::optional<std::string> ca_root_file;
};

/// The result of reading the command line: settings to run with, or an exit code (help,
/// version, or a usage error already printed).
struct command_line {
    settings values;
    std::optional<int> exit_code;
};

/// True for `postgres://...` and `postgresql://...` URLs and libpq `key=value` strings.
[[nodiscard]] bool is_connection_string(std::string_view arg) noexcept;

/// Masks a `user:password@` part so a rejected argument can be printed safely.
[[nodiscard]] std::string mask_password(std::string_view text);

/// Parses `kachel [OPTIONS] [CONNECTION]...`; reads DATABASE_URL when no connection is given.
/// \throws config_error for values that parse but make no sense (pool size 0, unknown argument).
[[nodiscard]] command_line parse_command_line(int argc, char const* const* argv);

} // namespace kachel::config
